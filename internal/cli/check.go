package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/identitycheck"
)

// The check descriptions this command adds to identitycheck's, which are
// linkerd check's own.
const (
	checkCertificateReady = "the identity issuer Certificate is Ready"
	checkIssuerReady      = "the identity issuer's LinkerdCA issuer is Ready"
	checkSecretReadable   = "can read the identity issuer Secret"
	checkInstalled        = "linkerd-ca-issuer's API is served"
	checkExternalIssuer   = "the identity issuer is an external one (kubernetes.io/tls)"
	checkTrustRootsExist  = "Linkerd's trust roots ConfigMap exists"
	checkTrustGate        = "the issuer signs only under roots Linkerd trusts"
)

type checkCmd struct {
	dir        string
	secret     string
	trustRoots string
	output     string
	// Accepted because Linkerd passes them to every extension's check;
	// none changes what is checked here (see the flags' help).
	pre, proxy bool
	wait       time.Duration
}

func newCheck(g *globals) *cobra.Command {
	o := &checkCmd{}
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Check Linkerd's identity issuer as `linkerd check` does, and the issuer that signs it",
		Long: `Check the identity issuer Secret (linkerd-identity-issuer in the Linkerd
namespace) with linkerd check's identity checks, that it chains to Linkerd's
trust roots, that it can sign a proxy certificate, and that the cert-manager
Certificate and LinkerdCA issuer behind it are Ready.

linkerd check runs this command (with -o json) when linkerd-ca is on PATH.
Exit code 0 when no check fails (warnings do not), 1 otherwise.`,
		Example: `  linkerd-ca check
  linkerd-ca check --context prod-east -o short
  linkerd-ca check --dir ./issuer   # ca.crt, tls.crt, tls.key (and ca-bundle.crt) from files`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return o.run(cmd.Context(), g) },
		// Linkerd asks extensions to ignore flags they do not know, so that
		// a newer linkerd check can call an older linkerd-ca.
		FParseErrWhitelist: cobra.FParseErrWhitelist{UnknownFlags: true},
	}
	f := cmd.Flags()
	f.StringVarP(&o.output, "output", "o", outputTable, "Output format: table, short (only what is not √) or json (linkerd check's)")
	f.StringVar(&o.dir, "dir", "", "Read ca.crt, tls.crt and tls.key (and ca-bundle.crt if present) from this directory instead of the cluster")
	f.StringVar(&o.secret, "secret", "linkerd-identity-issuer", "Name of the identity issuer Secret")
	f.StringVar(&o.trustRoots, "trust-roots-configmap", v1alpha1.DefaultTrustRootsConfigMap, "Linkerd's trust roots ConfigMap (key ca-bundle.crt)")
	f.BoolVar(&o.pre, "pre", false, "Accepted for linkerd check --pre; the same checks run, since Linkerd's install needs the issuer Secret first")
	f.BoolVar(&o.proxy, "proxy", false, "Accepted for linkerd check --proxy; this extension has no data-plane checks, so none run")
	f.DurationVar(&o.wait, "wait", 5*time.Minute, "Accepted for linkerd check --wait; every check here runs once")
	// -n is the global kubeconfig override; linkerd check passes it for
	// --proxy checks, which this extension has none of.
	return cmd
}

func (o *checkCmd) run(ctx context.Context, g *globals) error {
	if o.output != outputTable && o.output != outputShort && o.output != outputJSON {
		return usageErrorf("--output %q: use table, short or json", o.output)
	}
	var results []identitycheck.Result
	if !o.proxy {
		results = o.gather(ctx, g)
	}
	if err := printResults(g.stdout, o.output, results); err != nil {
		return err
	}
	if identitycheck.Failed(results) {
		return errChecksFailed
	}
	return nil
}

