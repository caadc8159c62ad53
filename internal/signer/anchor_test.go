package signer

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"strings"
	"testing"
	"time"
)

func TestParseAnchor(t *testing.T) {
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	with := func(mutate func(*anchorSpec)) func(testing.TB) ([]byte, []byte) {
		return func(t testing.TB) ([]byte, []byte) {
			s := defaultAnchorSpec(t)
			mutate(&s)
			return makeAnchor(t, s)
		}
	}
	const algs = "Linkerd accepts trust anchors with ECDSA P-256 or RSA 2048/4096 keys, signed with ECDSA-SHA256 or SHA256-RSA"
	tests := []struct {
		name   string
		anchor func(testing.TB) ([]byte, []byte)
		want   string // "" means accepted
	}{
		{name: "ECDSA P-256 root", anchor: with(func(*anchorSpec) {})},
		{name: "RSA 2048 root", anchor: with(func(s *anchorSpec) { s.key = rsaKey(t, 2048) })},
		{name: "RSA 4096 root signed SHA256-RSA", anchor: with(func(s *anchorSpec) { s.key = rsaKey(t, 4096); s.sigAlg = x509.SHA256WithRSA })},
		{name: "root with path length 1", anchor: with(func(s *anchorSpec) { s.pathLen = 1 })},
		{name: "root with server and client auth", anchor: with(func(s *anchorSpec) {
			s.extUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
		})},

		{name: "missing tls.crt", anchor: func(t testing.TB) ([]byte, []byte) { _, k := makeAnchor(t, defaultAnchorSpec(t)); return nil, k },
			want: "tls.crt is missing or empty; put the trust anchor certificate (PEM) in tls.crt"},
		{name: "missing tls.key", anchor: func(t testing.TB) ([]byte, []byte) { c, _ := makeAnchor(t, defaultAnchorSpec(t)); return c, nil },
			want: "tls.key is missing or empty; put the trust anchor private key (PEM) in tls.key"},
		{name: "key of another certificate", anchor: func(t testing.TB) ([]byte, []byte) {
			c, _ := makeAnchor(t, defaultAnchorSpec(t))
			_, k := makeAnchor(t, defaultAnchorSpec(t))
			return c, k
		}, want: "tls.key does not match the certificate in tls.crt; store the private key of that certificate"},
		{name: "not a CA", anchor: with(func(s *anchorSpec) { s.isCA = false }),
			want: "the certificate in tls.crt is not a CA (basic constraints CA:TRUE missing); a trust anchor must be a root CA"},
		{name: "CA without cert sign", anchor: with(func(s *anchorSpec) { s.keyUsage = x509.KeyUsageDigitalSignature }),
			want: "the certificate in tls.crt lacks the cert sign key usage; a trust anchor must be allowed to sign certificates"},
		{name: "path length 0", anchor: with(func(s *anchorSpec) { s.pathLen = 0 }),
			want: "the certificate in tls.crt has path length 0, so the issuer it signs could not sign proxy certificates; create the trust anchor without a path length limit (or with 1 or more)"},
		{name: "server auth only", anchor: with(func(s *anchorSpec) { s.extUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth} }),
			want: "the certificate in tls.crt restricts extended key usages without both server auth and client auth; Linkerd proxies would reject every certificate under it"},
		{name: "expired", anchor: with(func(s *anchorSpec) { s.notBefore = testNow.Add(-48 * time.Hour); s.notAfter = testNow.Add(-time.Hour) }),
			want: "the certificate in tls.crt expired at 2026-11-29T11:00:00Z; create a new trust anchor and rotate Linkerd's trust roots"},
		{name: "not yet valid", anchor: with(func(s *anchorSpec) { s.notBefore = testNow.Add(time.Hour) }),
			want: "the certificate in tls.crt is not valid until 2026-11-29T13:00:00Z; wait, or fix the clock that made it"},
		{name: "P-384 anchor", anchor: with(func(s *anchorSpec) { s.key = p384 }),
			want: "the certificate in tls.crt has an ECDSA P-384 key; " + algs},
		{name: "RSA 1024 anchor", anchor: with(func(s *anchorSpec) { s.key = rsaKey(t, 1024) }),
			want: "the certificate in tls.crt has an RSA 1024 key; " + algs},
		{name: "RSA 3072 anchor", anchor: with(func(s *anchorSpec) { s.key = rsaKey(t, 3072) }),
			want: "the certificate in tls.crt has an RSA 3072 key; " + algs},
		{name: "P-256 anchor signed with SHA-384", anchor: with(func(s *anchorSpec) { s.sigAlg = x509.ECDSAWithSHA384 }),
			want: "the certificate in tls.crt is signed with ECDSA-SHA384; " + algs},
		{name: "two certificates in tls.crt", anchor: func(t testing.TB) ([]byte, []byte) {
			c, k := makeAnchor(t, defaultAnchorSpec(t))
			c2, _ := makeAnchor(t, defaultAnchorSpec(t))
			return append(c, c2...), k
		}, want: "tls.crt holds 2 certificates; it must hold exactly one, the trust anchor (root CA) Linkerd trusts"},
		{name: "tls.crt not PEM", anchor: func(t testing.TB) ([]byte, []byte) {
			_, k := makeAnchor(t, defaultAnchorSpec(t))
			return []byte("hello"), k
		},
			want: "tls.crt does not decode as a PEM certificate: error decoding certificate PEM block: no valid certificates found"},
		{name: "tls.key not PEM", anchor: func(t testing.TB) ([]byte, []byte) {
			c, _ := makeAnchor(t, defaultAnchorSpec(t))
			return c, []byte("hello")
		},
			want: "tls.key does not decode as a PEM private key: error decoding private key PEM block: no PEM data was found in given input"},
		{name: "oversized tls.crt", anchor: func(t testing.TB) ([]byte, []byte) {
			c, k := makeAnchor(t, defaultAnchorSpec(t))
			return append(c, bytes.Repeat([]byte("A"), MaxAnchorCertificateBytes)...), k
		}, want: "over the 16384 byte limit; it must hold only the trust anchor certificate"},
		{name: "oversized tls.key", anchor: func(t testing.TB) ([]byte, []byte) {
			c, k := makeAnchor(t, defaultAnchorSpec(t))
			return c, append(k, bytes.Repeat([]byte("A"), MaxAnchorKeyBytes)...)
		}, want: "over the 16384 byte limit; it must hold only the trust anchor private key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			certPEM, keyPEM := tc.anchor(t)
			a, err := ParseAnchor(certPEM, keyPEM, testNow)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("want accepted, got %v", err)
				}
				if !bytes.Equal(a.PEM, certPEM) {
					t.Errorf("anchor PEM differs from tls.crt:\n%s", a.PEM)
				}
				return
			}
			if err == nil {
				t.Fatalf("want refused with %q, got accepted", tc.want)
			}
			if !isAnchorError(err) {
				t.Errorf("error is not an AnchorError: %T", err)
			}
			if !strings.HasSuffix(err.Error(), tc.want) {
				t.Errorf("message:\n got: %s\nwant: %s", err, tc.want)
			}
		})
	}
}

