package podtrust

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// StripWorkload keeps of a Deployment, StatefulSet or DaemonSet only what
// the rotation reads before restarting it: whether a rollout restart
// replaces its pods (paused, update strategy) and the restart annotations
// of its pod template. A cache of every workload in the cluster then costs
// a few hundred bytes each. Nothing is ever written back from it: a restart
// is a merge patch.
func StripWorkload(in any) (any, error) {
	meta := func(m metav1.ObjectMeta) metav1.ObjectMeta {
		return metav1.ObjectMeta{Namespace: m.Namespace, Name: m.Name, UID: m.UID, ResourceVersion: m.ResourceVersion, Generation: m.Generation}
	}
	template := func(t corev1.PodTemplateSpec) corev1.PodTemplateSpec {
		return corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Annotations: keep(t.Annotations, RestartedForAnnotation, RestartedAtAnnotation)}}
	}
	switch o := in.(type) {
	case *appsv1.Deployment:
		return &appsv1.Deployment{TypeMeta: o.TypeMeta, ObjectMeta: meta(o.ObjectMeta),
			Spec: appsv1.DeploymentSpec{Paused: o.Spec.Paused, Template: template(o.Spec.Template)}}, nil
	case *appsv1.StatefulSet:
		return &appsv1.StatefulSet{TypeMeta: o.TypeMeta, ObjectMeta: meta(o.ObjectMeta),
			Spec: appsv1.StatefulSetSpec{UpdateStrategy: o.Spec.UpdateStrategy, Template: template(o.Spec.Template)}}, nil
	case *appsv1.DaemonSet:
		return &appsv1.DaemonSet{TypeMeta: o.TypeMeta, ObjectMeta: meta(o.ObjectMeta),
			Spec: appsv1.DaemonSetSpec{UpdateStrategy: o.Spec.UpdateStrategy, Template: template(o.Spec.Template)}}, nil
	}
	return in, nil
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
