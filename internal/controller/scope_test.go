package controller

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	issuersigner "github.com/cert-manager/issuer-lib/controllers/signer"
	"github.com/go-logr/logr/funcr"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/metrics"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/signer"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/testing/testpki"
)

// logInto returns a context whose logger writes every line, at every
// verbosity, into buf.
func logInto(buf *bytes.Buffer) context.Context {
	return ctrl.LoggerInto(context.Background(), funcr.New(func(prefix, args string) {
		fmt.Fprintln(buf, prefix, args)
	}, funcr.Options{Verbosity: 10}))
}

// TestClusterIssuerSignsOnlyForTheControlPlane: a LinkerdCAClusterIssuer
// refuses for good a Certificate from a tenant namespace, and says where the
// Certificate belongs.
func TestClusterIssuerSignsOnlyForTheControlPlane(t *testing.T) {
	a := newAnchor(t, now.Add(365*24*time.Hour))
	s, _ := newSigner(t, anchorSecret("linkerd-ca-issuer", a))
	var log bytes.Buffer
	ctx := logInto(&log)

	_, err := s.Sign(ctx, certificateRequest(t, testpki.SeedCertificate("team-a")), clusterIssuer())
	var refusal *signer.Refusal
	if !errors.As(err, &issuersigner.PermanentError{}) || !errors.As(err, &refusal) || refusal.Rule != signer.RuleNamespace {
		t.Fatalf("tenant request: got %v, want a permanent namespace refusal", err)
	}
	if want := `this issuer signs only for namespace "linkerd"`; !strings.Contains(err.Error(), want) {
		t.Errorf("message %q does not say %q", err, want)
	}
	if !strings.Contains(log.String(), `"msg"="refused" "request"="team-a/linkerd-identity-issuer-1" "requestKind"="CertificateRequest" "issuerKind"="LinkerdCAClusterIssuer" "issuer"="linkerd" "rule"="namespace"`) {
		t.Errorf("no audit line for the refusal:\n%s", log.String())
	}
	if _, err := s.Sign(ctx, certificateRequest(t, testpki.SeedCertificate("linkerd")), clusterIssuer()); err != nil {
		t.Fatalf("control plane request: %v", err)
	}
}

// csrFrom is a Kubernetes CSR for the guide's Certificate, made by user.
func csrFrom(t *testing.T, user string) issuersigner.CertificateRequestObject {
	t.Helper()
	pemCSR, _, err := testpki.CSRFor(testpki.SeedCertificate("linkerd"))
	if err != nil {
		t.Fatal(err)
	}
	return issuersigner.CertificateRequestObjectFromCertificateSigningRequest(&certificatesv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{Name: "csr-1", Annotations: map[string]string{"experimental.cert-manager.io/request-is-ca": "true"}},
		Spec: certificatesv1.CertificateSigningRequestSpec{
			Request: pemCSR, SignerName: "linkerdcaclusterissuers.linkerdca.io/linkerd", Username: user,
			Usages: []certificatesv1.KeyUsage{certificatesv1.UsageCertSign, certificatesv1.UsageCRLSign, certificatesv1.UsageServerAuth, certificatesv1.UsageClientAuth},
		},
		Status: certificatesv1.CertificateSigningRequestStatus{Conditions: []certificatesv1.CertificateSigningRequestCondition{
			{Type: ConditionValidityStarted, Status: corev1.ConditionTrue, Reason: ReasonFirstSigningAttempt, LastTransitionTime: metav1.NewTime(now.Add(-time.Second))},
		}},
	})
}

