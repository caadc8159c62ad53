package signer

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"github.com/cert-manager/cert-manager/pkg/util/pki"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const (
	needs   = "a Linkerd identity issuer needs cert sign, crl sign, server auth, client auth"
	mayHave = "a Linkerd identity issuer may have only cert sign, crl sign, server auth, client auth and digital signature"
	onlySAN = `the only subject alternative name allowed is DNS name "identity.linkerd.cluster.local" (remove spec.dnsNames, ipAddresses, uris and emailAddresses from the Certificate)`
	bounds  = "this issuer allows 1h0m0s to 8760h0m0s (its spec.minDuration and spec.maxDuration); set spec.duration on the Certificate within them"
	keyFix  = "a Linkerd identity issuer key must be ECDSA P-256 (set spec.privateKey.algorithm: ECDSA and size: 256 on the Certificate)"
)

func TestPolicyCheck(t *testing.T) {
	withCert := func(mutate func(*cmapi.Certificate)) func(testing.TB) Request {
		return func(t testing.TB) Request {
			crt := seedCertificate()
			mutate(crt)
			return requestFor(t, crt)
		}
	}
	withUsages := func(u ...cmapi.KeyUsage) func(testing.TB) Request {
		return withCert(func(c *cmapi.Certificate) { c.Spec.Usages = u })
	}
	tests := []struct {
		name    string
		request func(testing.TB) Request
		rule    string // "" means signed
		message string
	}{
		{name: "the seed Certificate is signed", request: withCert(func(*cmapi.Certificate) {})},
		{name: "no DNS SAN at all is signed", request: withCert(func(c *cmapi.Certificate) { c.Spec.DNSNames = nil })},
		{name: "digital signature is allowed", request: withUsages(cmapi.UsageCertSign, cmapi.UsageCRLSign, cmapi.UsageServerAuth, cmapi.UsageClientAuth, cmapi.UsageDigitalSignature)},
		{name: "usages in another order are signed", request: withUsages(cmapi.UsageClientAuth, cmapi.UsageServerAuth, cmapi.UsageCRLSign, cmapi.UsageCertSign)},
		{name: "duration at the minimum is signed", request: withCert(func(c *cmapi.Certificate) { c.Spec.Duration = &metav1.Duration{Duration: time.Hour} })},
		{name: "duration at the maximum is signed", request: withCert(func(c *cmapi.Certificate) { c.Spec.Duration = &metav1.Duration{Duration: 8760 * time.Hour} })},

		{
			name: "isCA false", request: withCert(func(c *cmapi.Certificate) { c.Spec.IsCA = false }),
			rule: RuleIsCA, message: "isCA: the request has isCA false; a Linkerd identity issuer must be a CA (set spec.isCA: true on the Certificate)",
		},
		{
			name: "CSR basic constraints contradict isCA",
			request: func(t testing.TB) Request {
				leaf := seedCertificate()
				leaf.Spec.IsCA = false
				csr := requestFor(t, leaf, pki.WithEncodeBasicConstraintsInRequest(true))
				req := requestFor(t, seedCertificate())
				req.CSR = csr.CSR
				return req
			},
			rule: RuleIsCA, message: "isCA: the CSR contradicts the request's isCA true (encoded CSR error: IsCA false does not match expected value true); regenerate the CSR as a CA request",
		},
		{
			name: "missing cert sign (Kubernetes CSR API does not add it)",
			request: func(t testing.TB) Request {
				req := requestFor(t, seedCertificate())
				req.KeyUsage &^= x509.KeyUsageCertSign
				return req
			},
			rule: RuleUsages, message: `usages: missing "cert sign"; ` + needs,
		},
		{name: "missing crl sign", request: withUsages(cmapi.UsageCertSign, cmapi.UsageServerAuth, cmapi.UsageClientAuth), rule: RuleUsages, message: `usages: missing "crl sign"; ` + needs},
		{name: "missing server auth", request: withUsages(cmapi.UsageCertSign, cmapi.UsageCRLSign, cmapi.UsageClientAuth), rule: RuleUsages, message: `usages: missing "server auth"; ` + needs},
		{name: "missing client auth", request: withUsages(cmapi.UsageCertSign, cmapi.UsageCRLSign, cmapi.UsageServerAuth), rule: RuleUsages, message: `usages: missing "client auth"; ` + needs},
		{name: "no usages at all (cert-manager's defaults)", request: withUsages(), rule: RuleUsages, message: `usages: missing "crl sign", "server auth", "client auth"; ` + needs},
		{
			name: "extra key encipherment", request: withUsages(cmapi.UsageCertSign, cmapi.UsageCRLSign, cmapi.UsageServerAuth, cmapi.UsageClientAuth, cmapi.UsageKeyEncipherment),
			rule: RuleUsages, message: `usages: "key encipherment" not allowed; ` + mayHave,
		},
		{
			name: "extra code signing", request: withUsages(cmapi.UsageCertSign, cmapi.UsageCRLSign, cmapi.UsageServerAuth, cmapi.UsageClientAuth, cmapi.UsageCodeSigning),
			rule: RuleUsages, message: `usages: "code signing" not allowed; ` + mayHave,
		},
		{
			name: "CSR usages contradict the request",
			request: func(t testing.TB) Request {
				req := requestFor(t, seedCertificate())
				req.KeyUsage |= x509.KeyUsageDigitalSignature
				return req
			},
			rule: RuleUsages, message: "usages: the CSR contradicts the request's usages (encoded CSR error: the KeyUsages [ 'cert sign', 'crl sign' ] do not match the expected KeyUsages [ 'digital signature', 'cert sign', 'crl sign' ]); regenerate the CSR",
		},
		{
			name: "wrong common name", request: withCert(func(c *cmapi.Certificate) { c.Spec.CommonName = "identity.linkerd.example.org"; c.Spec.DNSNames = nil }),
			rule: RuleSubject, message: `subject: common name "identity.linkerd.example.org"; the common name must be "identity.linkerd.cluster.local", identity.<controlPlaneNamespace>.<trustDomain> of this issuer (set spec.commonName on the Certificate)`,
		},
		{
			name: "no common name", request: withCert(func(c *cmapi.Certificate) { c.Spec.CommonName = "" }),
			rule: RuleSubject, message: `subject: no common name; the common name must be "identity.linkerd.cluster.local", identity.<controlPlaneNamespace>.<trustDomain> of this issuer (set spec.commonName on the Certificate)`,
		},
		{
			name: "extra subject attribute", request: withCert(func(c *cmapi.Certificate) { c.Spec.Subject = &cmapi.X509Subject{Organizations: []string{"acme"}} }),
			rule: RuleSubject, message: "subject: attribute O=acme is not allowed; the subject must be only CN=identity.linkerd.cluster.local (remove spec.subject from the Certificate)",
		},
		{
			name: "extra DNS name", request: withCert(func(c *cmapi.Certificate) { c.Spec.DNSNames = append(c.Spec.DNSNames, "evil.example.org") }),
			rule: RuleSANs, message: `subjectAltNames: DNS name "evil.example.org" is not allowed; ` + onlySAN,
		},
		{
			name: "IP SAN", request: withCert(func(c *cmapi.Certificate) { c.Spec.IPAddresses = []string{"10.0.0.1"} }),
			rule: RuleSANs, message: "subjectAltNames: IP address 10.0.0.1 is not allowed; " + onlySAN,
		},
		{
			name: "URI SAN", request: withCert(func(c *cmapi.Certificate) { c.Spec.URIs = []string{"spiffe://cluster.local/ns/linkerd"} }),
			rule: RuleSANs, message: `subjectAltNames: URI "spiffe://cluster.local/ns/linkerd" is not allowed; ` + onlySAN,
		},
		{
			name: "email SAN", request: withCert(func(c *cmapi.Certificate) { c.Spec.EmailAddresses = []string{"ops@example.org"} }),
			rule: RuleSANs, message: `subjectAltNames: email address "ops@example.org" is not allowed; ` + onlySAN,
		},
		{
			name: "RSA key", request: withCert(func(c *cmapi.Certificate) {
				c.Spec.PrivateKey = &cmapi.CertificatePrivateKey{Algorithm: cmapi.RSAKeyAlgorithm, Size: 2048}
			}),
			rule: RuleKey, message: "key: RSA 2048 is not allowed; " + keyFix,
		},
		{
			name: "P-384 key", request: withCert(func(c *cmapi.Certificate) {
				c.Spec.PrivateKey = &cmapi.CertificatePrivateKey{Algorithm: cmapi.ECDSAKeyAlgorithm, Size: 384}
			}),
			rule: RuleKey, message: "key: ECDSA P-384 is not allowed; " + keyFix,
		},
		{
			name: "Ed25519 key", request: withCert(func(c *cmapi.Certificate) {
				c.Spec.PrivateKey = &cmapi.CertificatePrivateKey{Algorithm: cmapi.Ed25519KeyAlgorithm}
			}),
			rule: RuleKey, message: "key: Ed25519 is not allowed; " + keyFix,
		},
		{
			name: "bad CSR signature",
			request: func(t testing.TB) Request {
				req := requestFor(t, seedCertificate())
				block, _ := pem.Decode(req.CSR)
				block.Bytes[len(block.Bytes)-3] ^= 0xff // inside the signature value
				req.CSR = pem.EncodeToMemory(block)
				return req
			},
			rule: RuleCSR, message: "csr: the signature does not verify (x509: ECDSA verification failure); the CSR must be signed by the private key it carries",
		},
		{
			name: "CSR that is not PEM",
			request: func(t testing.TB) Request {
				req := requestFor(t, seedCertificate())
				req.CSR = []byte("not a CSR")
				return req
			},
			rule: RuleCSR, message: "csr: cannot decode the PEM certificate signing request (error decoding certificate request PEM block: no PEM data was found in given input); it must be one PEM block of type CERTIFICATE REQUEST",
		},
		{
			name: "duration below the minimum", request: withCert(func(c *cmapi.Certificate) { c.Spec.Duration = &metav1.Duration{Duration: 59 * time.Minute} }),
			rule: RuleDuration, message: "duration: 59m0s is shorter than the minimum; " + bounds,
		},
		{
			name: "duration above the maximum", request: withCert(func(c *cmapi.Certificate) { c.Spec.Duration = &metav1.Duration{Duration: 8761 * time.Hour} }),
			rule: RuleDuration, message: "duration: 8761h0m0s is longer than the maximum; " + bounds,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			csr, err := defaultPolicy.Check(tc.request(t))
			if tc.rule == "" {
				if err != nil {
					t.Fatalf("want signed, got refusal: %v", err)
				}
				if csr == nil {
					t.Fatal("accepted request returned no CSR")
				}
				return
			}
			if err == nil {
				t.Fatalf("want refusal by rule %q, got signed", tc.rule)
			}
			var refusal *Refusal
			if !errors.As(err, &refusal) {
				t.Fatalf("error is not a *Refusal: %v", err)
			}
			if refusal.Rule != tc.rule {
				t.Errorf("rule = %q, want %q (%v)", refusal.Rule, tc.rule, err)
			}
			if err.Error() != tc.message {
				t.Errorf("message:\n got: %s\nwant: %s", err, tc.message)
			}
		})
	}
	// The same table signed with an anchor whose key is in a KMS: the
	// policy does not depend on where the key is.
	kms := kmsAnchor(t, p256Key(t))
	for _, tc := range tests {
		t.Run("KMS anchor/"+tc.name, func(t *testing.T) {
			issued, err := Sign(defaultPolicy, kms, tc.request(t), testNow)
			var refusal *Refusal
			switch {
			case tc.rule == "" && err != nil:
				t.Fatalf("want signed, got: %v", err)
			case tc.rule == "":
				if err := issued.Certificate.CheckSignatureFrom(kms.Certificate); err != nil {
					t.Errorf("not signed by the KMS anchor: %v", err)
				}
			case !errors.As(err, &refusal) || refusal.Rule != tc.rule || err.Error() != tc.message:
				t.Errorf("got %v; want refusal by rule %q: %s", err, tc.rule, tc.message)
			}
		})
	}
}