func (o *checkCmd) gather(ctx context.Context, g *globals) []identitycheck.Result {
	in := identitycheck.Input{Now: g.now()}
	if o.dir != "" {
		read := func(f string) []byte {
			b, _ := os.ReadFile(filepath.Join(o.dir, f)) // a missing file is a failed check
			return b
		}
		in.CACert, in.TLSCert, in.TLSKey, in.TrustRoots = read("ca.crt"), read("tls.crt"), read("tls.key"), read(v1alpha1.DefaultTrustRootsKey)
		_, err := os.Stat(filepath.Join(o.dir, v1alpha1.DefaultTrustRootsKey))
		in.TrustRootsFound = err == nil
		return identitycheck.Run(in)
	}

	ns := g.linkerdNamespace
	c, err := g.client()
	if err != nil {
		return []identitycheck.Result{{Name: checkSecretReadable, Status: identitycheck.Fail, Detail: err.Error()}}
	}
	// linkerd check runs this extension on every cluster, so a cluster
	// without this issuer, or whose Linkerd makes its own issuer, gets a
	// warning that says so rather than failed checks.
	switch _, err := c.RESTMapper().RESTMapping(v1alpha1.GroupVersion.WithKind(v1alpha1.IssuerKind).GroupKind(), v1alpha1.GroupVersion.Version); {
	case meta.IsNoMatchError(err):
		return []identitycheck.Result{{Name: checkInstalled, Status: identitycheck.Warn,
			Detail: fmt.Sprintf("no %s API in this cluster, so nothing of linkerd-ca-issuer's to check; install it to have cert-manager sign Linkerd's identity issuer", v1alpha1.GroupVersion)}}
	case err != nil:
		return []identitycheck.Result{{Name: checkInstalled, Status: identitycheck.Fail, Detail: fmt.Sprintf("discovering the %s API: %v", v1alpha1.GroupVersion, err)}}
	}
	if g.verbose {
		fmt.Fprintf(g.stderr, "reading Secret %s/%s, ConfigMap %s/%s and the Certificate writing the Secret\n", ns, o.secret, ns, o.trustRoots)
	}
	var s corev1.Secret
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: o.secret}, &s); err != nil {
		return []identitycheck.Result{{Name: checkSecretReadable, Status: identitycheck.Fail, Detail: fmt.Sprintf("reading Secret %s/%s: %v", ns, o.secret, err)}}
	}
	if _, ok := s.Data["ca.crt"]; !ok && len(s.Data["crt.pem"]) > 0 {
		return []identitycheck.Result{{Name: checkExternalIssuer, Status: identitycheck.Warn,
			Detail: fmt.Sprintf("Secret %s/%s holds crt.pem and key.pem: Linkerd makes its own issuer here (scheme linkerd.io/tls), which linkerd check's own identity checks cover", ns, o.secret)}}
	}
	results := issuerReady(ctx, c, ns, o.secret, o.trustRoots)
	in.CACert, in.TLSCert, in.TLSKey = s.Data["ca.crt"], s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey]
	var cm corev1.ConfigMap
	switch err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: o.trustRoots}, &cm); {
	case err == nil:
		in.TrustRoots, in.TrustRootsFound = []byte(cm.Data[v1alpha1.DefaultTrustRootsKey]), true
		results = append(results, identitycheck.Result{Name: checkTrustRootsExist, Status: identitycheck.Pass})
	case apierrors.IsNotFound(err):
		results = append(results, identitycheck.Result{Name: checkTrustRootsExist, Status: identitycheck.Warn,
			Detail: fmt.Sprintf("ConfigMap %s/%s not found: Linkerd 2.11+ reads its trust roots from it; publish them with trust-manager or `linkerd-ca trust-roots render`", ns, o.trustRoots)})
	default:
		results = append(results, identitycheck.Result{Name: checkTrustRootsExist, Status: identitycheck.Fail, Detail: fmt.Sprintf("reading ConfigMap %s/%s: %v", ns, o.trustRoots, err)})
	}
	return append(results, identitycheck.Run(in)...)
}

// issuerReady checks the cert-manager Certificate that writes the Secret and
// the LinkerdCA issuer it names. A Secret this issuer does not sign is a
// warning, not a failure: Linkerd works with any valid issuer.
func issuerReady(ctx context.Context, c client.Client, ns, secret, trustRoots string) []identitycheck.Result {
	fail := func(name string, format string, args ...any) []identitycheck.Result {
		return []identitycheck.Result{{Name: name, Status: identitycheck.Fail, Detail: fmt.Sprintf(format, args...)}}
	}
	var certs cmapi.CertificateList
	if err := c.List(ctx, &certs, client.InNamespace(ns)); err != nil {
		return fail(checkCertificateReady, "listing cert-manager Certificates in %s: %v", ns, err)
	}
	var cert *cmapi.Certificate
	for i := range certs.Items {
		if certs.Items[i].Spec.SecretName == secret {
			cert = &certs.Items[i]
		}
	}
	if cert == nil {
		return []identitycheck.Result{{Name: checkCertificateReady, Status: identitycheck.Warn,
			Detail: fmt.Sprintf("no cert-manager Certificate in %s writes Secret %s, so nothing renews it", ns, secret)}}
	}
	var results []identitycheck.Result
	if ready := certificateReady(cert); ready == "" {
		results = append(results, identitycheck.Result{Name: checkCertificateReady, Status: identitycheck.Pass})
	} else {
		results = append(results, identitycheck.Result{Name: checkCertificateReady, Status: identitycheck.Fail,
			Detail: fmt.Sprintf("Certificate %s/%s: %s", ns, cert.Name, ready)})
	}
	return append(results, linkerdCAIssuerReady(ctx, c, ns, cert.Spec.IssuerRef, trustRoots)...)
}

