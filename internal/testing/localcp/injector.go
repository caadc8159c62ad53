package localcp

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
)

// The names the stand-in injector shares with linkerd2's.
const (
	// InjectLabel on a namespace asks for injection.
	InjectLabel = "linkerd.io/inject"
	// ProxyContainer is the injected proxy, a native sidecar.
	ProxyContainer = "linkerd-proxy"
	// TrustAnchorsEnv holds the proxy's trust roots, as PEM.
	TrustAnchorsEnv = "LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS"
	// TrustRootHashAnnotation is the hex SHA-256 of the bundle as read.
	TrustRootHashAnnotation = "linkerd.io/trust-root-sha256"
	// ControlPlaneNSLabel and WorkloadNSLabel mark meshed pods.
	ControlPlaneNSLabel = "linkerd.io/control-plane-ns"
	WorkloadNSLabel     = "linkerd.io/workload-ns"
)

// injector stands in for Linkerd's proxy injector (linkerd2's
// controller/proxy-injector), which cannot run here, as a real mutating
// admission webhook. To each pod created in a namespace labelled
// linkerd.io/inject=enabled it does what that injector does for trust, and
// nothing else: it reads ca-bundle.crt of the control plane's
// linkerd-identity-trust-roots ConfigMap at admission (the injector reads
// its mounted copy on every request), adds linkerd-proxy as a native sidecar
// with the bundle inline in LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS (its Helm
// template renders it with a trailing newline), annotates the hex SHA-256 of
// the bundle's bytes as read, and labels the pod with the control plane and
// workload namespaces. A pod's roots then never change while it runs, as
// in Linkerd (linkerd2#9313). The facts are ROTATION.md's, observed with
// linkerd2's real injector.
type injector struct {
	client       client.Reader
	controlPlane string
	decoder      admission.Decoder
}

func (i *injector) Handle(ctx context.Context, req admission.Request) admission.Response {
	var pod corev1.Pod
	if err := i.decoder.Decode(req, &pod); err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	for _, c := range pod.Spec.InitContainers {
		if c.Name == ProxyContainer {
			return admission.Allowed("already injected")
		}
	}
	var roots corev1.ConfigMap
	err := i.client.Get(ctx, client.ObjectKey{Namespace: i.controlPlane, Name: v1alpha1.DefaultTrustRootsConfigMap}, &roots)
	if apierrors.IsNotFound(err) {
		// Linkerd's injector cannot start without its roots either.
		return admission.Errored(http.StatusServiceUnavailable, fmt.Errorf("stand-in proxy injector: ConfigMap %s/%s not found", i.controlPlane, v1alpha1.DefaultTrustRootsConfigMap))
	}
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, err)
	}
	bundle := roots.Data[v1alpha1.DefaultTrustRootsKey]
	sum := sha256.Sum256([]byte(bundle))
	sidecar := corev1.Container{
		Name:          ProxyContainer,
		Image:         "cr.l5d.io/linkerd/proxy:stand-in",
		RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways),
		Env:           []corev1.EnvVar{{Name: TrustAnchorsEnv, Value: bundle + "\n"}},
	}
	pod.Spec.InitContainers = append([]corev1.Container{sidecar}, pod.Spec.InitContainers...)
	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	pod.Annotations[TrustRootHashAnnotation] = hex.EncodeToString(sum[:])
	if pod.Labels == nil {
		pod.Labels = map[string]string{}
	}
	pod.Labels[ControlPlaneNSLabel] = i.controlPlane
	pod.Labels[WorkloadNSLabel] = req.Namespace
	mutated, err := json.Marshal(&pod)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, err)
	}
	return admission.PatchResponseFromRaw(req.Object.Raw, mutated)
}

// startInjector serves the stand-in injector and registers it as Linkerd
// does, for pods of namespaces labelled linkerd.io/inject=enabled.
func (cp *ControlPlane) startInjector(ctx context.Context, controlPlane string) error {
	return cp.ServeMutatingWebhook(ctx, "linkerd-proxy-injector-webhook-config",
		&injector{client: cp.Client, controlPlane: controlPlane, decoder: admission.NewDecoder(cp.env.Scheme)},
		admissionregistrationv1.MutatingWebhook{
			Name:              "linkerd-proxy-injector.linkerd.io",
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{InjectLabel: "enabled"}},
			Rules:             []admissionregistrationv1.RuleWithOperations{{Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create}, Rule: admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}}}},
		})
}

// ServeMutatingWebhook serves a stand-in's handler on loopback with TLS, as
// the API server calls webhooks, and registers it as the
// MutatingWebhookConfiguration name with webhook's name, selector and rules.
// A test that registers one deletes the configuration when done; the
// server stops with the control plane.
func (cp *ControlPlane) ServeMutatingWebhook(ctx context.Context, name string, handler admission.Handler, webhook admissionregistrationv1.MutatingWebhook) error {
	dir := filepath.Join(cp.Dir, name+"-tls")
	if err := writeServingCert(dir, name); err != nil {
		return err
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"))
	if err != nil {
		return err
	}
	caPEM, err := os.ReadFile(filepath.Join(dir, "tls.crt"))
	if err != nil {
		return err
	}
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/mutate", &admission.Webhook{Handler: handler})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			cp.opts.Logf("%s: %v", name, err)
		}
	}()
	cp.stops = append(cp.stops, func() error { return srv.Close() })
	url := "https://" + l.Addr().(*net.TCPAddr).String() + "/mutate"
	webhook.ClientConfig = admissionregistrationv1.WebhookClientConfig{URL: &url, CABundle: caPEM}
	webhook.FailurePolicy = ptr.To(admissionregistrationv1.Fail)
	webhook.SideEffects = ptr.To(admissionregistrationv1.SideEffectClassNone)
	webhook.AdmissionReviewVersions = []string{"v1"}
	return cp.Client.Create(ctx, &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Webhooks:   []admissionregistrationv1.MutatingWebhook{webhook},
	})
}