// TestKubernetesCSRNeedsANamedRequester: a CSR carries no namespace, so only
// a requester the operator named gets one signed.
func TestKubernetesCSRNeedsANamedRequester(t *testing.T) {
	a := newAnchor(t, now.Add(365*24*time.Hour))
	s, _ := newSigner(t, anchorSecret("linkerd-ca-issuer", a))
	s.CSRRequesters = []string{"system:serviceaccount:linkerd:bootstrap"}
	if _, err := s.Sign(context.Background(), csrFrom(t, "system:serviceaccount:linkerd:bootstrap"), clusterIssuer()); err != nil {
		t.Fatalf("named requester: %v", err)
	}
	_, err := s.Sign(context.Background(), csrFrom(t, "system:serviceaccount:team-a:default"), clusterIssuer())
	var refusal *signer.Refusal
	if !errors.As(err, &issuersigner.PermanentError{}) || !errors.As(err, &refusal) || refusal.Rule != signer.RuleRequester {
		t.Fatalf("other requester: got %v, want a permanent requester refusal", err)
	}
}

// TestAuditLogsEverySignature: one line per signature at the default level,
// with what identifies the certificate and the anchor, and no key material.
func TestAuditLogsEverySignature(t *testing.T) {
	a := newAnchor(t, now.Add(365*24*time.Hour))
	s, _ := newSigner(t, anchorSecret("linkerd", a))
	var log bytes.Buffer
	bundle, err := s.Sign(logInto(&log), certificateRequest(t, testpki.SeedCertificate("linkerd")), issuer("linkerd"))
	if err != nil {
		t.Fatal(err)
	}
	cert := decodeOne(t, bundle.ChainPEM)
	lines := strings.Split(strings.TrimSpace(log.String()), "\n")
	var audit []string
	for _, l := range lines {
		if strings.Contains(l, `"msg"="signed"`) {
			audit = append(audit, l)
		}
	}
	if len(audit) != 1 {
		t.Fatalf("%d audit lines, want 1:\n%s", len(audit), log.String())
	}
	want := fmt.Sprintf(`"msg"="signed" "request"="linkerd/linkerd-identity-issuer-1" "requestKind"="CertificateRequest" "issuerKind"="LinkerdCAIssuer" "issuer"="linkerd/linkerd" "serial"="%s" "notAfter"="%s" "sha256"="%s" "anchorSHA256"="%s"`,
		cert.SerialNumber.Text(16), cert.NotAfter.UTC().Format(time.RFC3339), signer.Fingerprint(cert), signer.Fingerprint(a.Certificate))
	if !strings.Contains(audit[0], want) {
		t.Errorf("audit line\n%s\nwant\n%s", audit[0], want)
	}
	if !strings.Contains(audit[0], `"level"=0`) {
		t.Errorf("audit line is not at the default level: %s", audit[0])
	}
	keyBody := strings.Split(string(a.KeyPEM), "\n")[1]
	if strings.Contains(log.String(), keyBody[:20]) || strings.Contains(log.String(), "PRIVATE KEY") {
		t.Errorf("log carries key material:\n%s", log.String())
	}
}

// constrainedAnchor is a root whose name constraints permit only
// example.com: it parses, it can sign, but no Linkerd chain under it
// verifies.
func constrainedAnchor(t *testing.T) *corev1.Secret {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "root.linkerd.cluster.local"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(365 * 24 * time.Hour),
		BasicConstraintsValid: true, IsCA: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		PermittedDNSDomains: []string{"example.com"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "linkerd", Name: "linkerd-trust-anchor"},
		Type:       corev1.SecretTypeTLS,
		Data: map[string][]byte{
			corev1.TLSCertKey:       pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
			corev1.TLSPrivateKeyKey: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
		},
	}
}

