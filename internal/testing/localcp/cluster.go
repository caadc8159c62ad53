package localcp

import (
	"context"
	_ "embed"
	"fmt"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// kwokStages is kwok's Stage configuration: what the fake nodes' kubelets
// would report.
//
//go:embed kwok-stages.yaml
var kwokStages []byte

// FakeNodes are the nodes kwok runs pods on.
var FakeNodes = []string{"kwok-node-0", "kwok-node-1"}

// kwokNodeAnnotation marks the nodes kwok manages, as kwok's docs do.
const kwokNodeAnnotation = "kwok.x-k8s.io/node"

// clusterBinaries are what Options.Workloads adds to the control plane.
func clusterBinaries(opts Options) []string {
	if opts.WithoutKMS {
		return []string{"kube-controller-manager", "kube-scheduler", "kwok"}
	}
	return []string{"kube-controller-manager", "kube-scheduler", "kwok", "local-kms"}
}

// startCluster makes the control plane a cluster that runs workloads:
// kube-controller-manager (Deployments become ReplicaSets and Pods, deleted
// namespaces empty, aggregated ClusterRoles fill, ServiceAccounts and their
// tokens appear), kube-scheduler (pods get a node), and kwok, which stands
// in for the kubelets of FakeNodes: pods there become Running and Ready and
// go when deleted, without containers.
func (cp *ControlPlane) startCluster(ctx context.Context) error {
	api := cp.env.ControlPlane.APIServer
	caFile := filepath.Join(cp.Dir, "apiserver-ca.crt")
	if err := os.WriteFile(caFile, api.CA, 0o600); err != nil {
		return err
	}
	bin := func(name string) string { return filepath.Join(cp.opts.RepoRoot, "bin", name) }
	// Each runs as the user Kubernetes' bootstrap RBAC gives its component.
	kcm, err := cp.writeKubeconfig("kube-controller-manager", envtest.User{Name: "system:kube-controller-manager"})
	if err != nil {
		return err
	}
	if err := cp.start("kube-controller-manager", bin("kube-controller-manager"), nil,
		"--kubeconfig="+kcm, "--authentication-kubeconfig="+kcm, "--authorization-kubeconfig="+kcm,
		"--leader-elect=false", "--bind-address=127.0.0.1", "--secure-port=0",
		// Each controller with a ServiceAccount of its own, as in a cluster:
		// the ServiceAccount token controller signs with the API server's key.
		"--use-service-account-credentials=true",
		"--service-account-private-key-file="+filepath.Join(api.CertDir, "sa-signer.key"),
		"--root-ca-file="+caFile,
		"--controllers=*",
		"--concurrent-gc-syncs=5", "--namespace-sync-period=10s",
		"--v=1",
	); err != nil {
		return err
	}
	sched, err := cp.writeKubeconfig("kube-scheduler", envtest.User{Name: "system:kube-scheduler"})
	if err != nil {
		return err
	}
	if err := cp.start("kube-scheduler", bin("kube-scheduler"), nil,
		"--kubeconfig="+sched, "--authentication-kubeconfig="+sched, "--authorization-kubeconfig="+sched,
		"--leader-elect=false", "--bind-address=127.0.0.1", "--secure-port=0", "--v=1",
	); err != nil {
		return err
	}
	if err := cp.startKwok(ctx); err != nil {
		return err
	}
	if cp.opts.WithoutKMS {
		return nil
	}
	// The cloud the cluster runs in: local-kms for AWS KMS (kms.go).
	return cp.startKMS(ctx)
}

// startKwok runs kwok for FakeNodes, and creates them. kwok renews their
// Leases, so that kube-controller-manager's node lifecycle controller sees
// live nodes and lifts the not-ready taint the API server puts on new ones.
func (cp *ControlPlane) startKwok(ctx context.Context) error {
	kubeconfig, err := cp.writeKubeconfig("kwok", envtest.User{Name: "kwok", Groups: []string{"system:masters"}})
	if err != nil {
		return err
	}
	stages := filepath.Join(cp.Dir, "kwok-stages.yaml")
	if err := os.WriteFile(stages, kwokStages, 0o600); err != nil {
		return err
	}
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	// kwok reads and writes ~/.kwok; the control plane's directory stands in.
	if err := cp.start("kwok", filepath.Join(cp.opts.RepoRoot, "bin", "kwok"), []string{"HOME=" + cp.Dir},
		"--kubeconfig="+kubeconfig, "--config="+stages,
		"--manage-all-nodes=false", "--manage-nodes-with-annotation-selector="+kwokNodeAnnotation+"=fake",
		"--node-lease-duration-seconds=40", "--cidr=10.244.0.0/16", "--node-ip=10.0.0.1",
		"--server-address="+addr,
	); err != nil {
		return err
	}
	for _, name := range FakeNodes {
		node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Annotations: map[string]string{kwokNodeAnnotation: "fake", "node.alpha.kubernetes.io/ttl": "0"},
			Labels:      map[string]string{"type": "kwok", corev1.LabelHostname: name, corev1.LabelOSStable: "linux", corev1.LabelArchStable: "amd64"},
		}}
		if err := cp.Client.Create(ctx, node); err != nil {
			return fmt.Errorf("creating fake node %s: %w", name, err)
		}
	}
	return cp.waitSchedulable(ctx, 60*time.Second)
}

// waitSchedulable waits until every fake node is Ready and without taints,
// so that pods land on them.
func (cp *ControlPlane) waitSchedulable(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		var why error
		for _, name := range FakeNodes {
			var n corev1.Node
			if err := cp.Client.Get(ctx, client.ObjectKey{Name: name}, &n); err != nil {
				why = err
				break
			}
			if !nodeReady(&n) || len(n.Spec.Taints) > 0 {
				why = fmt.Errorf("node %s: ready=%v taints=%v", name, nodeReady(&n), n.Spec.Taints)
				break
			}
		}
		if why == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("fake nodes not schedulable within %s: %w (see %s, %s)", timeout, why, cp.LogPath("kwok"), cp.LogPath("kube-controller-manager"))
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
