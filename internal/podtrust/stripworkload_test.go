package podtrust

import (
	"reflect"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestStripWorkloadKeepsWhatARestartReads(t *testing.T) {
	tmpl := corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"},
			Annotations: map[string]string{RestartedForAnnotation: "BB", RestartedAtAnnotation: "2026-12-07T12:00:00Z", "config.linkerd.io/proxy-cpu": "1"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "web:1", Env: []corev1.EnvVar{{Name: "SECRET", Value: "x"}}}}},
	}
	meta := metav1.ObjectMeta{Namespace: "app", Name: "web", ResourceVersion: "7", Generation: 3, Labels: map[string]string{"a": "b"}, Annotations: map[string]string{"big": "x"}}
	wantMeta := metav1.ObjectMeta{Namespace: "app", Name: "web", ResourceVersion: "7", Generation: 3}
	wantTmpl := corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{RestartedForAnnotation: "BB", RestartedAtAnnotation: "2026-12-07T12:00:00Z"}}}
	sts := appsv1.StatefulSetUpdateStrategy{Type: appsv1.RollingUpdateStatefulSetStrategyType, RollingUpdate: &appsv1.RollingUpdateStatefulSetStrategy{Partition: ptr.To[int32](2)}}
	ds := appsv1.DaemonSetUpdateStrategy{Type: appsv1.OnDeleteDaemonSetStrategyType}
	for _, tc := range []struct{ in, want any }{
		{&appsv1.Deployment{ObjectMeta: meta, Spec: appsv1.DeploymentSpec{Paused: true, Replicas: ptr.To[int32](3), Template: tmpl}},
			&appsv1.Deployment{ObjectMeta: wantMeta, Spec: appsv1.DeploymentSpec{Paused: true, Template: wantTmpl}}},
		{&appsv1.StatefulSet{ObjectMeta: meta, Spec: appsv1.StatefulSetSpec{UpdateStrategy: sts, ServiceName: "web", Template: tmpl}},
			&appsv1.StatefulSet{ObjectMeta: wantMeta, Spec: appsv1.StatefulSetSpec{UpdateStrategy: sts, Template: wantTmpl}}},
		{&appsv1.DaemonSet{ObjectMeta: meta, Spec: appsv1.DaemonSetSpec{UpdateStrategy: ds, Template: tmpl}},
			&appsv1.DaemonSet{ObjectMeta: wantMeta, Spec: appsv1.DaemonSetSpec{UpdateStrategy: ds, Template: wantTmpl}}},
	} {
		got, err := StripWorkload(tc.in)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("StripWorkload(%T) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}
