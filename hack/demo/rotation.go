package main

import (
	"context"
	"fmt"
	"os"
	"syscall"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/cli"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/guide"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/testing/localcp"
)

const (
	meshNamespace = "emojivoto"
	// proxyLifetime stands in for Linkerd's 24 h proxy certificates, so
	// that the old root's drain ends within the demo.
	proxyLifetime = "20s"
)

// rotationOptions make the control plane a cluster that runs a mesh: kwok's
// nodes, the controllers, the stand-in injector and Linkerd's control plane.
func rotationOptions(o *localcp.Options) {
	o.Workloads, o.WithoutKMS, o.LinkerdNamespace, o.RotationRestarts = true, true, ns, true
	o.IssuerArgs = []string{"--proxy-certificate-lifetime=" + proxyLifetime}
}

// rotationFlow is the current guide's flow, a small mesh, then the root
// renewed in place by cert-manager: the issuer holds, restarts are turned
// on, and `linkerd-ca rotation status --watch` follows it to Stable.
func rotationFlow(ctx context.Context, cp *localcp.ControlPlane) (*corev1.Secret, error) {
	if _, err := currentGuide(ctx, cp); err != nil {
		return nil, err
	}
	c := cp.Client
	if err := meshUp(ctx, c); err != nil {
		return nil, fmt.Errorf("step 9, the mesh: %w", err)
	}

	anchor := &cmapi.Certificate{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: guide.TrustNamespace, Name: guide.TrustAnchor}, anchor); err != nil {
		return nil, err
	}
	anchor.Status.Conditions = append(anchor.Status.Conditions, cmapi.CertificateCondition{
		Type: cmapi.CertificateConditionIssuing, Status: cmmeta.ConditionTrue, Reason: "ManuallyTriggered",
		Message: "renewed by the demo, as cmctl renew does", LastTransitionTime: ptr.To(metav1.Now()), ObservedGeneration: anchor.Generation,
	})
	if err := c.Status().Update(ctx, anchor); err != nil {
		return nil, fmt.Errorf("step 10, renewing the root: %w", err)
	}
	issuer := &v1alpha1.LinkerdCAClusterIssuer{ObjectMeta: metav1.ObjectMeta{Name: guide.ClusterIssuer(guide.TrustAnchor, ns).Name}}
	st, err := waitPhase(ctx, c, issuer, v1alpha1.RotationHeld)
	if err != nil {
		return nil, fmt.Errorf("step 10, the issuer did not hold: %w", err)
	}
	fmt.Printf("\n10. cert-manager renews the root in place (cmctl renew %s -n %s): a new key, the old one gone.\n"+
		"    The issuer holds: %s.\n    Nothing is signed under the new root until every meshed pod trusts it.\n",
		guide.TrustAnchor, guide.TrustNamespace, st.Message)

	fmt.Println("\n11. Restarts turned on (Helm value rotation.restarts.enabled): the issuer restarts each meshed workload once.")
	cp.SetIssuerArgs("--proxy-certificate-lifetime="+proxyLifetime, "--rotation-restarts")
	if err := cp.StopIssuer("issuer", syscall.SIGTERM); err != nil {
		return nil, err
	}
	if err := cp.StartIssuer(ctx, "issuer"); err != nil {
		return nil, err
	}
	fmt.Printf("\n12. linkerd-ca rotation status --watch (the old root drains for %s, Linkerd's 24 h proxy certificate lifetime shortened):\n\n", proxyLifetime)
	if code := cli.Run(ctx, []string{"rotation", "status", "--watch", "--timeout", "5m", "--kubeconfig", cp.AdminKubeconfig, "-L", ns}, os.Stdout, os.Stderr); code != 0 {
		return nil, fmt.Errorf("step 12, the rotation did not reach Stable: linkerd-ca exited %d", code)
	}
	secret := &corev1.Secret{}
	return secret, c.Get(ctx, client.ObjectKey{Namespace: ns, Name: guide.IdentityIssuer}, secret)
}

// meshUp restarts Linkerd's control plane onto its trust roots (it starts
// before they exist) and deploys a few meshed Deployments on kwok's nodes.
func meshUp(ctx context.Context, c client.Client) error {
	for _, name := range localcp.LinkerdComponents {
		d := &appsv1.Deployment{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "linkerd-" + name}, d); err != nil {
			return err
		}
		d.Spec.Template.Annotations = map[string]string{"kubectl.kubernetes.io/restartedAt": time.Now().Format(time.RFC3339)}
		if err := c.Update(ctx, d); err != nil {
			return err
		}
	}
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: meshNamespace, Labels: map[string]string{localcp.InjectLabel: "enabled"}}}); err != nil {
		return err
	}
	apps := []string{"web", "emoji", "voting", "vote-bot"}
	for _, app := range apps {
		labels := map[string]string{"app": app}
		if err := c.Create(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: meshNamespace, Name: app},
			Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](2), Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: app, Image: "docker.l5d.io/buoyantio/emojivoto-" + app + ":v11"}}}}}}); err != nil {
			return err
		}
	}
	want := 2*len(apps) + len(localcp.LinkerdComponents)
	err := wait.PollUntilContextTimeout(ctx, time.Second, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		var pods corev1.PodList
		if err := c.List(ctx, &pods, client.MatchingLabels{localcp.ControlPlaneNSLabel: ns}); err != nil {
			return false, err
		}
		running := 0
		for _, p := range pods.Items {
			if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
				running++
			}
		}
		return running == want, nil
	})
	if err == nil {
		fmt.Printf("\n9. A mesh: Linkerd's control plane and %d meshed Deployments of 2 pods in namespace %s, on kwok's nodes,\n"+
			"   each proxy holding Linkerd's trust roots as the proxy injector puts them in its env.\n", len(apps), meshNamespace)
	}
	return err
}

// waitPhase waits for the issuer's rotation to reach phase.
func waitPhase(ctx context.Context, c client.Client, issuer v1alpha1.GenericIssuer, phase v1alpha1.RotationPhase) (*v1alpha1.RotationStatus, error) {
	var st *v1alpha1.RotationStatus
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		if err := c.Get(ctx, client.ObjectKeyFromObject(issuer), issuer); err != nil {
			return false, err
		}
		st = issuer.GetStatus().Rotation
		return st != nil && st.Phase == phase, nil
	})
	return st, err
}
