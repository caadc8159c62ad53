package localcp

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// Each component runs as a user of its own; the issuer's has exactly the
// RBAC its Helm chart renders.

func (cp *ControlPlane) writeKubeconfig(name string, user envtest.User) (string, error) {
	path, _, err := cp.addUser(name, user)
	return path, err
}

// addUser provisions a user with a client certificate and writes its
// kubeconfig into Dir.
func (cp *ControlPlane) addUser(name string, user envtest.User) (string, *rest.Config, error) {
	u, err := cp.env.AddUser(user, nil)
	if err != nil {
		return "", nil, fmt.Errorf("provisioning user %s: %w", user.Name, err)
	}
	raw, err := u.KubeConfig()
	if err != nil {
		return "", nil, err
	}
	path := filepath.Join(cp.Dir, name+".kubeconfig")
	return path, u.Config(), os.WriteFile(path, raw, 0o600)
}

// bindIssuerRBAC applies the ServiceAccount and RBAC the Helm chart grants
// the issuer (derived from config/rbac/role.yaml, generated from the
// controller's markers), for the suite's watched namespaces. The issuer runs
// as that ServiceAccount's user name, so it has exactly those permissions.
func (cp *ControlPlane) bindIssuerRBAC(ctx context.Context) error {
	objs, err := RenderChart(cp.opts.RepoRoot, cp.chartValues()...)
	if err != nil {
		return err
	}
	for _, o := range objs {
		switch o.GetKind() {
		case "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "CertificateRequestPolicy":
			if err := cp.createAll(ctx, o); err != nil {
				return err
			}
		case "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding":
			// The policy that ships with the restart grant: the issuer's
			// restarts run under it as they would on a cluster.
			if strings.Contains(o.GetName(), "-restarts-") {
				if err := cp.createAll(ctx, o); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// chartValues are the Helm values the local issuer's flags and RBAC follow.
func (cp *ControlPlane) chartValues() []string {
	v := []string{
		"watchNamespaces={" + strings.Join(cp.opts.WatchNamespaces, ",") + "}",
		"clusterResourceNamespace=" + cp.opts.ClusterResourceNamespace,
	}
	if cp.opts.RotationRestarts {
		v = append(v, "rotation.restarts.enabled=true")
	}
	if cp.opts.Multicluster {
		v = append(v, "multicluster.enabled=true")
	}
	if cp.opts.ApproverPolicy {
		v = append(v, "approverPolicy.enabled=true")
		for i, ns := range cp.opts.WatchNamespaces {
			v = append(v, fmt.Sprintf("approverPolicy.controlPlanes[%d].namespace=%s", i, ns))
		}
	}
	if len(cp.opts.CSRRequesters) > 0 {
		v = append(v, "kubernetesCSR.enabled=true", "kubernetesCSR.requesters={"+strings.Join(cp.opts.CSRRequesters, ",")+"}")
	}
	return v
}

func (cp *ControlPlane) createAll(ctx context.Context, objs ...client.Object) error {
	for _, o := range objs {
		if err := cp.Client.Create(ctx, o); err != nil {
			return fmt.Errorf("creating %T %s: %w", o, client.ObjectKeyFromObject(o), err)
		}
	}
	return nil
}

func (cp *ControlPlane) ensureNamespace(ctx context.Context, name string) error {
	err := cp.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating namespace %s: %w", name, err)
	}
	return nil
}
