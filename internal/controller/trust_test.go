package controller

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	issuerapi "github.com/cert-manager/issuer-lib/api/v1alpha1"
	issuersigner "github.com/cert-manager/issuer-lib/controllers/signer"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/signer"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/testing/testpki"
)

func trustRoots(ns string, pems ...[]byte) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "linkerd-identity-trust-roots"},
		Data:       map[string]string{"ca-bundle.crt": string(bytes.Join(pems, nil))},
	}
}

func TestTrustRoots(t *testing.T) {
	a := newAnchor(t, now.Add(365*24*time.Hour))
	b := newAnchor(t, now.Add(365*24*time.Hour))
	notTrusted := "TrustAnchorNotTrusted: the trust anchor CN=root.linkerd.cluster.local (SHA-256 " + signer.Fingerprint(a.Certificate) +
		") is not among the roots Linkerd's identity service trusts (ConfigMap linkerd/linkerd-identity-trust-roots key ca-bundle.crt); an issuer signed by it would break every proxy. Add the anchor to that bundle first (see docs/rotation.md), or set spec.trustRoots.check: false"
	unchecked := issuer("linkerd")
	unchecked.Spec.TrustRoots.Check = new(false)
	controlPlane := clusterIssuer()
	controlPlane.Spec.ControlPlaneNamespace = "linkerd"
	noKey := trustRoots("linkerd", a.CertPEM)
	noKey.Data = map[string]string{"other": "x"}

	for _, tc := range []struct {
		name    string
		issuer  issuerapi.Issuer
		objects []client.Object
		caPEM   []byte // when signed
		trusted metav1.ConditionStatus
		reason  string
		err     string // prefix, when not Ready
	}{
		{name: "no trust roots yet: ca.crt is the anchor", issuer: issuer("linkerd"),
			objects: []client.Object{anchorSecret("linkerd", a)}, caPEM: a.CertPEM, trusted: metav1.ConditionUnknown, reason: ReasonTrustGateOff},
		{name: "anchor trusted: ca.crt is the whole bundle", issuer: issuer("linkerd"),
			objects: []client.Object{anchorSecret("linkerd", a), trustRoots("linkerd", b.CertPEM, []byte("\n"), a.CertPEM)},
			caPEM:   append(append([]byte{}, b.CertPEM...), a.CertPEM...), trusted: metav1.ConditionTrue, reason: ReasonTrusted},
		{name: "anchor not trusted", issuer: issuer("linkerd"),
			objects: []client.Object{anchorSecret("linkerd", a), trustRoots("linkerd", b.CertPEM)}, trusted: metav1.ConditionFalse, reason: ReasonTrustAnchorNotTrusted, err: notTrusted},
		{name: "bundle that does not parse", issuer: issuer("linkerd"),
			objects: []client.Object{anchorSecret("linkerd", a), trustRoots("linkerd", a.CertPEM, a.KeyPEM)}, trusted: metav1.ConditionFalse, reason: ReasonTrustAnchorNotTrusted,
			err: `TrustAnchorNotTrusted: ConfigMap linkerd/linkerd-identity-trust-roots key ca-bundle.crt, Linkerd's trust roots, does not parse as Linkerd requires: block 2 is "PRIVATE KEY"`},
		{name: "bundle key missing", issuer: issuer("linkerd"),
			objects: []client.Object{anchorSecret("linkerd", a), noKey}, trusted: metav1.ConditionFalse, reason: ReasonTrustAnchorNotTrusted,
			err: `TrustAnchorNotTrusted: ConfigMap linkerd/linkerd-identity-trust-roots has no key "ca-bundle.crt"`},
		{name: "check off", issuer: unchecked,
			objects: []client.Object{anchorSecret("linkerd", a), trustRoots("linkerd", b.CertPEM)}, caPEM: a.CertPEM, trusted: metav1.ConditionUnknown, reason: ReasonCheckDisabled},
		{name: "cluster issuer reads the control plane namespace", issuer: controlPlane,
			objects: []client.Object{anchorSecret("linkerd-ca-issuer", a), trustRoots("linkerd", b.CertPEM), trustRoots("linkerd-ca-issuer", a.CertPEM)},
			trusted: metav1.ConditionFalse, reason: ReasonTrustAnchorNotTrusted, err: "TrustAnchorNotTrusted: the trust anchor"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newSigner(t, append(tc.objects, tc.issuer)...)
			err := s.Check(context.Background(), tc.issuer)
			if got := anchorStatus(t, s, tc.issuer); got == nil || got.TrustedByLinkerd != tc.trusted {
				t.Errorf("status.trustAnchor %+v, want trustedByLinkerd %s", got, tc.trusted)
			}
			c := trustedCondition(t, s, tc.issuer)
			if c == nil || c.Status != tc.trusted || c.Reason != tc.reason {
				t.Errorf("condition TrustAnchorTrusted %+v, want %s/%s", c, tc.trusted, tc.reason)
			} else if err != nil && err.Error() != ReasonTrustAnchorNotTrusted+": "+c.Message {
				t.Errorf("Ready's error %q and the condition's message %q differ", err, c.Message)
			}
			bundle, signErr := s.Sign(context.Background(), certificateRequest(t, testpki.SeedCertificate("linkerd")), tc.issuer)
			if tc.err != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tc.err) {
					t.Fatalf("Check: got %v\nwant prefix %s", err, tc.err)
				}
				if !errors.As(signErr, &issuersigner.IssuerError{}) || len(bundle.ChainPEM) != 0 {
					t.Fatalf("Sign with an untrusted anchor: got %v, %d bytes; want an IssuerError and nothing signed", signErr, len(bundle.ChainPEM))
				}
				return
			}
			if err != nil || signErr != nil {
				t.Fatalf("Check: %v; Sign: %v", err, signErr)
			}
			if !bytes.Equal(bundle.CAPEM, tc.caPEM) {
				t.Errorf("ca.crt:\n%s\nwant:\n%s", bundle.CAPEM, tc.caPEM)
			}
		})
	}
}

