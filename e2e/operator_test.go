//go:build e2e

package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/cli"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/testing/testpki"
)

func trustRootsConfigMap(ns string, anchors ...*testpki.Anchor) *corev1.ConfigMap {
	var b bytes.Buffer
	for _, a := range anchors {
		b.Write(a.CertPEM)
	}
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "linkerd-identity-trust-roots"},
		Data:       map[string]string{"ca-bundle.crt": b.String()},
	}
}

// assertNeverIssued waits a while and checks that a Certificate got no
// certificate from its requests.
func assertNeverIssued(t *testing.T, ns, name string, wait time.Duration) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		for _, cr := range requestsFor(t, ns, name) {
			if len(cr.Status.Certificate) != 0 {
				t.Fatalf("CertificateRequest %s was signed", cr.Name)
			}
		}
		if _, err := getSecret(t, ns, name); err == nil {
			t.Fatalf("Secret %s/%s was written", ns, name)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// TestTrustAnchorRotation is docs/rotation.md, end to end: an issuer never
// signs with an anchor Linkerd does not trust yet.
func TestTrustAnchorRotation(t *testing.T) {
	old, next := newAnchor(t), newAnchor(t)
	create(t, anchorSecret(nsDrill, "anchor-old", old), anchorSecret(nsDrill, "anchor-new", next))
	roots := trustRootsConfigMap(nsDrill, old)
	create(t, roots)
	iss := linkerdIssuer(nsDrill, "linkerd", "anchor-old")
	create(t, iss)
	waitIssuer(t, iss, metav1.ConditionTrue, "")
	create(t, seedCertificate(nsDrill, "before", iss.Name))
	waitCertificateReady(t, nsDrill, "before", 60*time.Second)
	if s := mustSecret(t, nsDrill, "before"); !bytes.Equal(s.Data["ca.crt"], old.CertPEM) {
		t.Errorf("before the rotation, ca.crt is not the bundle (old root only)")
	}

	// Switch the issuer to the new anchor while Linkerd trusts only the old.
	update(t, iss, func() { iss.Spec.TrustAnchorSecretName = "anchor-new" })
	c := waitIssuer(t, iss, metav1.ConditionFalse, "TrustAnchorNotTrusted: the trust anchor")
	t.Logf("new anchor, old bundle: %s", c.Message)
	eventually(t, 10*time.Second, "condition TrustAnchorTrusted=False", func() error {
		if err := cl.Get(ctx, client.ObjectKeyFromObject(iss), iss); err != nil {
			return err
		}
		tc := meta.FindStatusCondition(iss.Status.Conditions, "TrustAnchorTrusted")
		if tc == nil || tc.Status != metav1.ConditionFalse || tc.Reason != "TrustAnchorNotTrusted" ||
			iss.Status.TrustAnchor == nil || iss.Status.TrustAnchor.TrustedByLinkerd != metav1.ConditionFalse {
			return fmt.Errorf("condition %+v, status.trustAnchor %+v", tc, iss.Status.TrustAnchor)
		}
		return nil
	})
	create(t, seedCertificate(nsDrill, "during", iss.Name))
	assertNeverIssued(t, nsDrill, "during", 5*time.Second)

	// Add the new root to the bundle: the issuer recovers, the waiting
	// request is signed by the new root, and ca.crt carries both roots.
	roots.Data["ca-bundle.crt"] = string(old.CertPEM) + string(next.CertPEM)
	if err := cl.Update(ctx, roots); err != nil {
		t.Fatal(err)
	}
	waitIssuer(t, iss, metav1.ConditionTrue, "")
	waitCertificateReady(t, nsDrill, "during", 60*time.Second)
	s := mustSecret(t, nsDrill, "during")
	if want := append(append([]byte{}, old.CertPEM...), next.CertPEM...); !bytes.Equal(s.Data["ca.crt"], want) {
		t.Errorf("ca.crt does not hold both roots:\n%s", s.Data["ca.crt"])
	}
	issuer, _ := assertLinkerdIdentityChecks(t, s)
	if err := issuer.CheckSignatureFrom(next.Certificate); err != nil {
		t.Errorf("not signed by the new root: %v", err)
	}

	// Retire the old root: issuance goes on under the new one alone.
	roots.Data["ca-bundle.crt"] = string(next.CertPEM)
	if err := cl.Update(ctx, roots); err != nil {
		t.Fatal(err)
	}
	create(t, seedCertificate(nsDrill, "after", iss.Name))
	waitCertificateReady(t, nsDrill, "after", 60*time.Second)
	s = mustSecret(t, nsDrill, "after")
	if !bytes.Equal(s.Data["ca.crt"], next.CertPEM) {
		t.Errorf("after retiring the old root, ca.crt is not the new root alone:\n%s", s.Data["ca.crt"])
	}
	assertLinkerdIdentityChecks(t, s)
	actAsIdentityService(t, s)
	waitIssuer(t, iss, metav1.ConditionTrue, "")
}

// TestMetricsEndpoint scrapes the issuer's metrics endpoint around a signed
// and a refused request.
func TestMetricsEndpoint(t *testing.T) {
	if cp.Existing {
		t.Skip("the installed issuer's metrics endpoint is not reachable from the suite on an existing cluster")
	}
	anchor := newAnchor(t)
	create(t, anchorSecret(nsMetrics, "anchor", anchor))
	iss := linkerdIssuer(nsMetrics, "linkerd", "anchor")
	create(t, iss)
	waitIssuer(t, iss, metav1.ConditionTrue, "")
	labels := map[string]string{"issuer_kind": v1alpha1.IssuerKind, "issuer": nsMetrics + "/linkerd"}
	signedBefore := scrape(t, "linkerd_ca_issuer_requests_signed_total", labels)

	create(t, seedCertificate(nsMetrics, "good", iss.Name))
	waitCertificateReady(t, nsMetrics, "good", 60*time.Second)
	leaf := seedCertificate(nsMetrics, "leaf", iss.Name)
	leaf.Spec.IsCA = false
	create(t, leaf)
	waitRequestFailed(t, nsMetrics, "leaf")

	eventually(t, 10*time.Second, "metrics moved", func() error {
		if got := scrape(t, "linkerd_ca_issuer_requests_signed_total", labels); got < signedBefore+1 {
			return fmt.Errorf("signed %v, want at least %v", got, signedBefore+1)
		}
		refusedIsCA := map[string]string{"issuer_kind": v1alpha1.IssuerKind, "issuer": nsMetrics + "/linkerd", "rule": "isCA"}
		if got := scrape(t, "linkerd_ca_issuer_requests_refused_total", refusedIsCA); got < 1 {
			return fmt.Errorf("refused{rule=isCA} %v", got)
		}
		if got := scrape(t, "linkerd_ca_issuer_trust_anchor_expiry_timestamp_seconds", labels); got != float64(anchor.Certificate.NotAfter.Unix()) {
			return fmt.Errorf("anchor expiry %v, want %d", got, anchor.Certificate.NotAfter.Unix())
		}
		if got := scrape(t, "linkerd_ca_issuer_issued_certificate_expiry_timestamp_seconds", labels); got < float64(time.Now().Add(23*time.Hour).Unix()) {
			return fmt.Errorf("issued expiry %v", got)
		}
		if got := scrape(t, "linkerd_ca_issuer_signing_duration_seconds", map[string]string{"issuer_kind": v1alpha1.IssuerKind}); got < 1 {
			return fmt.Errorf("signing latency histogram has %v observations", got)
		}
		if got := scrape(t, "linkerd_ca_issuer_ready", labels); got != 1 {
			return fmt.Errorf("ready %v, want 1", got)
		}
		return nil
	})

	// The anchor goes: the issuer is not Ready, and the gauge says so.
	if err := cl.Delete(ctx, anchorSecret(nsMetrics, "anchor", anchor)); err != nil {
		t.Fatal(err)
	}
	waitIssuer(t, iss, metav1.ConditionFalse, "not found")
	eventually(t, 10*time.Second, "ready 0", func() error {
		if got, present := scrapeSeries(t, "linkerd_ca_issuer_ready", labels); !present || got != 0 {
			return fmt.Errorf("ready %v (present %v), want 0", got, present)
		}
		return nil
	})
	saveAlertState(t, "not-ready", labels, sample("linkerd_ca_issuer_ready", "0"))

	// A deleted issuer takes its series with it.
	if err := cl.Delete(ctx, iss); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the deleted issuer's series gone", func() error {
		for _, name := range []string{"linkerd_ca_issuer_requests_signed_total", "linkerd_ca_issuer_trust_anchor_expiry_timestamp_seconds", "linkerd_ca_issuer_issued_certificate_expiry_timestamp_seconds", "linkerd_ca_issuer_ready"} {
			if got, present := scrapeSeries(t, name, labels); present {
				return fmt.Errorf("%s is still %v", name, got)
			}
		}
		return nil
	})
}

