//go:build e2e

package multicluster

import (
	"bytes"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/cli"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/guide"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/podtrust"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/signer"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/testing/localcp"
)

// cluster is one of the two, and its peer the other.
type cluster struct {
	name string
	cp   *localcp.ControlPlane
	c    client.Client
	peer *cluster
}

func eventually(t *testing.T, timeout time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %v", what, timeout, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func (k *cluster) create(t *testing.T, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		if err := k.c.Create(ctx, o); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("%s: creating %T %s: %v", k.name, o, client.ObjectKeyFromObject(o), err)
		}
	}
}

// linkerdCA runs the CLI against this cluster.
func (k *cluster) linkerdCA(args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := cli.Run(ctx, append(args, "--kubeconfig", k.cp.AdminKubeconfig, "-L", ns), &out, &errOut)
	return code, out.String(), errOut.String()
}

// setUp is the current guide's flow, its issuer linked to the peer's: the
// root (a key of this cluster's own), the cluster issuer naming the peer,
// and trust-manager's Bundle of the trusted set.
func (k *cluster) setUp(t *testing.T) {
	t.Helper()
	var nsObj corev1.Namespace
	if err := k.c.Get(ctx, client.ObjectKey{Name: ns}, &nsObj); err != nil {
		t.Fatal(err)
	}
	nsObj.Labels = map[string]string{guide.ControlPlaneLabel: "true"}
	if err := k.c.Update(ctx, &nsObj); err != nil {
		t.Fatal(err)
	}
	k.create(t, guide.SelfSignedRootIssuer(), guide.TrustAnchorCertificate(guide.TrustAnchor))
	k.waitCertificate(t, guide.TrustNamespace, guide.TrustAnchor)
	iss := guide.ClusterIssuer(guide.TrustAnchor, ns)
	iss.Spec.Rotation.Peers = []v1alpha1.RotationPeer{{Name: k.peer.name, KubeconfigSecretName: "linkerd-ca-peer-" + k.peer.name, IssuerName: guide.IdentityIssuer}}
	k.create(t, iss, guide.Bundle())
}

// link applies here the link Secret `linkerd-ca multicluster link` prints
// for the peer.
func (k *cluster) link(t *testing.T) {
	t.Helper()
	code, out, errOut := k.peer.linkerdCA("multicluster", "link", "--cluster-name", k.peer.name, "--service-account-namespace", localcp.IssuerNamespace)
	if code != 0 {
		t.Fatalf("linkerd-ca multicluster link --cluster-name %s: exit %d\n%s", k.peer.name, code, errOut)
	}
	var s corev1.Secret
	if err := yaml.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("the link Secret: %v\n%s", err, out)
	}
	k.create(t, &s)
}

func (k *cluster) issuer(t *testing.T) *v1alpha1.LinkerdCAClusterIssuer {
	t.Helper()
	iss := &v1alpha1.LinkerdCAClusterIssuer{}
	if err := k.c.Get(ctx, client.ObjectKey{Name: guide.IdentityIssuer}, iss); err != nil {
		t.Fatal(err)
	}
	return iss
}

// waitRotation waits for the issuer's status.rotation to satisfy ok.
func (k *cluster) waitRotation(t *testing.T, timeout time.Duration, what string, ok func(*v1alpha1.RotationStatus) error) *v1alpha1.RotationStatus {
	t.Helper()
	var st *v1alpha1.RotationStatus
	eventually(t, timeout, k.name+": "+what, func() error {
		if st = k.issuer(t).Status.Rotation; st == nil {
			return fmt.Errorf("no status.rotation")
		}
		if err := ok(st); err != nil {
			return fmt.Errorf("%w (phase %s: %s)", err, st.Phase, st.Message)
		}
		return nil
	})
	return st
}

func (k *cluster) waitCertificate(t *testing.T, namespace, name string) {
	t.Helper()
	eventually(t, 60*time.Second, k.name+": Certificate "+namespace+"/"+name+" Ready", func() error {
		var crt cmapi.Certificate
		if err := k.c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &crt); err != nil {
			return err
		}
		for _, c := range crt.Status.Conditions {
			if c.Type == cmapi.CertificateConditionReady && c.Status == cmmeta.ConditionTrue {
				return nil
			}
		}
		return fmt.Errorf("not Ready: %+v", crt.Status.Conditions)
	})
}