func TestPolicyUsesTheIssuersNames(t *testing.T) {
	p := Policy{TrustDomain: "example.org", ControlPlaneNamespace: "mesh", MinDuration: time.Hour, MaxDuration: 48 * time.Hour}
	if got := p.CommonName(); got != "identity.mesh.example.org" {
		t.Fatalf("CommonName = %q", got)
	}
	crt := seedCertificate()
	crt.Spec.CommonName, crt.Spec.DNSNames = "identity.mesh.example.org", []string{"identity.mesh.example.org"}
	if _, err := p.Check(requestFor(t, crt)); err != nil {
		t.Fatalf("request for the issuer's own name refused: %v", err)
	}
	if _, err := p.Check(requestFor(t, seedCertificate())); err == nil || !strings.Contains(err.Error(), `must be "identity.mesh.example.org"`) {
		t.Fatalf("request for the default name under a custom issuer: %v", err)
	}
}

func TestPolicyRefusesOtherNameSAN(t *testing.T) {
	// cert-manager can ask for otherName SANs, which Go's CSR parser drops
	// silently; the policy must still see them.
	crt := seedCertificate()
	crt.Spec.OtherNames = []cmapi.OtherName{{OID: "1.3.6.1.4.1.311.20.2.3", UTF8Value: "upn@example.org"}}
	_, err := defaultPolicy.Check(requestFor(t, crt, pki.WithOtherNames(true)))
	want := "subjectAltNames: otherName 1.3.6.1.4.1.311.20.2.3 is not allowed; " + onlySAN
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %s", err, want)
	}
}