// TestParseAnchorRefusesPathologicalPEMQuickly feeds inputs built to make a
// naive decoder work hard; the size bound must refuse them before decoding.
// How fast is measured by BenchmarkParseAnchorOversized, not timed here.
func TestParseAnchorRefusesPathologicalPEM(t *testing.T) {
	c, k := makeAnchor(t, defaultAnchorSpec(t))
	huge := bytes.Repeat([]byte("-----BEGIN CERTIFICATE-----\n"), 1<<16)
	for name, in := range map[string][2][]byte{
		"many BEGIN lines in tls.crt": {huge, k},
		"many BEGIN lines in tls.key": {c, huge},
		"unterminated block":          {[]byte("-----BEGIN CERTIFICATE-----\n" + strings.Repeat("QUFB", 3000)), k},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := ParseAnchor(in[0], in[1], testNow); err == nil || !isAnchorError(err) {
				t.Fatalf("want an AnchorError, got %v", err)
			}
		})
	}
}

func BenchmarkParseAnchorOversized(b *testing.B) {
	_, k := makeAnchor(b, defaultAnchorSpec(b))
	huge := bytes.Repeat([]byte("-----BEGIN CERTIFICATE-----\n"), 1<<16)
	for b.Loop() {
		if _, err := ParseAnchor(huge, k, testNow); err == nil {
			b.Fatal("accepted")
		}
	}
}

func TestRootKeyMatchesACopyRenewedWithTheSameKey(t *testing.T) {
	selfSigned := func(key *ecdsa.PrivateKey, serial int64, cn string) *x509.Certificate {
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Now().Add(time.Duration(serial) * time.Hour), NotAfter: time.Now().Add(time.Duration(serial+1) * time.Hour),
			BasicConstraintsValid: true, IsCA: true, KeyUsage: x509.KeyUsageCertSign}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
		if err != nil {
			t.Fatal(err)
		}
		c, _ := x509.ParseCertificate(der)
		return c
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	a, renewed := selfSigned(key, 1, "root"), selfSigned(key, 2, "root")
	if Fingerprint(renewed) == Fingerprint(a) || RootKey(renewed) != RootKey(a) {
		t.Error("a copy renewed with the same key and subject: want another fingerprint, the same RootKey")
	}
	if RootKey(selfSigned(otherKey, 1, "root")) == RootKey(a) {
		t.Error("another key has the same RootKey")
	}
	if RootKey(selfSigned(key, 1, "another")) == RootKey(a) {
		t.Error("the same key under another subject has the same RootKey: a verifier would not match it")
	}
}