// TestCheckRefusesAnAnchorWhoseChainFails, and the trust condition follows
// the anchor: Trusted while usable, Unknown once the Secret breaks.
func TestCheckRefusesAnAnchorWhoseChainFails(t *testing.T) {
	a := newAnchor(t, now.Add(365*24*time.Hour))
	iss := issuer("linkerd")
	s, _ := newSigner(t, anchorSecret("linkerd", a), trustRoots("linkerd", a.CertPEM), iss)
	if err := s.Check(context.Background(), iss); err != nil {
		t.Fatal(err)
	}
	if c := trustedCondition(t, s, iss); c == nil || c.Status != metav1.ConditionTrue {
		t.Fatalf("TrustAnchorTrusted %+v, want True", c)
	}

	broken := constrainedAnchor(t)
	if err := s.Client.Update(context.Background(), broken); err != nil {
		t.Fatal(err)
	}
	err := s.Check(context.Background(), fresh(t, s, iss))
	want := `trust anchor Secret linkerd/linkerd-trust-anchor: the trust anchor's name constraints do not permit the proxy identity "default.default.serviceaccount.identity.linkerd.cluster.local"`
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("Check: got %v\nwant prefix %s", err, want)
	}
	if errors.As(err, &issuersigner.PermanentError{}) {
		t.Error("an anchor error must stay retryable: fixing the Secret fixes the issuer")
	}
	c := trustedCondition(t, s, iss)
	if c == nil || c.Status != metav1.ConditionUnknown || c.Reason != ReasonTrustAnchorUnusable || !strings.Contains(c.Message, "name constraints") {
		t.Errorf("TrustAnchorTrusted %+v, want Unknown/%s naming the problem", c, ReasonTrustAnchorUnusable)
	}
	if st := anchorStatus(t, s, iss); st == nil || st.SHA256Fingerprint != signer.Fingerprint(a.Certificate) {
		t.Errorf("status.trustAnchor %+v lost the last usable anchor", st)
	}
	if _, err := s.Sign(context.Background(), certificateRequest(t, testpki.SeedCertificate("linkerd")), iss); !errors.As(err, &issuersigner.IssuerError{}) {
		t.Errorf("Sign with the broken anchor: got %v, want an IssuerError", err)
	}
}

