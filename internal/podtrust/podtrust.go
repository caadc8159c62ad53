// Package podtrust reads, from a pod as Linkerd's injector and Helm chart
// write it, which trust roots its proxy holds: the roots inline in
// linkerd-proxy's LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS (meshed pods), or
// the trust roots ConfigMap as it was when the container started
// (control-plane pods, by configMapKeyRef). A pod's roots never change while
// it runs (linkerd2#9313), so this is all a rotation needs to know of it.
package podtrust

import (
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/signer"
)

// The names Linkerd gives what matters to trust.
const (
	ProxyContainer  = "linkerd-proxy"
	TrustAnchorsEnv = "LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS"
	// ControlPlaneNSLabel marks every meshed pod, control plane included,
	// with its control plane's namespace.
	ControlPlaneNSLabel = "linkerd.io/control-plane-ns"
	// ComponentLabel marks Linkerd's own control-plane pods.
	ComponentLabel = "linkerd.io/control-plane-component"
	// RestartedForAnnotation, on a workload's pod template, records the root
	// a rotation restarted it for: patching it again with the same value
	// changes nothing, so a workload is restarted at most once per root.
	RestartedForAnnotation = "linkerdca.io/restarted-for"
	// RestartedAtAnnotation is when: a rollout that has not replaced the
	// pods behind some time later is stalled.
	RestartedAtAnnotation = "linkerdca.io/restarted-at"
	// podTemplateHashLabel names a Deployment's ReplicaSet: <deployment>-<hash>.
	podTemplateHashLabel = "pod-template-hash"
)