// trustRoots are the fingerprints in Linkerd's trust roots here.
func (k *cluster) trustRoots(t *testing.T) []string {
	t.Helper()
	var cm corev1.ConfigMap
	if err := k.c.Get(ctx, client.ObjectKey{Namespace: ns, Name: guide.TrustRoots}, &cm); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		t.Fatal(err)
	}
	return fingerprints(cm.Data[v1alpha1.DefaultTrustRootsKey])
}

func fingerprints(bundle string) []string {
	certs, _ := signer.ParseTrustBundle([]byte(bundle))
	var out []string
	for _, c := range certs {
		out = append(out, signer.Fingerprint(c))
	}
	slices.Sort(out)
	return out
}

// anchorRoot is the fingerprint of the root in this cluster's anchor Secret.
func (k *cluster) anchorRoot(t *testing.T) string {
	t.Helper()
	var s corev1.Secret
	if err := k.c.Get(ctx, client.ObjectKey{Namespace: guide.TrustNamespace, Name: k.issuer(t).Spec.TrustAnchorSecretName}, &s); err != nil {
		t.Fatal(err)
	}
	certs, err := signer.ParseTrustBundle(s.Data[corev1.TLSCertKey])
	if err != nil || len(certs) == 0 {
		t.Fatalf("%s: the anchor Secret holds no root: %v", k.name, err)
	}
	return signer.Fingerprint(certs[0])
}

// meshUp restarts Linkerd's control plane onto its trust roots, issues the
// identity issuer and deploys meshed workloads.
func (k *cluster) meshUp(t *testing.T) {
	t.Helper()
	for _, c := range localcp.LinkerdComponents {
		k.restart(t, "linkerd-"+c, ns)
	}
	crt := guide.IdentityIssuerCertificate(ns, guide.IdentityIssuer)
	k.create(t, crt, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: apps, Labels: map[string]string{localcp.InjectLabel: "enabled"}}})
	k.waitCertificate(t, ns, crt.Name)
	for _, name := range []string{"web", "api"} {
		labels := map[string]string{"app": name}
		k.create(t, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: apps, Name: name},
			Spec: appsv1.DeploymentSpec{Replicas: ptr.To(int32(replicas)), Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example/" + name + ":1"}}}}}})
	}
	k.waitMeshed(t, meshed())
}

// replicas is each meshed Deployment's: $MULTICLUSTER_REPLICAS, 3 by
// default (make bench-multicluster: 50, about 100 meshed pods a cluster).
var replicas = func() int {
	if n, err := strconv.Atoi(os.Getenv("MULTICLUSTER_REPLICAS")); err == nil && n > 0 {
		return n
	}
	return 3
}()

// within scales a wait with the mesh.
func within(d time.Duration) time.Duration { return d * time.Duration(max(1, replicas/10)) }

// meshed is how many meshed pods run in each cluster.
func meshed() int { return 2*replicas + len(localcp.LinkerdComponents) }

// restart rolls a Deployment out again, as kubectl rollout restart does.
func (k *cluster) restart(t *testing.T, name, namespace string) {
	t.Helper()
	var d appsv1.Deployment
	if err := k.c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &d); err != nil {
		t.Fatal(err)
	}
	if d.Spec.Template.Annotations == nil {
		d.Spec.Template.Annotations = map[string]string{}
	}
	d.Spec.Template.Annotations["kubectl.kubernetes.io/restartedAt"] = time.Now().Format(time.RFC3339Nano)
	if err := k.c.Update(ctx, &d); err != nil {
		t.Fatal(err)
	}
}

// pause pauses (or resumes) a meshed Deployment: a restart no longer
// replaces its pods, so its cluster's rotation waits on it.
func (k *cluster) pause(t *testing.T, name string, paused bool) {
	t.Helper()
	var d appsv1.Deployment
	if err := k.c.Get(ctx, client.ObjectKey{Namespace: apps, Name: name}, &d); err != nil {
		t.Fatal(err)
	}
	d.Spec.Paused = paused
	if err := k.c.Update(ctx, &d); err != nil {
		t.Fatal(err)
	}
}