// TestCheckWarnsOfAnAnchorNamedLikeItsIssuer: the original guide's root
// shares the issuer's subject; it is used, with one Warning event.
func TestCheckWarnsOfAnAnchorNamedLikeItsIssuer(t *testing.T) {
	p, err := testpki.NewAnchorNamed(testpki.IdentityCommonName, now.Add(-time.Hour), now.Add(365*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	iss := issuer("linkerd")
	s, rec := newSigner(t, anchorSecret("linkerd", p), iss)
	for range 2 {
		if err := s.Check(context.Background(), iss); err != nil {
			t.Fatalf("an anchor named like its issuer is refused: %v", err)
		}
		iss = fresh(t, s, iss).(*v1alpha1.LinkerdCAIssuer)
	}
	// Once per anchor, though checked twice (and once that no trust roots
	// exist, so the gate is off).
	assertEvents(t, rec, "Warning "+EventTrustAnchorNamedLikeIssuer+" the trust anchor's subject CN=identity.linkerd.cluster.local is the identity issuer's own", gateOffEvent)
}

// TestForgetDeletesAnIssuersSeries: the watch on issuer deletion calls
// metrics.Forget; its series must then be gone from the endpoint.
func TestForgetDeletesAnIssuersSeries(t *testing.T) {
	a := newAnchor(t, now.Add(365*24*time.Hour))
	s, _ := newSigner(t, anchorSecret("linkerd", a))
	iss := issuer("linkerd")
	iss.Name = "doomed"
	if _, err := s.Sign(context.Background(), certificateRequest(t, testpki.SeedCertificate("linkerd")), iss); err != nil {
		t.Fatal(err)
	}
	if metricValue(t, "linkerd_ca_issuer_requests_signed_total", v1alpha1.IssuerKind, "linkerd/doomed") == 0 {
		t.Fatal("no series to forget")
	}
	metrics.Forget(IssuerLabels(iss))
	if v := metricValue(t, "linkerd_ca_issuer_requests_signed_total", v1alpha1.IssuerKind, "linkerd/doomed"); v != 0 {
		t.Errorf("signed series still %v after Forget", v)
	}
	if v := metricValue(t, "linkerd_ca_issuer_issued_certificate_expiry_timestamp_seconds", v1alpha1.IssuerKind, "linkerd/doomed"); v != 0 {
		t.Errorf("expiry series still %v after Forget", v)
	}
}

// countingReader counts the whole Secrets read through it (not their
// metadata).
type countingReader struct {
	client.Reader
	gets atomic.Int32
}

func (r *countingReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if _, whole := obj.(*corev1.Secret); whole {
		r.gets.Add(1)
	}
	return r.Reader.Get(ctx, key, obj, opts...)
}

// TestAnchorParsedOncePerRevision: requests reuse the anchor proven from a
// Secret's revision; a new revision is fetched and proven again, and a
// broken one is never served from the cache.
func TestAnchorParsedOncePerRevision(t *testing.T) {
	a, b := newAnchor(t, now.Add(365*24*time.Hour)), newAnchor(t, now.Add(365*24*time.Hour))
	s, _ := newSigner(t, anchorSecret("linkerd", a))
	secrets := &countingReader{Reader: s.Client}
	s.Secrets = secrets
	ctx := context.Background()
	sign := func() *x509.Certificate {
		t.Helper()
		bundle, err := s.Sign(ctx, certificateRequest(t, testpki.SeedCertificate("linkerd")), issuer("linkerd"))
		if err != nil {
			t.Fatal(err)
		}
		return decodeOne(t, bundle.ChainPEM)
	}
	for range 5 {
		if err := sign().CheckSignatureFrom(a.Certificate); err != nil {
			t.Fatal(err)
		}
	}
	if n := secrets.gets.Load(); n != 1 {
		t.Fatalf("the Secret was fetched %d times for 5 requests, want once", n)
	}

	var sec corev1.Secret
	if err := s.Client.Get(ctx, client.ObjectKey{Namespace: "linkerd", Name: "linkerd-trust-anchor"}, &sec); err != nil {
		t.Fatal(err)
	}
	sec.Data = anchorSecret("linkerd", b).Data
	if err := s.Client.Update(ctx, &sec); err != nil {
		t.Fatal(err)
	}
	if err := sign().CheckSignatureFrom(b.Certificate); err != nil {
		t.Fatalf("after the Secret changed, still signing with the old anchor: %v", err)
	}
	if n := secrets.gets.Load(); n != 2 {
		t.Fatalf("%d fetches after one change, want 2", n)
	}

	sec.Data = map[string][]byte{corev1.TLSCertKey: b.CertPEM}
	if err := s.Client.Update(ctx, &sec); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := s.Sign(ctx, certificateRequest(t, testpki.SeedCertificate("linkerd")), issuer("linkerd")); !errors.As(err, &issuersigner.IssuerError{}) {
			t.Fatalf("a broken Secret: got %v, want an IssuerError", err)
		}
	}
}

// TestSignAgainIsTheSameCertificate: issuer-lib signs a request again when
// recording the result failed; the request then gets the same certificate,
// not a second one.
func TestSignAgainIsTheSameCertificate(t *testing.T) {
	a := newAnchor(t, now.Add(365*24*time.Hour))
	s, _ := newSigner(t, anchorSecret("linkerd", a))
	cr := certificateRequest(t, testpki.SeedCertificate("linkerd"))
	first, err := s.Sign(context.Background(), cr, issuer("linkerd"))
	if err != nil {
		t.Fatal(err)
	}
	s.Clock = clocktesting.NewFakePassiveClock(now.Add(time.Minute)) // the retry comes later
	again, err := s.Sign(context.Background(), cr, issuer("linkerd"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first.ChainPEM, again.ChainPEM) {
		t.Error("a request signed again got a second certificate")
	}
	other, err := s.Sign(context.Background(), certificateRequest(t, testpki.SeedCertificate("linkerd")), issuer("linkerd"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(first.ChainPEM, other.ChainPEM) {
		t.Error("two requests got the same certificate")
	}
}
