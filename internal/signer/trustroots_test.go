package signer

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"strings"
	"testing"
)

func TestParseTrustBundle(t *testing.T) {
	a, _ := makeAnchor(t, defaultAnchorSpec(t))
	b, _ := makeAnchor(t, defaultAnchorSpec(t))
	key := []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
	for _, tc := range []struct {
		name   string
		bundle []byte
		n      int
		err    string
	}{
		{"one root", a, 1, ""},
		{"two roots with blank lines between", append(append(append([]byte{}, a...), '\n'), b...), 2, ""},
		{"empty", nil, 0, "the bundle holds no certificate"},
		{"a key in it", append(append([]byte{}, a...), key...), 0, `block 2 is "PRIVATE KEY"; the bundle may hold only CERTIFICATE blocks`},
		{"garbage after", append(append([]byte{}, a...), []byte("garbage")...), 0, "data that is not PEM after certificate 1"},
		{"oversized", bytes.Repeat(a, MaxTrustBundleBytes/len(a)+1), 0, "over the 262144 byte limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			certs, err := ParseTrustBundle(tc.bundle)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || len(certs) != tc.n {
				t.Fatalf("got %d certificates, %v; want %d", len(certs), err, tc.n)
			}
			if !bytes.Equal(EncodeBundle(certs), bytes.ReplaceAll(tc.bundle, []byte("\n\n"), []byte("\n"))) {
				t.Errorf("re-encoded bundle differs")
			}
		})
	}
}

func TestBundleContainsAndFingerprint(t *testing.T) {
	a := parsedAnchor(t, defaultAnchorSpec(t))
	b := parsedAnchor(t, defaultAnchorSpec(t))
	bundle, err := ParseTrustBundle(append(append([]byte{}, a.PEM...), b.PEM...))
	if err != nil {
		t.Fatal(err)
	}
	if !BundleContains(bundle, a.Certificate) || !BundleContains(bundle[1:], b.Certificate) || BundleContains(bundle[1:], a.Certificate) {
		t.Fatal("BundleContains is wrong")
	}
	sum := sha256.Sum256(a.Certificate.Raw)
	fp := Fingerprint(a.Certificate)
	if strings.ReplaceAll(fp, ":", "") != strings.ToUpper(fmt.Sprintf("%x", sum)) || len(fp) != 32*3-1 {
		t.Fatalf("fingerprint %s", fp)
	}
}