// fresh reads an issuer back, as Check left it.
func fresh(t *testing.T, s *Signer, iss issuerapi.Issuer) v1alpha1.GenericIssuer {
	t.Helper()
	obj := iss.DeepCopyObject().(v1alpha1.GenericIssuer)
	if err := s.Client.Get(context.Background(), client.ObjectKeyFromObject(obj), obj); err != nil {
		t.Fatal(err)
	}
	return obj
}

func anchorStatus(t *testing.T, s *Signer, iss issuerapi.Issuer) *v1alpha1.TrustAnchorStatus {
	t.Helper()
	return fresh(t, s, iss).GetStatus().TrustAnchor
}

func trustedCondition(t *testing.T, s *Signer, iss issuerapi.Issuer) *metav1.Condition {
	t.Helper()
	return meta.FindStatusCondition(fresh(t, s, iss).GetConditions(), ConditionTrustAnchorTrusted)
}

func TestCheckReportsTheAnchor(t *testing.T) {
	a := newAnchor(t, now.Add(365*24*time.Hour))
	iss := issuer("linkerd")
	s, rec := newSigner(t, anchorSecret("linkerd", a), iss)
	if err := s.Check(context.Background(), iss); err != nil {
		t.Fatal(err)
	}
	got := anchorStatus(t, s, iss)
	want := &v1alpha1.TrustAnchorStatus{
		Subject: "CN=root.linkerd.cluster.local", NotAfter: metav1.NewTime(a.Certificate.NotAfter),
		SHA256Fingerprint: signer.Fingerprint(a.Certificate), TrustedByLinkerd: metav1.ConditionUnknown,
	}
	if got == nil || got.Subject != want.Subject || !got.NotAfter.Equal(&want.NotAfter) || got.SHA256Fingerprint != want.SHA256Fingerprint ||
		got.ExpiringSoon || got.TrustedByLinkerd != want.TrustedByLinkerd {
		t.Fatalf("status.trustAnchor %+v\nwant %+v", got, want)
	}
	if v := metricValue(t, "linkerd_ca_issuer_trust_anchor_expiry_timestamp_seconds", v1alpha1.IssuerKind, "linkerd/linkerd"); v != float64(a.Certificate.NotAfter.Unix()) {
		t.Errorf("anchor expiry metric %v, want %d", v, a.Certificate.NotAfter.Unix())
	}
	assertEvents(t, rec, gateOffEvent) // no more for an anchor valid for a year
}

