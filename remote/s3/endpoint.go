package s3

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/config"
)

// Addressing is how requests name the bucket.
type Addressing int

const (
	// AddressingAuto, the zero value, takes addressing_style from the
	// AWS profile's s3 section if it says path or virtual; otherwise
	// path style for a custom endpoint that is not an AWS host, as the
	// MinIO client does, and virtual-host style for AWS.
	AddressingAuto Addressing = iota
	// AddressingPath names the bucket in the path: endpoint/bucket/key.
	// MinIO, Ceph RGW and most S3-compatible servers need it.
	AddressingPath
	// AddressingVirtual names the bucket in the host name:
	// bucket.endpoint/key, as AWS prefers.
	AddressingVirtual
)

// String returns auto, path or virtual, the values of addressing_style.
func (a Addressing) String() string {
	switch a {
	case AddressingAuto:
		return "auto"
	case AddressingPath:
		return "path"
	case AddressingVirtual:
		return "virtual"
	}
	return fmt.Sprintf("Addressing(%d)", int(a))
}

// usePathStyle decides the addressing of a client whose resolved custom
// endpoint is endpoint (nil for AWS's own). An explicit choice wins, then
// the profile's (profile is AddressingAuto when it has none).
func usePathStyle(explicit, profile Addressing, endpoint *string) bool {
	for _, a := range []Addressing{explicit, profile} {
		switch a {
		case AddressingPath:
			return true
		case AddressingVirtual:
			return false
		}
	}
	if endpoint == nil || *endpoint == "" {
		return false
	}
	u, err := url.Parse(*endpoint)
	if err != nil {
		// The SDK refuses the endpoint itself; path style is the
		// likelier right answer for whatever it was.
		return true
	}
	return !isAWSHost(u.Hostname())
}

// isAWSHost reports whether host is one of AWS's own (S3's endpoints all
// live under these domains), where virtual-host style works.
func isAWSHost(host string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	for _, d := range []string{"amazonaws.com", "amazonaws.com.cn"} {
		if host == d || strings.HasSuffix(host, "."+d) {
			return true
		}
	}
	return false
}

// profileAddressing returns the addressing_style of the s3 section of the
// AWS profile the SDK loaded (AWS CLI's nested setting, which the Go SDK
// does not read itself):
//
//	[profile ci]
//	s3 =
//	  addressing_style = path
//
// A profile or file that is absent or unreadable, or a setting that is
// missing or auto, gives AddressingAuto; a value other than path, virtual
// or auto is an error, so a typo does not silently pick an addressing.
func profileAddressing(awsCfg aws.Config) (Addressing, error) {
	profile, file := sharedProfile(awsCfg)
	f, err := os.Open(file)
	if err != nil {
		return AddressingAuto, nil
	}
	defer f.Close()
	v, found := nestedSetting(f, profile, "s3", "addressing_style")
	if !found {
		return AddressingAuto, nil
	}
	switch strings.ToLower(v) {
	case "auto", "":
		return AddressingAuto, nil
	case "path":
		return AddressingPath, nil
	case "virtual":
		return AddressingVirtual, nil
	}
	return AddressingAuto, fmt.Errorf("s3: addressing_style %q in the s3 section of AWS profile %q (%s) must be path, virtual or auto", v, profile, file)
}

// sharedProfile returns the name of the AWS profile the SDK loaded for
// awsCfg, and the shared config file it read it from.
func sharedProfile(awsCfg aws.Config) (profile, file string) {
	profile, file = config.DefaultSharedConfigProfile, config.DefaultSharedConfigFilename()
	for _, src := range awsCfg.ConfigSources {
		switch c := src.(type) {
		case config.EnvConfig:
			if c.SharedConfigFile != "" {
				file = c.SharedConfigFile
			}
			if c.SharedConfigProfile != "" && profile == config.DefaultSharedConfigProfile {
				profile = c.SharedConfigProfile
			}
		case config.SharedConfig:
			if c.Profile != "" {
				profile = c.Profile
			}
		}
	}
	return profile, file
}

// nestedSetting finds key in the nested section (lines indented under
// "section =") of profile in an AWS shared config file. The last
// occurrence wins, as for the SDK's own settings.
func nestedSetting(r io.Reader, profile, section, key string) (value string, found bool) {
	inProfile, inSection := false, false
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		raw := sc.Text()
		line := strings.TrimSpace(raw)
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if line[0] == '[' {
			name := strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(line, "["), "]"))
			if p, ok := strings.CutPrefix(name, "profile "); ok {
				name = strings.TrimSpace(p)
			} else if name != config.DefaultSharedConfigProfile {
				// [sso-session x], [services x]: not a profile.
				name = ""
			}
			inProfile, inSection = name != "" && name == profile, false
			continue
		}
		if !inProfile {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if indented := raw[0] == ' ' || raw[0] == '\t'; !indented {
			inSection = k == section && v == ""
			continue
		}
		if inSection && k == key {
			value, found = v, true
		}
	}
	return value, found
}

// peekLimit bounds how much of an answer's body answerCheck reads to tell
// an S3 error from a web server's page, or a listing from another
// document. S3 error bodies are a few hundred bytes; a document's root
// element comes first.
const peekLimit = 4 << 10

// answerCheck refuses answers that no S3 server gives (see notS3Answer
// and notS3Success), so that a wrong endpoint (a web server, a proxy's
// page, a health check) is reported as such instead of being read as a
// missing key, an empty listing or a successful upload.
type answerCheck struct{ next aws.HTTPClient }

// Do sends req and checks the answer.
func (c *answerCheck) Do(req *http.Request) (*http.Response, error) {
	resp, err := c.next.Do(req)
	if err != nil || hasS3Headers(resp.Header) {
		return resp, err
	}
	op := awsmiddleware.GetOperationName(req.Context())
	success := resp.StatusCode >= 200 && resp.StatusCode < 300
	var peek []byte
	if (resp.StatusCode >= 400 || success && s3Success[op].root != "") && req.Method != http.MethodHead && resp.Body != nil {
		body := resp.Body
		peek, err = io.ReadAll(io.LimitReader(body, peekLimit))
		if err != nil {
			_ = body.Close()
			return nil, err
		}
		resp.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(peek), body), body}
	}
	var lacks string
	if !notS3Answer(req.Method, resp.StatusCode, resp.Header, peek) {
		if !success {
			return resp, nil
		}
		if lacks = notS3Success(op, resp.Header, peek); lacks == "" {
			return resp, nil
		}
	}
	_ = resp.Body.Close()
	return nil, &notS3Error{
		host:        req.URL.Host,
		status:      resp.StatusCode,
		contentType: resp.Header.Get("Content-Type"),
		op:          op,
		lacks:       lacks,
		body:        peek,
	}
}
