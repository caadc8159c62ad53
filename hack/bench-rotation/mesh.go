package main

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/guide"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/signer"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/testing/localcp"
)

// namespaces spreads the workloads, as teams do.
const namespaces = 10

// mesh is the current guide's set-up, on the local cluster.
type mesh struct {
	c   client.WithWatch
	iss *v1alpha1.LinkerdCAClusterIssuer
}

// setUp makes the root with cert-manager, the rotating cluster issuer, the
// Bundle of its trusted set, Linkerd's control plane (started once its
// trust roots exist) and its identity issuer.
func (m *mesh) setUp(ctx context.Context) error {
	root := guide.TrustAnchorCertificate("linkerd-trust-anchor")
	m.iss = guide.ClusterIssuer(root.Spec.SecretName, controlPlane)
	bundle := guide.Bundle()
	bundle.Object["spec"].(map[string]any)["target"].(map[string]any)["namespaceSelector"] =
		map[string]any{"matchLabels": map[string]any{"kubernetes.io/metadata.name": controlPlane}}
	for _, o := range []client.Object{guide.SelfSignedRootIssuer(), root, m.iss, bundle} {
		if err := m.c.Create(ctx, o); err != nil {
			return fmt.Errorf("creating %T %s: %w", o, o.GetName(), err)
		}
	}
	if err := m.waitCertificate(ctx, root); err != nil {
		return err
	}
	if err := until(ctx, time.Minute, "Linkerd's trust roots", func() error {
		return m.c.Get(ctx, client.ObjectKey{Namespace: controlPlane, Name: v1alpha1.DefaultTrustRootsConfigMap}, &corev1.ConfigMap{})
	}); err != nil {
		return err
	}
	for _, c := range localcp.LinkerdComponents {
		d := &appsv1.Deployment{}
		if err := m.c.Get(ctx, client.ObjectKey{Namespace: controlPlane, Name: "linkerd-" + c}, d); err != nil {
			return err
		}
		d.Spec.Template.Annotations = map[string]string{"kubectl.kubernetes.io/restartedAt": time.Now().Format(time.RFC3339)}
		if err := m.c.Update(ctx, d); err != nil {
			return err
		}
	}
	crt := guide.IdentityIssuerCertificate(controlPlane, localcp.IdentityIssuerSecret)
	if err := m.c.Create(ctx, crt); err != nil {
		return err
	}
	return m.waitCertificate(ctx, crt)
}

// deploy creates the meshed Deployments and waits for every pod to run.
func (m *mesh) deploy(ctx context.Context, workloads, replicas int) error {
	for i := range namespaces {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: appNamespace(i), Labels: map[string]string{localcp.InjectLabel: "enabled"}}}
		if err := m.c.Create(ctx, ns); err != nil {
			return err
		}
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for w := range errs {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < workloads && errs[w] == nil; i = int(next.Add(1) - 1) {
				errs[w] = m.c.Create(ctx, deployment(appNamespace(i%namespaces), fmt.Sprintf("app-%03d", i), int32(replicas)))
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	want := workloads*replicas + len(localcp.LinkerdComponents)
	return until(ctx, 30*time.Minute, "every meshed pod running", func() error {
		if running := m.running(ctx); running != want {
			return fmt.Errorf("%d of %d running", running, want)
		}
		return nil
	})
}

// running counts the mesh's pods that run and are not going.
func (m *mesh) running(ctx context.Context) int {
	var pods corev1.PodList
	if err := m.c.List(ctx, &pods, client.MatchingLabels{localcp.ControlPlaneNSLabel: controlPlane}); err != nil {
		return -1
	}
	n := 0
	for _, p := range pods.Items {
		if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
			n++
		}
	}
	return n
}

// nextRoot makes the root to rotate to, as `linkerd-ca rotation start`
// does, and is its fingerprint.
func (m *mesh) nextRoot(ctx context.Context) (*cmapi.Certificate, string, error) {
	next := guide.TrustAnchorCertificate("linkerd-trust-anchor-next")
	if err := m.c.Create(ctx, next); err != nil {
		return nil, "", err
	}
	if err := m.waitCertificate(ctx, next); err != nil {
		return nil, "", err
	}
	var s corev1.Secret
	if err := m.c.Get(ctx, client.ObjectKey{Namespace: next.Namespace, Name: next.Spec.SecretName}, &s); err != nil {
		return nil, "", err
	}
	block, _ := pem.Decode(s.Data[corev1.TLSCertKey])
	if block == nil {
		return nil, "", fmt.Errorf("secret %s holds no certificate", s.Name)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, "", err
	}
	return next, signer.Fingerprint(cert), nil
}

// startRotation points the issuer at the next root.
func (m *mesh) startRotation(ctx context.Context, next *cmapi.Certificate) error {
	if err := m.c.Get(ctx, client.ObjectKeyFromObject(m.iss), m.iss); err != nil {
		return err
	}
	m.iss.Spec.TrustAnchorSecretName = next.Spec.SecretName
	return m.c.Update(ctx, m.iss)
}

// waitPhase waits for the issuer's rotation to reach phase, under root
// when root is set.
func (m *mesh) waitPhase(ctx context.Context, phase, root string, timeout time.Duration) error {
	return until(ctx, timeout, "rotation phase "+phase, func() error {
		if err := m.c.Get(ctx, client.ObjectKeyFromObject(m.iss), m.iss); err != nil {
			return err
		}
		st := m.iss.Status.Rotation
		if st == nil || string(st.Phase) != phase || (root != "" && st.SigningRoot != root) {
			return fmt.Errorf("status %+v", st)
		}
		return nil
	})
}

func (m *mesh) waitCertificate(ctx context.Context, crt *cmapi.Certificate) error {
	return until(ctx, time.Minute, "Certificate "+crt.Name+" Ready", func() error {
		if err := m.c.Get(ctx, client.ObjectKeyFromObject(crt), crt); err != nil {
			return err
		}
		for _, c := range crt.Status.Conditions {
			if c.Type == cmapi.CertificateConditionReady && c.Status == cmmeta.ConditionTrue {
				return nil
			}
		}
		return fmt.Errorf("conditions %+v", crt.Status.Conditions)
	})
}

func appNamespace(i int) string { return fmt.Sprintf("mesh-apps-%d", i) }

func deployment(ns, name string, replicas int32) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To(replicas), Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example/app:1"}}}}}}
}

// until polls fn every second until it succeeds, or fails with its last
// error after timeout.
func until(ctx context.Context, timeout time.Duration, what string, fn func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := fn()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not done within %s: %w", what, timeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}
