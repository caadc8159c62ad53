//go:build e2e

package e2e

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/testing/localcp"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/testing/testpki"
)

// eventually polls fn until it returns nil, failing the test with fn's last
// error after timeout.
func eventually(t *testing.T, timeout time.Duration, what string, fn func() error) {
	t.Helper()
	pollOn(t, cp, timeout, what, fn)
}

// pollOn is eventually on a given control plane: it fails at once when one
// of the plane's processes exited.
func pollOn(t *testing.T, plane *localcp.ControlPlane, timeout time.Duration, what string, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := fn()
		if err == nil {
			return
		}
		if exited := plane.Exited(); exited != nil {
			t.Fatalf("%s: %v", what, exited)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not done within %s: %v", what, timeout, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func create(t *testing.T, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		if err := cl.Create(ctx, o); err != nil {
			t.Fatalf("creating %T %s: %v", o, client.ObjectKeyFromObject(o), err)
		}
		t.Cleanup(func() { _ = cl.Delete(ctx, o) })
	}
}

// update reads obj afresh, changes it with mutate and writes it, again on a
// conflict: controllers write the same objects' status meanwhile.
func update(t *testing.T, obj client.Object, mutate func()) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := cl.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
			return err
		}
		mutate()
		return cl.Update(ctx, obj)
	})
	if err != nil {
		t.Fatalf("updating %T %s: %v", obj, client.ObjectKeyFromObject(obj), err)
	}
}

// denyPolicy is an admission policy, and its binding, that refuses the
// operations on cert-manager.io/v1 resources where expression is false.
func denyPolicy(name string, ops []admissionv1.OperationType, resources []string, expression, message string) (*admissionv1.ValidatingAdmissionPolicy, *admissionv1.ValidatingAdmissionPolicyBinding) {
	policy := &admissionv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: admissionv1.ValidatingAdmissionPolicySpec{
			FailurePolicy: new(admissionv1.Fail),
			MatchConstraints: &admissionv1.MatchResources{ResourceRules: []admissionv1.NamedRuleWithOperations{{
				RuleWithOperations: admissionv1.RuleWithOperations{
					Operations: ops,
					Rule:       admissionv1.Rule{APIGroups: []string{"cert-manager.io"}, APIVersions: []string{"v1"}, Resources: resources},
				},
			}}},
			Validations: []admissionv1.Validation{{Expression: expression, Message: message}},
		},
	}
	binding := &admissionv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       admissionv1.ValidatingAdmissionPolicyBindingSpec{PolicyName: name, ValidationActions: []admissionv1.ValidationAction{admissionv1.Deny}},
	}
	return policy, binding
}

func newAnchor(t *testing.T) *testpki.Anchor {
	t.Helper()
	a, err := testpki.NewAnchor(time.Now().Add(-time.Minute), time.Now().Add(10*365*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func anchorSecret(ns, name string, a *testpki.Anchor) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{corev1.TLSCertKey: a.CertPEM, corev1.TLSPrivateKeyKey: a.KeyPEM},
	}
}

func linkerdIssuer(ns, name, secret string) *v1alpha1.LinkerdCAIssuer {
	return &v1alpha1.LinkerdCAIssuer{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       v1alpha1.IssuerSpec{TrustAnchorSecretName: secret},
	}
}

// readyIssuer makes a LinkerdCAIssuer ns/name with a new anchor in Secret
// ns/secret and waits for it to be Ready.
func readyIssuer(t *testing.T, ns, name, secret string) (*testpki.Anchor, *v1alpha1.LinkerdCAIssuer) {
	t.Helper()
	anchor := newAnchor(t)
	create(t, anchorSecret(ns, secret, anchor))
	iss := linkerdIssuer(ns, name, secret)
	create(t, iss)
	waitIssuer(t, iss, metav1.ConditionTrue, "")
	return anchor, iss
}

// readyClusterIssuer makes a LinkerdCAClusterIssuer with a new anchor in
// the cluster resource namespace and waits for it to be Ready.
func readyClusterIssuer(t *testing.T, name, secret string) (*testpki.Anchor, *v1alpha1.LinkerdCAClusterIssuer) {
	t.Helper()
	anchor := newAnchor(t)
	create(t, anchorSecret(nsCluster, secret, anchor))
	iss := &v1alpha1.LinkerdCAClusterIssuer{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       v1alpha1.IssuerSpec{TrustAnchorSecretName: secret},
	}
	create(t, iss)
	waitIssuer(t, iss, metav1.ConditionTrue, "")
	return anchor, iss
}

// seedCertificate is the guide's Certificate pointed at a LinkerdCAIssuer.
func seedCertificate(ns, name, issuer string) *cmapi.Certificate {
	crt := testpki.SeedCertificate(ns)
	crt.Name, crt.Spec.SecretName = name, name
	crt.Spec.IssuerRef = cmmeta.IssuerReference{Group: issuerGroup, Kind: v1alpha1.IssuerKind, Name: issuer}
	return crt
}

// readyCondition is the issuer's Ready condition, or an error saying why not.
func issuerReady(obj client.Object) (*metav1.Condition, error) {
	if err := cl.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
		return nil, err
	}
	iss, ok := obj.(v1alpha1.GenericIssuer)
	if !ok {
		return nil, fmt.Errorf("%T is not an issuer", obj)
	}
	c := meta.FindStatusCondition(iss.GetStatus().Conditions, "Ready")
	if c == nil {
		return nil, errors.New("no Ready condition yet")
	}
	if c.ObservedGeneration < obj.GetGeneration() {
		return nil, fmt.Errorf("Ready condition is for generation %d, issuer is at %d", c.ObservedGeneration, obj.GetGeneration())
	}
	return c, nil
}

