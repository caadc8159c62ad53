// Package cli is the linkerd-ca command: `trust-anchor create` makes a
// trust anchor fit for Linkerd, `check` runs linkerd check's identity checks
// on an identity issuer Secret.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/identitycheck"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/trustanchor"
)

const usage = `linkerd-ca: tools for Linkerd's identity issuer and trust anchor

  linkerd-ca trust-anchor create [flags]   make an ECDSA P-256 root fit for Linkerd
  linkerd-ca check [flags]                 linkerd check's identity checks on an issuer Secret

Run a command with -h for its flags.
`

// Run runs the command line args (without the program name) and returns
// the exit code: 0 done, 1 failed checks or an error, 2 bad usage.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var err error
	switch {
	case len(args) >= 2 && args[0] == "trust-anchor" && args[1] == "create":
		err = createAnchor(ctx, args[2:], stdout)
	case len(args) >= 1 && args[0] == "check":
		err = check(ctx, args[1:], stdout)
	default:
		fmt.Fprint(stderr, usage)
		return 2
	}
	var usageErr usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &usageErr):
		fmt.Fprintln(stderr, "linkerd-ca:", err)
		return 2
	case errors.Is(err, errChecksFailed):
		return 1
	default:
		fmt.Fprintln(stderr, "linkerd-ca:", err)
		return 1
	}
}

type usageError struct{ error }

// parse parses flags; anything but -h is bad usage.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected arguments %v", fs.Args())}
	}
	return nil
}

var errChecksFailed = errors.New("checks failed")

func kubeClient(kubeconfig string) (client.Client, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = kubeconfig
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("loading the kubeconfig: %w", err)
	}
	return client.New(cfg, client.Options{})
}

func createAnchor(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("linkerd-ca trust-anchor create", flag.ContinueOnError)
	cn := fs.String("common-name", trustanchor.DefaultCommonName, "Subject common name of the root.")
	validity := fs.Duration("validity", trustanchor.DefaultValidity, "How long the root is valid.")
	outDir := fs.String("out-dir", "", "Write ca.crt and ca.key (mode 0600) into this directory instead of a Secret.")
	namespace := fs.String("namespace", v1alpha1.DefaultControlPlaneNamespace, "Namespace of the Secret.")
	name := fs.String("name", "linkerd-trust-anchor", "Name of the kubernetes.io/tls Secret.")
	kubeconfig := fs.String("kubeconfig", "", "Path to the kubeconfig (default: $KUBECONFIG or ~/.kube/config).")
	overwrite := fs.Bool("overwrite", false, "Replace an existing trust anchor. Everything it signed stops being trusted: see docs/rotation.md first.")
	if err := parse(fs, args); err != nil {
		return err
	}
	anchor, err := trustanchor.Create(*cn, *validity, time.Now())
	if err != nil {
		return usageError{err}
	}
	const refuse = "%s already holds a trust anchor; replacing it would leave every proxy certificate signed under the old one untrusted. Rotate as docs/rotation.md says, or pass --overwrite if you mean it"

	if *outDir != "" {
		certPath, keyPath := filepath.Join(*outDir, "ca.crt"), filepath.Join(*outDir, "ca.key")
		if !*overwrite {
			for _, p := range []string{certPath, keyPath} {
				if _, err := os.Stat(p); err == nil {
					return fmt.Errorf(refuse, p)
				}
			}
		}
		if err := os.WriteFile(keyPath, anchor.Key, 0o600); err != nil {
			return err
		}
		if err := os.Chmod(keyPath, 0o600); err != nil { // an existing file keeps its mode on write
			return err
		}
		if err := os.WriteFile(certPath, anchor.Certificate, 0o644); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "trust anchor %s written to %s and %s\n", *cn, certPath, keyPath)
		return nil
	}

	c, err := kubeClient(*kubeconfig)
	if err != nil {
		return err
	}
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: *namespace, Name: *name},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{corev1.TLSCertKey: anchor.Certificate, corev1.TLSPrivateKeyKey: anchor.Key},
	}
	err = c.Create(ctx, secret)
	switch {
	case apierrors.IsAlreadyExists(err) && !*overwrite:
		return fmt.Errorf(refuse, "Secret "+*namespace+"/"+*name)
	case apierrors.IsAlreadyExists(err):
		var existing corev1.Secret
		if err := c.Get(ctx, client.ObjectKeyFromObject(secret), &existing); err != nil {
			return err
		}
		existing.Type, existing.Data = secret.Type, secret.Data
		if err := c.Update(ctx, &existing); err != nil {
			return fmt.Errorf("replacing Secret %s/%s: %w", *namespace, *name, err)
		}
	case err != nil:
		return fmt.Errorf("creating Secret %s/%s: %w", *namespace, *name, err)
	}
	fmt.Fprintf(stdout, "trust anchor %s stored in Secret %s/%s (kubernetes.io/tls)\n", *cn, *namespace, *name)
	return nil
}

func check(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("linkerd-ca check", flag.ContinueOnError)
	dir := fs.String("dir", "", "Read ca.crt, tls.crt and tls.key (and ca-bundle.crt if present) from this directory instead of the cluster.")
	namespace := fs.String("namespace", v1alpha1.DefaultControlPlaneNamespace, "Namespace of the Secret and of Linkerd's trust roots ConfigMap.")
	name := fs.String("secret", "linkerd-identity-issuer", "Name of the identity issuer Secret.")
	roots := fs.String("trust-roots-configmap", v1alpha1.DefaultTrustRootsConfigMap, "Linkerd's trust roots ConfigMap (key ca-bundle.crt); checked when it exists.")
	kubeconfig := fs.String("kubeconfig", "", "Path to the kubeconfig (default: $KUBECONFIG or ~/.kube/config).")
	if err := parse(fs, args); err != nil {
		return err
	}
	in := identitycheck.Input{Now: time.Now()}
	if *dir != "" {
		read := func(f string) []byte {
			b, _ := os.ReadFile(filepath.Join(*dir, f)) // a missing file is a failed check
			return b
		}
		in.CACert, in.TLSCert, in.TLSKey, in.TrustRoots = read("ca.crt"), read("tls.crt"), read("tls.key"), read(v1alpha1.DefaultTrustRootsKey)
	} else {
		c, err := kubeClient(*kubeconfig)
		if err != nil {
			return err
		}
		var s corev1.Secret
		if err := c.Get(ctx, client.ObjectKey{Namespace: *namespace, Name: *name}, &s); err != nil {
			return fmt.Errorf("reading Secret %s/%s: %w", *namespace, *name, err)
		}
		in.CACert, in.TLSCert, in.TLSKey = s.Data["ca.crt"], s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey]
		var cm corev1.ConfigMap
		switch err := c.Get(ctx, client.ObjectKey{Namespace: *namespace, Name: *roots}, &cm); {
		case err == nil:
			in.TrustRoots = []byte(cm.Data[v1alpha1.DefaultTrustRootsKey])
		case !apierrors.IsNotFound(err):
			return fmt.Errorf("reading ConfigMap %s/%s: %w", *namespace, *roots, err)
		}
	}
	results := identitycheck.Run(in)
	fmt.Fprintln(stdout, "linkerd-identity")
	fmt.Fprintln(stdout, "----------------")
	for _, r := range results {
		fmt.Fprintln(stdout, r)
	}
	if identitycheck.Failed(results) {
		return errChecksFailed
	}
	return nil
}
