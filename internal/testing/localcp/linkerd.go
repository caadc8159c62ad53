package localcp

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
)

// LinkerdComponents are Linkerd's control plane Deployments whose proxies
// hold trust roots: linkerd-identity, linkerd-destination and
// linkerd-proxy-injector.
var LinkerdComponents = []string{"identity", "destination", "proxy-injector"}

// LinkerdControlPlane is Linkerd's control plane in namespace ns as its Helm
// chart renders it for trust (with identity.externalCA): each component's
// Deployment runs its controller and linkerd-proxy as a native sidecar
// whose LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS comes from the
// linkerd-identity-trust-roots ConfigMap by configMapKeyRef
// (proxy.loadTrustBundleFromConfigMap), resolved when the container
// starts. Images are never pulled: kwok runs the pods.
func LinkerdControlPlane(ns string) []client.Object {
	var objs []client.Object
	for _, c := range LinkerdComponents {
		labels := map[string]string{"linkerd.io/control-plane-component": c, ControlPlaneNSLabel: ns}
		proxy := corev1.Container{
			Name:          ProxyContainer,
			Image:         "cr.l5d.io/linkerd/proxy:stand-in",
			RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways),
			Env: []corev1.EnvVar{{Name: TrustAnchorsEnv, ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: v1alpha1.DefaultTrustRootsConfigMap},
				Key:                  v1alpha1.DefaultTrustRootsKey,
			}}}},
		}
		objs = append(objs, &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "linkerd-" + c, Labels: labels},
			Spec: appsv1.DeploymentSpec{
				Replicas: ptr.To[int32](1),
				Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"linkerd.io/control-plane-component": c}},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec: corev1.PodSpec{
						InitContainers: []corev1.Container{proxy},
						Containers:     []corev1.Container{{Name: c, Image: "cr.l5d.io/linkerd/controller:stand-in"}},
					},
				},
			},
		})
	}
	return objs
}