// Workload is what a restart can replace a pod through. Kind is empty for a
// pod nothing re-creates on a restart (a bare pod, a Job's). Owner is the
// kind of a controller this project cannot restart (an Argo Rollout, a
// ReplicaSet of no Deployment): it names the manual step.
type Workload struct {
	Kind      string `json:"kind,omitempty"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Owner     string `json:"owner,omitempty"`
}

// Restartable says whether a rollout restart replaces the workload's pods.
func (w Workload) Restartable() bool { return w.Kind != "" }

func (w Workload) String() string {
	switch {
	case w.Kind != "":
		return w.Kind + " " + w.Namespace + "/" + w.Name
	case w.Owner != "":
		return w.Owner + " " + w.Namespace + "/" + w.Name
	}
	return w.Namespace + "/" + w.Name
}

// Pod is what a rotation needs of a meshed pod.
type Pod struct {
	Namespace, Name string
	// ControlPlane is the namespace of the pod's control plane.
	ControlPlane string
	// Component is set on Linkerd's own control-plane pods.
	Component string
	// Inline are the fingerprints of the roots in the proxy's env; nil when
	// it takes them from the ConfigMap, or when they do not parse (Invalid).
	// Shared by the pods holding the same bundle: read only.
	Inline []string
	// FromConfigMap: the proxy reads the trust roots ConfigMap when it starts.
	FromConfigMap bool
	// Invalid is why the inline roots do not parse: the proxy trusts nothing.
	Invalid string
	Created time.Time
	// Started is when linkerd-proxy (else the pod) started; nil before.
	Started *time.Time
	// ComponentStarted is when a control-plane pod's own container (named
	// after its component: identity, destination) started; nil before.
	ComponentStarted *time.Time
	// DeleteBy is set on a terminating pod, which still runs its proxy
	// until it is gone: when its grace period ends.
	DeleteBy *time.Time
	// NodeName is the node the pod runs on, and Finalizers what holds its
	// deletion: a pod still there past DeleteBy is held by one or the other.
	NodeName   string
	Finalizers []string
	// Finished is the phase of a pod whose containers all stopped for good
	// (Succeeded: a finished Job; Failed: evicted): it runs no proxy, so it
	// can break nothing and blocks nothing.
	Finished     corev1.PodPhase
	Workload     Workload
	RestartedFor string
}

// Live says whether the pod's proxy runs, or may run: a rotation counts it.
func (p Pod) Live() bool { return p.Finished == "" }

// Of reads a pod's trust; ok is false for a pod without linkerd-proxy.
func Of(pod *corev1.Pod) (p Pod, ok bool) {
	proxy, ok := proxyContainer(pod)
	if !ok {
		return Pod{}, false
	}
	p = Pod{
		Namespace: pod.Namespace, Name: pod.Name,
		ControlPlane: pod.Labels[ControlPlaneNSLabel], Component: pod.Labels[ComponentLabel],
		Created:  pod.CreationTimestamp.Time,
		Workload: workloadOf(pod), RestartedFor: pod.Annotations[RestartedForAnnotation],
	}
	for _, e := range proxy.Env {
		if e.Name != TrustAnchorsEnv {
			continue
		}
		if e.ValueFrom != nil && e.ValueFrom.ConfigMapKeyRef != nil {
			p.FromConfigMap = true
		} else if b := bundleOf(e.Value); b.err != nil {
			p.Invalid = b.err.Error()
		} else {
			p.Inline = b.roots // shared by every pod holding the bundle: read only
		}
	}
	if p.Inline == nil && !p.FromConfigMap && p.Invalid == "" {
		p.Invalid = "linkerd-proxy has no " + TrustAnchorsEnv
	}
	if pod.DeletionTimestamp != nil {
		t := pod.DeletionTimestamp.Time
		p.DeleteBy = &t
	}
	p.NodeName, p.Finalizers = pod.Spec.NodeName, pod.Finalizers
	if ph := pod.Status.Phase; ph == corev1.PodSucceeded || ph == corev1.PodFailed {
		p.Finished = ph
	}
	p.Started = startedAt(pod)
	if p.Component != "" {
		p.ComponentStarted = containerStarted(pod, p.Component)
	}
	return p, true
}

func parseRoots(env string) ([]string, error) {
	certs, err := signer.ParseTrustBundle([]byte(env))
	if err != nil {
		return nil, err
	}
	fps := make([]string, len(certs))
	for i, c := range certs {
		fps[i] = signer.Fingerprint(c)
	}
	return fps, nil
}

// proxyContainer finds linkerd-proxy: a native sidecar in current Linkerd,
// a container in older releases.
func proxyContainer(pod *corev1.Pod) (corev1.Container, bool) {
	for _, list := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for _, c := range list {
			if c.Name == ProxyContainer {
				return c, true
			}
		}
	}
	return corev1.Container{}, false
}

func startedAt(pod *corev1.Pod) *time.Time {
	if t := containerStarted(pod, ProxyContainer); t != nil {
		return t
	}
	if pod.Status.StartTime != nil {
		return &pod.Status.StartTime.Time
	}
	return nil
}

// containerStarted is when the named container last started running: a
// pointer into pod, which the rotation reads only, so that reading
// thousands of pods a reconcile allocates nothing here.
func containerStarted(pod *corev1.Pod, name string) *time.Time {
	for _, list := range [2][]corev1.ContainerStatus{pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses} {
		for i := range list {
			if cs := &list[i]; cs.Name == name && cs.State.Running != nil && !cs.State.Running.StartedAt.IsZero() {
				return &cs.State.Running.StartedAt.Time
			}
		}
	}
	return nil
}

// workloadOf is the Deployment, StatefulSet or DaemonSet a restart goes
// through. A Deployment's ReplicaSet is named <deployment>-<pod-template-hash>,
// so no ReplicaSet needs reading; a ReplicaSet of no Deployment then shows as
// a Deployment the restart does not find, and is reported, not restarted.
func workloadOf(pod *corev1.Pod) Workload {
	var owner *metav1.OwnerReference
	for i, ref := range pod.OwnerReferences {
		if ref.Controller != nil && *ref.Controller {
			owner = &pod.OwnerReferences[i]
			break
		}
	}
	if owner == nil {
		return Workload{Namespace: pod.Namespace, Name: pod.Name}
	}
	switch owner.Kind {
	case "ReplicaSet":
		if h := pod.Labels[podTemplateHashLabel]; h != "" && len(owner.Name) > len(h)+1 && owner.Name[len(owner.Name)-len(h)-1] == '-' && strings.HasSuffix(owner.Name, h) {
			return Workload{Kind: "Deployment", Namespace: pod.Namespace, Name: owner.Name[:len(owner.Name)-len(h)-1]}
		}
		return Workload{Namespace: pod.Namespace, Name: owner.Name, Owner: owner.Kind}
	case "StatefulSet", "DaemonSet":
		return Workload{Kind: owner.Kind, Namespace: pod.Namespace, Name: owner.Name}
	case "Job":
		return Workload{Namespace: pod.Namespace, Name: pod.Name}
	}
	return Workload{Namespace: pod.Namespace, Name: owner.Name, Owner: owner.Kind}
}
