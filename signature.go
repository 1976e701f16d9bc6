package tiercache

// Signature is an Ed25519 signature of an entry by the job that stored it
// (see package sign for what it covers and how it is checked). It is kept
// with the entry's metadata in every tier.
type Signature struct {
	// Key is the signer's Ed25519 public key (32 bytes).
	Key []byte `json:"key"`
	// Sig is the signature (64 bytes).
	Sig []byte `json:"sig"`
}
