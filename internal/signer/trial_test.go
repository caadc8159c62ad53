package signer

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"strings"
	"testing"
	"time"
)

var (
	// policyConstraints with requireExplicitPolicy 0: every certificate
	// below must assert a policy, which nothing Linkerd signs does.
	requireExplicitPolicy = pkix.Extension{Id: asn1.ObjectIdentifier{2, 5, 29, 36}, Critical: true, Value: []byte{0x30, 0x03, 0x80, 0x01, 0x00}}
	// A critical extension nobody understands.
	unknownCritical = pkix.Extension{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 55555, 1}, Critical: true, Value: []byte{0x05, 0x00}}
)

// TestCheckTrialChain: each kind of anchor constraint that would make Linkerd
// reject its chain is refused with a message naming it; anchors whose
// constraints allow Linkerd's names pass.
func TestCheckTrialChain(t *testing.T) {
	custom := Policy{TrustDomain: "example.org", ControlPlaneNamespace: "linkerd", MinDuration: time.Hour, MaxDuration: 48 * time.Hour}
	tests := []struct {
		name   string
		policy Policy
		mutate func(*anchorSpec)
		want   string // "" means usable
	}{
		{name: "plain root", mutate: func(*anchorSpec) {}},
		{name: "RSA 2048 root", mutate: func(s *anchorSpec) { s.key = rsaKey(t, 2048) }},
		{name: "name constraints permitting the trust domain", mutate: func(s *anchorSpec) { s.permittedDNS = []string{"cluster.local"} }},
		{name: "root named like its issuer", mutate: func(s *anchorSpec) { s.subject = "identity.linkerd.cluster.local" }},
		{name: "server and client auth", mutate: func(s *anchorSpec) {
			s.extUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
		}},

		{name: "name constraints permitting only example.com", mutate: func(s *anchorSpec) { s.permittedDNS = []string{"example.com"} },
			want: `the trust anchor's name constraints do not permit the proxy identity "default.default.serviceaccount.identity.linkerd.cluster.local"`},
		{name: "name constraints excluding the trust domain", mutate: func(s *anchorSpec) { s.excludedDNS = []string{"cluster.local"} },
			want: "the trust anchor's name constraints do not permit the proxy identity"},
		{name: "name constraints for another trust domain", policy: custom, mutate: func(s *anchorSpec) { s.permittedDNS = []string{"cluster.local"} },
			want: `do not permit the proxy identity "default.default.serviceaccount.identity.linkerd.example.org"`},
		{name: "unknown critical extension", mutate: func(s *anchorSpec) { s.extra = []pkix.Extension{unknownCritical} },
			want: "the trust anchor has critical extension 1.3.6.1.4.1.55555.1, which verifiers do not understand"},
		{name: "policy constraints requiring an explicit policy", mutate: func(s *anchorSpec) { s.extra = []pkix.Extension{requireExplicitPolicy} },
			want: "the trust anchor's policy constraints require an explicit certificate policy (requireExplicitPolicy 0)"},
		{name: "extended key usage without server auth", mutate: func(s *anchorSpec) { s.extUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth} },
			want: "does not verify for server auth"},
		{name: "extended key usage without client auth", mutate: func(s *anchorSpec) { s.extUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth} },
			want: "does not verify for client auth"},
		{name: "path length 0", mutate: func(s *anchorSpec) { s.pathLen = 0 },
			want: "the trust anchor's path length does not allow an identity issuer that signs proxy certificates"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			spec := defaultAnchorSpec(t)
			tc.mutate(&spec)
			p := tc.policy
			if p.TrustDomain == "" {
				p = defaultPolicy
			}
			err := CheckTrialChain(p, rawAnchor(t, spec), testNow)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("want usable, got %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("want refusal containing %q, got usable", tc.want)
			}
			if !errors.As(err, new(*AnchorError)) {
				t.Errorf("error is not an *AnchorError: %T", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("message:\n got: %s\nwant: …%s…", err, tc.want)
			}
			if !strings.Contains(err.Error(), "docs/rotation.md") {
				t.Errorf("message does not say how to fix it: %s", err)
			}
		})
	}
}

// FuzzCheckTrialChain builds anchors from arbitrary constraints: whatever the
// trial accepts, a proxy certificate under an issuer Sign makes from that
// anchor verifies.
func FuzzCheckTrialChain(f *testing.F) {
	f.Add("", "", uint8(0), false)
	f.Add("example.com", "", uint8(0), false)
	f.Add("cluster.local", "", uint8(3), false)
	f.Add("", "linkerd.cluster.local", uint8(1), true)
	f.Add(".local", "", uint8(2), false)
	f.Fuzz(func(t *testing.T, permitted, excluded string, eku uint8, explicitPolicy bool) {
		spec := defaultAnchorSpec(t)
		if permitted != "" {
			spec.permittedDNS = []string{permitted}
		}
		if excluded != "" {
			spec.excludedDNS = []string{excluded}
		}
		spec.extUsage = [][]x509.ExtKeyUsage{nil, {x509.ExtKeyUsageServerAuth}, {x509.ExtKeyUsageClientAuth},
			{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, {x509.ExtKeyUsageCodeSigning}, {x509.ExtKeyUsageAny}}[int(eku)%6]
		if explicitPolicy {
			spec.extra = []pkix.Extension{requireExplicitPolicy}
		}
		anchor, err := anchorAsIs(spec)
		if err != nil {
			return // constraints Go will not encode are no anchor at all
		}
		if err := CheckTrialChain(defaultPolicy, anchor, testNow); err != nil {
			if !errors.As(err, new(*AnchorError)) {
				t.Fatalf("error is not an *AnchorError: %#v", err)
			}
			return
		}
		// Accepted: a real issuer Sign makes, and a proxy under it, verify.
		issuerKey := p256Key(t)
		issued, err := Sign(defaultPolicy, anchor, requestWithKey(t, seedCertificate(), issuerKey), testNow)
		if err != nil {
			t.Fatalf("trial accepted the anchor but Sign failed: %v", err)
		}
		leaf := proxyUnder(t, issued.Certificate, issuerKey, defaultPolicy.TrialProxyName())
		if err := VerifyProxyChain(leaf, issued.Certificate, anchor.Certificate, testNow); err != nil {
			t.Fatalf("trial accepted the anchor but the issued chain fails: %v", err)
		}
	})
}