func linkerdCAIssuerReady(ctx context.Context, c client.Client, ns string, ref cmmeta.IssuerReference, trustRoots string) []identitycheck.Result {
	iss := v1alpha1.NewIssuerOfKind(ref.Kind)
	if ref.Group != v1alpha1.GroupVersion.Group || iss == nil {
		return []identitycheck.Result{{Name: checkIssuerReady, Status: identitycheck.Warn,
			Detail: fmt.Sprintf("the Certificate names %s %q of group %q, not a LinkerdCA issuer, so its policy does not guard this Secret", ref.Kind, ref.Name, ref.Group)}}
	}
	key := client.ObjectKey{Name: ref.Name}
	if !iss.IsClusterScoped() {
		key.Namespace = ns
	}
	if err := c.Get(ctx, key, iss); err != nil {
		return []identitycheck.Result{{Name: checkIssuerReady, Status: identitycheck.Fail, Detail: fmt.Sprintf("reading %s %s: %v", iss.IssuerKind(), key, err)}}
	}
	ready := identitycheck.Result{Name: checkIssuerReady, Status: identitycheck.Pass}
	switch cond := meta.FindStatusCondition(iss.GetStatus().Conditions, "Ready"); {
	case cond == nil:
		return []identitycheck.Result{{Name: checkIssuerReady, Status: identitycheck.Fail, Detail: fmt.Sprintf("%s %s has no Ready condition yet: is linkerd-ca-issuer running?", iss.IssuerKind(), key)}}
	case cond.Status != metav1.ConditionTrue:
		ready = identitycheck.Result{Name: checkIssuerReady, Status: identitycheck.Fail, Detail: fmt.Sprintf("%s %s: %s: %s", iss.IssuerKind(), key, cond.Reason, cond.Message)}
	}
	results := append([]identitycheck.Result{ready, trustGate(iss, key)}, kmsCheck(iss, key)...)
	results = append(results, rotationCheck(iss, key, time.Now())...)
	return append(results, bundleSourceCheck(ctx, c, iss, trustRoots)...)
}

// trustGate warns when the issuer signs without checking its anchor against
// Linkerd's trust roots: turned off, or fallen open because the ConfigMap it
// names does not exist (a typo in spec.trustRoots.configMapName looks so).
func trustGate(iss v1alpha1.GenericIssuer, key client.ObjectKey) identitycheck.Result {
	cond := meta.FindStatusCondition(iss.GetStatus().Conditions, v1alpha1.ConditionTrustAnchorTrusted)
	switch {
	case cond == nil:
		return identitycheck.Result{Name: checkTrustGate, Status: identitycheck.Warn, Detail: fmt.Sprintf("%s %s has no %s condition yet", iss.IssuerKind(), key, v1alpha1.ConditionTrustAnchorTrusted)}
	case cond.Status == metav1.ConditionTrue:
		return identitycheck.Result{Name: checkTrustGate, Status: identitycheck.Pass}
	}
	return identitycheck.Result{Name: checkTrustGate, Status: identitycheck.Warn, Detail: fmt.Sprintf("%s %s: %s: %s", iss.IssuerKind(), key, cond.Reason, cond.Message)}
}

// certificateReady is "" for a Ready Certificate, else why not.
func certificateReady(cert *cmapi.Certificate) string {
	for _, cond := range cert.Status.Conditions {
		if cond.Type == cmapi.CertificateConditionReady {
			if cond.Status == cmmeta.ConditionTrue {
				return ""
			}
			return cond.Reason + ": " + cond.Message
		}
	}
	return "no Ready condition yet"
}