// scrape reads one series from the issuer's metrics endpoint (a histogram's
// sample count); 0 when absent.
func scrape(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	v, _ := scrapeSeries(t, name, labels)
	return v
}

// scrapeSeries is scrape, and whether the series exists.
func scrapeSeries(t *testing.T, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	f, ok := issuerMetrics(t)[name]
	if !ok {
		return 0, false
	}
	for _, m := range f.GetMetric() {
		if matches(m, labels) {
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue(), true
			case m.Gauge != nil:
				return m.Gauge.GetValue(), true
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount()), true
			}
		}
	}
	return 0, false
}

// issuerMetrics is what the issuer's metrics endpoint serves now.
func issuerMetrics(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + cp.IssuerMetricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return families
}

func matches(m *dto.Metric, labels map[string]string) bool {
	if len(m.GetLabel()) != len(labels) {
		return false
	}
	for _, l := range m.GetLabel() {
		if labels[l.GetName()] != l.GetValue() {
			return false
		}
	}
	return true
}

// TestExpiringAnchorWarning: an anchor within linkerd check's 60 days shows
// in the issuer's status and as a Warning event, and still signs.
func TestExpiringAnchorWarning(t *testing.T) {
	anchor, err := testpki.NewAnchor(time.Now().Add(-time.Hour), time.Now().Add(30*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	create(t, anchorSecret(nsMetrics, "expiring", anchor))
	iss := linkerdIssuer(nsMetrics, "expiring", "expiring")
	create(t, iss)
	waitIssuer(t, iss, metav1.ConditionTrue, "")
	eventually(t, 30*time.Second, "status.trustAnchor.expiringSoon and a TrustAnchorExpiring event", func() error {
		if err := cl.Get(ctx, client.ObjectKeyFromObject(iss), iss); err != nil {
			return err
		}
		st := iss.Status.TrustAnchor
		if st == nil || !st.ExpiringSoon || !st.NotAfter.Time.Equal(anchor.Certificate.NotAfter) || !strings.Contains(st.SHA256Fingerprint, ":") {
			return fmt.Errorf("status.trustAnchor %+v", st)
		}
		var list eventsv1.EventList
		if err := cl.List(ctx, &list, client.InNamespace(nsMetrics)); err != nil {
			return err
		}
		for _, e := range list.Items {
			if e.Regarding.Name == iss.Name && e.Regarding.Kind == v1alpha1.IssuerKind && e.Reason == "TrustAnchorExpiring" && e.Type == corev1.EventTypeWarning {
				return nil
			}
		}
		return fmt.Errorf("no TrustAnchorExpiring event among %d", len(list.Items))
	})
	saveAlertState(t, "anchor-expiring", map[string]string{"issuer_kind": v1alpha1.IssuerKind, "issuer": nsMetrics + "/expiring"},
		sample("linkerd_ca_issuer_ready", "1"))
	crt := seedCertificate(nsMetrics, "under-expiring", iss.Name)
	create(t, crt)
	waitCertificateReady(t, nsMetrics, crt.Name, 60*time.Second)
	var got cmapi.Certificate
	if err := cl.Get(ctx, client.ObjectKeyFromObject(crt), &got); err != nil {
		t.Fatal(err)
	}
	if c := certificateCondition(&got, cmapi.CertificateConditionReady); c == nil || c.Status != cmmeta.ConditionTrue {
		t.Errorf("Certificate under an expiring anchor not Ready: %+v", c)
	}
}

// TestCLI: linkerd-ca against the cluster — the trust anchor it creates
// issues through a LinkerdCAIssuer, it refuses to overwrite that anchor, and
// its check passes on the result, trust roots included.
func TestCLI(t *testing.T) {
	linkerdCA := func(args ...string) (int, string) {
		var out, errOut bytes.Buffer
		code := cli.Run(ctx, append(args, "--kubeconfig", cp.AdminKubeconfig, "-n", nsMetrics, "-L", nsMetrics), &out, &errOut)
		return code, out.String() + errOut.String()
	}
	if code, out := linkerdCA("trust-anchor", "create", "--name", "cli-anchor"); code != 0 {
		t.Fatalf("trust-anchor create: %d %s", code, out)
	}
	t.Cleanup(func() {
		_ = cl.Delete(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: nsMetrics, Name: "cli-anchor"}})
	})
	before := mustSecret(t, nsMetrics, "cli-anchor")
	if before.Type != corev1.SecretTypeTLS {
		t.Errorf("Secret type %s", before.Type)
	}
	if code, out := linkerdCA("trust-anchor", "create", "--name", "cli-anchor"); code != 1 || !strings.Contains(out, "already holds a trust anchor") {
		t.Errorf("second create: %d %s", code, out)
	}
	if after := mustSecret(t, nsMetrics, "cli-anchor"); !bytes.Equal(before.Data["tls.crt"], after.Data["tls.crt"]) {
		t.Error("the refused create replaced the anchor")
	}
	create(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: nsMetrics, Name: "cli-opaque"}, Data: map[string][]byte{"x": []byte("y")}})
	if code, out := linkerdCA("trust-anchor", "create", "--name", "cli-opaque", "--overwrite"); code != 1 || !strings.Contains(out, "is of type Opaque and a Secret's type cannot change") {
		t.Errorf("--overwrite of an Opaque Secret: %d %s", code, out)
	}

	roots := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: nsMetrics, Name: "linkerd-identity-trust-roots"},
		Data:       map[string]string{"ca-bundle.crt": string(before.Data["tls.crt"])},
	}
	create(t, roots)
	iss := linkerdIssuer(nsMetrics, "cli", "cli-anchor")
	create(t, iss)
	waitIssuer(t, iss, metav1.ConditionTrue, "")
	create(t, seedCertificate(nsMetrics, "cli-issued", iss.Name))
	waitCertificateReady(t, nsMetrics, "cli-issued", 60*time.Second)
	code, out := linkerdCA("check", "--secret", "cli-issued")
	for _, want := range []string{"√ issuer cert chains to Linkerd's trust roots", "√ issuer can sign a proxy certificate",
		"√ the identity issuer Certificate is Ready", "√ the identity issuer's LinkerdCA issuer is Ready",
		"√ the issuer signs only under roots Linkerd trusts"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("check: %d, no %q in\n%s", code, want, out)
		}
	}

	t.Run("--context picks a context of one kubeconfig", func(t *testing.T) {
		// The kubeconfig's current context points where nothing listens;
		// --context reaches the cluster through the other one.
		cfg, err := clientcmd.LoadFromFile(cp.AdminKubeconfig)
		if err != nil {
			t.Fatal(err)
		}
		here := cfg.Contexts[cfg.CurrentContext].DeepCopy()
		here.Namespace = nsMetrics
		cfg.Clusters["nowhere"] = &clientcmdapi.Cluster{Server: "https://127.0.0.1:1"}
		cfg.Contexts["nowhere"] = &clientcmdapi.Context{Cluster: "nowhere", AuthInfo: here.AuthInfo}
		cfg.Contexts["here"] = here
		cfg.CurrentContext = "nowhere"
		path := filepath.Join(t.TempDir(), "two-contexts")
		if err := clientcmd.WriteToFile(*cfg, path); err != nil {
			t.Fatal(err)
		}
		run := func(args ...string) (int, string) {
			var out, errOut bytes.Buffer
			code := cli.Run(ctx, append(args, "--kubeconfig", path, "-L", nsMetrics, "--request-timeout", "5s"), &out, &errOut)
			return code, out.String() + errOut.String()
		}
		if code, out := run("check", "--secret", "cli-issued"); code != 1 || !strings.Contains(out, "127.0.0.1:1") {
			t.Errorf("current context (nowhere): %d\n%s", code, out)
		}
		if code, out := run("check", "--secret", "cli-issued", "--context", "here"); code != 0 || !strings.Contains(out, "√ the identity issuer's LinkerdCA issuer is Ready") {
			t.Errorf("--context here: %d\n%s", code, out)
		}
		// Without -n trust-anchor create stores in the Linkerd namespace
		// (-L), never the context's.
		if code, out := run("trust-anchor", "create", "--context", "here", "--name", "cli-context-anchor"); code != 0 {
			t.Errorf("trust-anchor create --context here: %d %s", code, out)
		}
		mustSecret(t, nsMetrics, "cli-context-anchor")
	})
}