func waitIssuer(t *testing.T, obj client.Object, status metav1.ConditionStatus, message string) *metav1.Condition {
	t.Helper()
	var got *metav1.Condition
	eventually(t, 30*time.Second, fmt.Sprintf("issuer %s Ready=%s", obj.GetName(), status), func() error {
		c, err := issuerReady(obj)
		if err != nil {
			return err
		}
		if c.Status != status || !strings.Contains(c.Message, message) {
			return fmt.Errorf("Ready=%s reason=%s message=%q; want Ready=%s with %q", c.Status, c.Reason, c.Message, status, message)
		}
		got = c
		return nil
	})
	return got
}

func certificateCondition(crt *cmapi.Certificate, typ cmapi.CertificateConditionType) *cmapi.CertificateCondition {
	for i, c := range crt.Status.Conditions {
		if c.Type == typ {
			return &crt.Status.Conditions[i]
		}
	}
	return nil
}

func waitCertificateReady(t *testing.T, ns, name string, timeout time.Duration) *cmapi.Certificate {
	t.Helper()
	var crt cmapi.Certificate
	eventually(t, timeout, "Certificate "+ns+"/"+name+" Ready", func() error {
		if err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &crt); err != nil {
			return err
		}
		if c := certificateCondition(&crt, cmapi.CertificateConditionReady); c == nil || c.Status != cmmeta.ConditionTrue || c.ObservedGeneration < crt.Generation {
			return fmt.Errorf("Ready condition %+v", c)
		}
		return nil
	})
	return &crt
}

// requestsFor lists the CertificateRequests cert-manager made for a
// Certificate.
func requestsFor(t *testing.T, ns, certificate string) []cmapi.CertificateRequest {
	t.Helper()
	var list cmapi.CertificateRequestList
	if err := cl.List(ctx, &list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	var out []cmapi.CertificateRequest
	for _, cr := range list.Items {
		if cr.Annotations[cmapi.CertificateNameKey] == certificate {
			out = append(out, cr)
		}
	}
	return out
}

func requestCondition(cr *cmapi.CertificateRequest, typ cmapi.CertificateRequestConditionType) *cmapi.CertificateRequestCondition {
	for i, c := range cr.Status.Conditions {
		if c.Type == typ {
			return &cr.Status.Conditions[i]
		}
	}
	return nil
}

// waitRequestFailed waits for a Failed CertificateRequest of a Certificate
// and returns its message.
func waitRequestFailed(t *testing.T, ns, certificate string) string {
	t.Helper()
	var message string
	eventually(t, 30*time.Second, "a Failed CertificateRequest for "+ns+"/"+certificate, func() error {
		for _, cr := range requestsFor(t, ns, certificate) {
			if c := requestCondition(&cr, cmapi.CertificateRequestConditionReady); c != nil && c.Reason == cmapi.CertificateRequestReasonFailed {
				if len(cr.Status.Certificate) != 0 {
					return fmt.Errorf("CertificateRequest %s is Failed but carries a certificate", cr.Name)
				}
				message = c.Message
				return nil
			}
		}
		return errors.New("none Failed yet")
	})
	return message
}

func getSecret(t *testing.T, ns, name string) (*corev1.Secret, error) {
	t.Helper()
	var s corev1.Secret
	err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &s)
	return &s, err
}

func mustSecret(t *testing.T, ns, name string) *corev1.Secret {
	t.Helper()
	s, err := getSecret(t, ns, name)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func assertNoSecret(t *testing.T, ns, name string) {
	t.Helper()
	if _, err := getSecret(t, ns, name); !apierrors.IsNotFound(err) {
		t.Errorf("Secret %s/%s: want none, got err=%v", ns, name, err)
	}
}

// parsePEMCertificates is strict like Linkerd's parser: CERTIFICATE blocks
// only, nothing around them.
func parsePEMCertificates(t *testing.T, what string, b []byte) []*x509.Certificate {
	t.Helper()
	var certs []*x509.Certificate
	rest := b
	for len(rest) > 0 {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			t.Fatalf("%s: trailing data after the PEM blocks: %q", what, rest)
		}
		if block.Type != "CERTIFICATE" {
			t.Fatalf("%s: PEM block of type %s", what, block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		t.Fatalf("%s: no certificate", what)
	}
	return certs
}
