package controller

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	issuersigner "github.com/cert-manager/issuer-lib/controllers/signer"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/signer"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/testing/testpki"
)

var anchorRef = types.NamespacedName{Namespace: "linkerd", Name: "linkerd-trust-anchor"}

// TestSignConfirmsTheSecretRevision: the informer still shows the anchor
// Secret's old revision, the API server already the new one; Sign asks the
// API server and signs with the new anchor, never with a cached key whose
// Secret has changed.
func TestSignConfirmsTheSecretRevision(t *testing.T) {
	a, b := newAnchor(t, now.Add(365*24*time.Hour)), newAnchor(t, now.Add(365*24*time.Hour))
	iss := issuer("linkerd")
	s, _ := newSigner(t, anchorSecret("linkerd", a), iss)
	if err := s.Check(context.Background(), iss); err != nil { // caches a
		t.Fatal(err)
	}
	replaced := anchorSecret("linkerd", b)
	replaced.UID = "replaced"
	s.Secrets = fake.NewClientBuilder().WithScheme(testScheme(t)).WithObjects(replaced).Build()

	bundle, err := s.Sign(context.Background(), certificateRequest(t, testpki.SeedCertificate("linkerd")), iss)
	if err != nil {
		t.Fatal(err)
	}
	if err := decodeOne(t, bundle.ChainPEM).CheckSignatureFrom(b.Certificate); err != nil {
		t.Fatalf("signed with the cached anchor of a Secret that changed: %v", err)
	}
}

// TestCacheDropsChangedAndDeletedSecrets: the watches' events drop an
// anchor, key included, as soon as its Secret has a new revision or is
// deleted, and when the issuers stop naming it.
func TestCacheDropsChangedAndDeletedSecrets(t *testing.T) {
	a := newAnchor(t, now.Add(365*24*time.Hour))
	iss := issuer("linkerd")
	s, _ := newSigner(t, anchorSecret("linkerd", a), iss)
	w := &watches{signer: s}
	secretEvents := evicting(s.parsed.secretChanged, handler.Funcs{})
	cached := func() bool {
		var m corev1.Secret
		if err := s.Client.Get(context.Background(), anchorRef, &m); err != nil {
			t.Fatal(err)
		}
		got, _ := s.parsed.anchor(anchorRef, version{uid: m.UID, resourceVersion: m.ResourceVersion}, policyKey(PolicyFor(iss, nil)))
		return got != nil
	}
	check := func() {
		t.Helper()
		if err := s.Check(context.Background(), iss); err != nil {
			t.Fatal(err)
		}
		if !cached() {
			t.Fatal("Check cached no anchor")
		}
	}

	check()
	newer := anchorSecret("linkerd", a)
	newer.UID, newer.ResourceVersion = "u", "2"
	secretEvents.Update(context.Background(), event.UpdateEvent{ObjectOld: newer, ObjectNew: newer}, nil)
	if s.parsed.anchors.Len() != 0 {
		t.Error("a Secret's new revision left the old anchor in memory")
	}

	check()
	secretEvents.Delete(context.Background(), event.DeleteEvent{Object: anchorSecret("linkerd", a)}, nil)
	if s.parsed.anchors.Len() != 0 {
		t.Error("a deleted Secret's anchor stayed in memory")
	}

	check()
	renamed := iss.DeepCopy()
	renamed.Spec.TrustAnchorSecretName = "another"
	w.issuerEvents().Update(context.Background(), event.UpdateEvent{ObjectOld: iss, ObjectNew: renamed}, nil)
	if s.parsed.anchors.Len() != 0 {
		t.Error("an anchor no issuer names any more stayed in memory")
	}

	check()
	w.issuerEvents().Delete(context.Background(), event.DeleteEvent{Object: iss}, nil)
	if s.parsed.anchors.Len() != 0 {
		t.Error("a deleted issuer's anchor stayed in memory")
	}
}

// TestCacheIsBounded: however many Secrets, policies (an issuer's
// maxDuration edited again and again) and bundle keys issuers name, the
// cache holds at most its bounds.
func TestCacheIsBounded(t *testing.T) {
	a := newAnchor(t, now.Add(365*24*time.Hour))
	anchor := &signer.Anchor{Certificate: a.Certificate}
	var c parsed
	for i := range 3 * maxCachedAnchors {
		ref := types.NamespacedName{Namespace: "linkerd", Name: fmt.Sprint("anchor-", i)}
		c.putAnchor(ref, version{resourceVersion: "1"}, anchor)
		if _, err := c.bundle(ref, "ca-bundle.crt", version{resourceVersion: "1"}, string(a.CertPEM)); err != nil {
			t.Fatal(err)
		}
	}
	if n := c.anchors.Len(); n != maxCachedAnchors {
		t.Errorf("%d anchors cached, want the bound %d", n, maxCachedAnchors)
	}
	if n := c.bundles.Len(); n != maxCachedBundles {
		t.Errorf("%d bundles cached, want the bound %d", n, maxCachedBundles)
	}

	v := version{resourceVersion: "1"}
	c.putAnchor(anchorRef, v, anchor)
	for i := range 10 * maxProofsPerAnchor {
		c.prove(anchorRef, v, fmt.Sprint("policy-", i))
		if _, err := c.bundle(anchorRef, fmt.Sprint("key-", i), v, string(a.CertPEM)); err != nil {
			t.Fatal(err)
		}
	}
	e, _ := c.anchors.Get(anchorRef)
	if n := len(e.(*anchorEntry).proven); n > maxProofsPerAnchor {
		t.Errorf("%d policies proven for one anchor, want at most %d", n, maxProofsPerAnchor)
	}
	b, _ := c.bundles.Get(anchorRef)
	if n := len(b.(*bundleEntry).byKey); n > maxKeysPerBundle {
		t.Errorf("%d keys parsed for one bundle, want at most %d", n, maxKeysPerBundle)
	}
}

// TestNamespacedIssuerRefusedInTheClusterResourceNamespace: there it could
// sign with the cluster issuers' anchors for anyone who may create
// Certificates in that namespace, without the control plane rule.
func TestNamespacedIssuerRefusedInTheClusterResourceNamespace(t *testing.T) {
	a := newAnchor(t, now.Add(365*24*time.Hour))
	iss := issuer("linkerd-ca-issuer") // newSigner's cluster resource namespace
	s, _ := newSigner(t, anchorSecret("linkerd-ca-issuer", a), iss)
	want := `LinkerdCAIssuer linkerd-ca-issuer/linkerd is in namespace "linkerd-ca-issuer", the cluster resource namespace, where LinkerdCAClusterIssuers keep their trust anchors`
	if err := s.Check(context.Background(), iss); err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("Check: %v\nwant %s…", err, want)
	}
	crt := testpki.SeedCertificate("linkerd-ca-issuer")
	_, err := s.Sign(context.Background(), certificateRequest(t, crt), iss)
	if !errors.As(err, &issuersigner.IssuerError{}) || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("Sign: %T %v\nwant an IssuerError %s…", err, err, want)
	}
	if err := s.Check(context.Background(), clusterIssuer()); err != nil {
		t.Errorf("the cluster issuer, same anchor, same namespace: %v", err)
	}
}
