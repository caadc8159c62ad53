package podtrust

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Strip keeps of a pod only what Of reads, for a cache of every meshed pod:
// its identity, the labels and annotation Of reads, its controller, the
// proxy's trust env and start time. Everything else (other containers,
// volumes, other env, most of the status) is dropped before it is stored.
func Strip(in any) (any, error) {
	pod, ok := in.(*corev1.Pod)
	if !ok {
		return in, nil
	}
	out := &corev1.Pod{
		TypeMeta: pod.TypeMeta,
		ObjectMeta: metav1.ObjectMeta{
			Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID, ResourceVersion: pod.ResourceVersion,
			CreationTimestamp: pod.CreationTimestamp, DeletionTimestamp: pod.DeletionTimestamp, Finalizers: pod.Finalizers,
			Labels:      keep(pod.Labels, ControlPlaneNSLabel, ComponentLabel, podTemplateHashLabel),
			Annotations: keep(pod.Annotations, RestartedForAnnotation),
		},
		Spec:   corev1.PodSpec{NodeName: pod.Spec.NodeName},
		Status: corev1.PodStatus{StartTime: pod.Status.StartTime, Phase: pod.Status.Phase},
	}
	if owner := metav1.GetControllerOf(pod); owner != nil {
		out.OwnerReferences = []metav1.OwnerReference{*owner}
	}
	if c, ok := proxyContainer(pod); ok {
		proxy := corev1.Container{Name: c.Name}
		for _, e := range c.Env {
			if e.Name == TrustAnchorsEnv {
				e.Value = intern(e.Value)
				proxy.Env = append(proxy.Env, e)
			}
		}
		out.Spec.Containers = []corev1.Container{proxy}
	}
	component := pod.Labels[ComponentLabel]
	for _, list := range [][]corev1.ContainerStatus{pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses} {
		for _, cs := range list {
			if cs.Name == ProxyContainer || (component != "" && cs.Name == component) {
				out.Status.ContainerStatuses = append(out.Status.ContainerStatuses, corev1.ContainerStatus{Name: cs.Name, State: cs.State})
			}
		}
	}
	return out, nil
}

func keep(m map[string]string, keys ...string) map[string]string {
	var out map[string]string
	for _, k := range keys {
		if v, ok := m[k]; ok {
			if out == nil {
				out = make(map[string]string, len(keys))
			}
			out[k] = v
		}
	}
	return out
}