// restartedFor is a meshed Deployment's restarted-for and restarted-at
// annotations: what the issuer wrote when it restarted it.
func (k *cluster) restartedFor(t *testing.T, name string) (root, at string) {
	t.Helper()
	var d appsv1.Deployment
	if err := k.c.Get(ctx, client.ObjectKey{Namespace: apps, Name: name}, &d); err != nil {
		t.Fatal(err)
	}
	return d.Spec.Template.Annotations[podtrust.RestartedForAnnotation], d.Spec.Template.Annotations[podtrust.RestartedAtAnnotation]
}

// crash kills the issuer (SIGKILL) and starts it again, as a kubelet
// restarts a crashed container.
func (k *cluster) crash(t *testing.T, phase string) {
	t.Helper()
	if err := k.cp.StopIssuer("issuer", syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := k.cp.StartIssuer(ctx, "issuer"); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: the issuer killed and started again, %s", k.name, phase)
}

// unlink removes the peer from this cluster's issuer.
func (k *cluster) unlink(t *testing.T) {
	t.Helper()
	iss := k.issuer(t)
	iss.Spec.Rotation.Peers = nil
	if err := k.c.Update(ctx, iss); err != nil {
		t.Fatal(err)
	}
}

// waitMeshed waits for want running meshed pods, and no others.
func (k *cluster) waitMeshed(t *testing.T, want int) {
	t.Helper()
	eventually(t, within(2*time.Minute), fmt.Sprintf("%s: %d meshed pods running", k.name, want), func() error {
		var pods corev1.PodList
		if err := k.c.List(ctx, &pods, client.MatchingLabels{localcp.ControlPlaneNSLabel: ns}); err != nil {
			return err
		}
		running, other := 0, 0
		for _, p := range pods.Items {
			if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
				running++
			} else {
				other++
			}
		}
		if running != want || other != 0 {
			return fmt.Errorf("%d running, %d starting or going", running, other)
		}
		return nil
	})
}

func chainsTo(certPEM []byte, roots map[string]*x509.Certificate) string {
	certs, _ := signer.ParseTrustBundle(certPEM)
	if len(certs) == 0 {
		return ""
	}
	for fp, r := range roots {
		if certs[0].CheckSignatureFrom(r) == nil {
			return fp
		}
	}
	return ""
}

func short(fp string) string {
	if len(fp) > 23 {
		return fp[:23]
	}
	return fp
}

func hasAll(have []string, want ...string) error {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return fmt.Errorf("lacks %s (holds %s)", short(w), strings.Join(have, ", "))
		}
	}
	return nil
}

// kubeconfig is one kubeconfig with a context per cluster, named as the
// cluster: what an operator of linked clusters has.
func kubeconfig(t *testing.T, clusters ...*cluster) string {
	t.Helper()
	merged := clientcmdapi.NewConfig()
	for _, k := range clusters {
		cfg, err := clientcmd.LoadFromFile(k.cp.AdminKubeconfig)
		if err != nil {
			t.Fatal(err)
		}
		cur := cfg.Contexts[cfg.CurrentContext]
		if cur == nil {
			t.Fatalf("%s: the admin kubeconfig has no current context", k.name)
		}
		merged.Clusters[k.name], merged.AuthInfos[k.name] = cfg.Clusters[cur.Cluster], cfg.AuthInfos[cur.AuthInfo]
		merged.Contexts[k.name] = &clientcmdapi.Context{Cluster: k.name, AuthInfo: k.name}
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*merged, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// linkerdCAIn runs the CLI against the kube context named as k, in
// kubeconfig.
func (k *cluster) linkerdCAIn(kubeconfig string, args ...string) (int, string) {
	var out bytes.Buffer
	code := cli.Run(ctx, append(args, "--kubeconfig", kubeconfig, "--context", k.name, "-L", ns), &out, &out)
	return code, out.String()
}

// trustedVersion is the resourceVersion of the trusted set here.
func (k *cluster) trustedVersion(t *testing.T) string {
	t.Helper()
	var cm corev1.ConfigMap
	if err := k.c.Get(ctx, client.ObjectKey{Namespace: guide.TrustNamespace, Name: guide.TrustedRoots}, &cm); err != nil {
		t.Fatal(err)
	}
	return cm.ResourceVersion
}