func TestPolicyRefusesDuplicateDNSSAN(t *testing.T) {
	tmpl := &x509.CertificateRequest{}
	tmpl.Subject.CommonName = "identity.linkerd.cluster.local"
	tmpl.DNSNames = []string{"identity.linkerd.cluster.local", "identity.linkerd.cluster.local"}
	key := p256Key(t)
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	req := requestFor(t, seedCertificate())
	req.CSR = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
	_, err = defaultPolicy.Check(req)
	want := `subjectAltNames: DNS name "identity.linkerd.cluster.local" appears 2 times; ` + onlySAN
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %s", err, want)
	}
}

// TestNamespaceRule: a cluster issuer signs only for its control plane's
// namespace, and a Kubernetes CSR only for a named requester.
func TestNamespaceRule(t *testing.T) {
	cluster := defaultPolicy
	cluster.Namespace = "linkerd"
	withRequesters := cluster
	withRequesters.Requesters = []string{"system:serviceaccount:linkerd:bootstrap"}
	tests := []struct {
		name      string
		policy    Policy
		namespace string
		requester string
		rule      string // "" means signed
		message   string
	}{
		{name: "cluster issuer, control plane namespace", policy: cluster, namespace: "linkerd"},
		{name: "namespaced issuer, any namespace of its own", policy: defaultPolicy, namespace: "team-a"},
		{name: "cluster issuer, tenant namespace", policy: cluster, namespace: "team-a", rule: RuleNamespace,
			message: `namespace: the request comes from namespace "team-a"; this issuer signs only for namespace "linkerd", where Linkerd's control plane reads its identity issuer (spec.controlPlaneNamespace), because an identity issuer is a CA under the mesh root that could impersonate every meshed workload. Create the Certificate in namespace "linkerd"`},
		{name: "cluster issuer, namespace named like the control plane's prefix", policy: cluster, namespace: "linkerd-viz", rule: RuleNamespace,
			message: `namespace: the request comes from namespace "linkerd-viz"`},
		{name: "Kubernetes CSR, named requester", policy: withRequesters, requester: "system:serviceaccount:linkerd:bootstrap"},
		{name: "Kubernetes CSR, no requester named", policy: cluster, requester: "alice", rule: RuleRequester,
			message: `requester: Kubernetes CertificateSigningRequest from "alice"; such a request has no namespace to hold it to Linkerd's control plane, so only the requesters named in --kubernetes-csr-requesters (Helm value kubernetesCSR.requesters) are signed (none is named). Use a cert-manager Certificate in namespace "linkerd" instead`},
		{name: "Kubernetes CSR, another requester", policy: withRequesters, requester: "alice", rule: RuleRequester,
			message: `(named: "system:serviceaccount:linkerd:bootstrap")`},
		{name: "Kubernetes CSR to a namespaced issuer, no requester named", policy: defaultPolicy, requester: "alice", rule: RuleRequester,
			message: `requester: Kubernetes CertificateSigningRequest from "alice"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := requestFor(t, seedCertificate())
			req.Namespace, req.Requester = tc.namespace, tc.requester
			_, err := tc.policy.Check(req)
			if tc.rule == "" {
				if err != nil {
					t.Fatalf("want signed, got %v", err)
				}
				return
			}
			var refusal *Refusal
			if !errors.As(err, &refusal) || refusal.Rule != tc.rule {
				t.Fatalf("want refusal by %q, got %v", tc.rule, err)
			}
			if !strings.Contains(err.Error(), tc.message) {
				t.Errorf("message:\n got: %s\nwant: …%s…", err, tc.message)
			}
		})
	}
}

// FuzzNamespaceRule: whatever the namespace and requester, a cluster
// issuer's policy signs only for its own namespace or a named requester.
func FuzzNamespaceRule(f *testing.F) {
	req := requestFor(f, seedCertificate())
	f.Add("linkerd", "")
	f.Add("", "system:serviceaccount:linkerd:bootstrap")
	f.Add("", "")
	f.Add("Linkerd", "x")
	f.Add("linkerd ", "")
	p := defaultPolicy
	p.Namespace = "linkerd"
	p.Requesters = []string{"system:serviceaccount:linkerd:bootstrap"}
	f.Fuzz(func(t *testing.T, namespace, requester string) {
		r := req
		r.Namespace, r.Requester = namespace, requester
		_, err := p.Check(r)
		allowed := namespace == "linkerd" || (namespace == "" && requester == "system:serviceaccount:linkerd:bootstrap")
		if allowed != (err == nil) {
			t.Fatalf("namespace %q requester %q: allowed=%v, got %v", namespace, requester, allowed, err)
		}
	})
}
