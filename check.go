package tiercache

// Problem is one thing a check of a tier (`tiercache fsck`) found wrong:
// a broken entry, or a leftover of an interrupted or superseded write.
// Each tier defines its kinds (local.Problem*, remote.Problem*).
type Problem struct {
	// Kind names what is wrong, as one of the tier's Problem* constants.
	Kind string `json:"kind"`
	// Key is the entry's key, when it is known (a leftover's name does
	// not always tell it).
	Key string `json:"key,omitempty"`
	// Path is the local file or directory concerned; Object the remote
	// object (for an upload, the object name and the upload id). A
	// problem has exactly one of them.
	Path   string `json:"path,omitempty"`
	Object string `json:"object,omitempty"`
	// Detail says what is wrong with it.
	Detail string `json:"detail"`
	// Repaired is true when the check removed it.
	Repaired bool `json:"repaired"`
}

// CheckReport is what a check of one tier found.
type CheckReport struct {
	// Entries is the number of entries examined.
	Entries int `json:"entries"`
	// Verified is the number of entries whose data a deep check read and
	// found to match their metadata.
	Verified int `json:"verified"`
	// Problems lists what was found, repaired or not.
	Problems []Problem `json:"problems"`
	// Unchecked says what the check could not examine, and why (the
	// credentials may not list multipart uploads, say): not a problem
	// found, but nothing is known of it either.
	Unchecked []string `json:"unchecked,omitempty"`
}

// Unrepaired returns how many problems remain.
func (r CheckReport) Unrepaired() int {
	n := 0
	for _, p := range r.Problems {
		if !p.Repaired {
			n++
		}
	}
	return n
}