// gateOffEvent starts the Warning an issuer records when it finds no trust
// roots ConfigMap, so that its trust gate is off.
const gateOffEvent = "Warning TrustGateOff the trust gate is off: ConfigMap linkerd/linkerd-identity-trust-roots not found"

func TestCheckWarnsOnceOfAnExpiringAnchor(t *testing.T) {
	a := newAnchor(t, now.Add(30*24*time.Hour))
	iss := issuer("linkerd")
	s, rec := newSigner(t, anchorSecret("linkerd", a), iss)
	for range 2 {
		if err := s.Check(context.Background(), iss); err != nil {
			t.Fatal(err)
		}
		iss = fresh(t, s, iss).(*v1alpha1.LinkerdCAIssuer)
	}
	if st := iss.Status.TrustAnchor; st == nil || !st.ExpiringSoon {
		t.Errorf("status.trustAnchor.expiringSoon not set: %+v", st)
	}
	want := "Warning TrustAnchorExpiring the trust anchor CN=root.linkerd.cluster.local (SHA-256 " + signer.Fingerprint(a.Certificate) + ") expires at 2026-12-29T12:00:00Z, in less than 1440h0m0s"
	assertEvents(t, rec, want, gateOffEvent) // once per anchor, and the gate once
}

func TestSignMetrics(t *testing.T) {
	a := newAnchor(t, now.Add(365*24*time.Hour))
	iss := issuer("metrics")
	s, _ := newSigner(t, anchorSecret("metrics", a))
	s.WatchNamespaces = append(s.WatchNamespaces, "metrics")
	signed := metricValue(t, "linkerd_ca_issuer_requests_signed_total", v1alpha1.IssuerKind, "metrics/linkerd")
	if _, err := s.Sign(context.Background(), certificateRequest(t, testpki.SeedCertificate("linkerd")), iss); err != nil {
		t.Fatal(err)
	}
	crt := testpki.SeedCertificate("linkerd")
	crt.Spec.IsCA = false
	if _, err := s.Sign(context.Background(), certificateRequest(t, crt), iss); err == nil {
		t.Fatal("a leaf was signed")
	}
	if got := metricValue(t, "linkerd_ca_issuer_requests_signed_total", v1alpha1.IssuerKind, "metrics/linkerd"); got != signed+1 {
		t.Errorf("signed counter %v, want %v", got, signed+1)
	}
	if got := metricValue(t, "linkerd_ca_issuer_requests_refused_total", v1alpha1.IssuerKind, "metrics/linkerd", "isCA"); got != 1 {
		t.Errorf("refused{rule=isCA} counter %v, want 1", got)
	}
	// The certificate is valid from its request's creation, a second ago.
	if want := now.Add(-time.Second + 24*time.Hour).Unix(); metricValue(t, "linkerd_ca_issuer_issued_certificate_expiry_timestamp_seconds", v1alpha1.IssuerKind, "metrics/linkerd") != float64(want) {
		t.Errorf("issued expiry %v, want %d", metricValue(t, "linkerd_ca_issuer_issued_certificate_expiry_timestamp_seconds", v1alpha1.IssuerKind, "metrics/linkerd"), want)
	}
}
