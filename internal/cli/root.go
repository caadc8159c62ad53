// Package cli is the linkerd-ca command, which is also a Linkerd CLI
// extension (`linkerd ca`, and its checks inside `linkerd check`): it makes
// trust anchors and trust-roots manifests fit for Linkerd, and checks an
// identity issuer the way Linkerd does.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/anchorkey"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/version"
)

// Name is the executable's name; Linkerd runs `linkerd-<name>` as
// `linkerd <name>` and checks that _extension-metadata answers with it.
const Name = "linkerd-ca"

// Exit codes: 0 done, 1 failed checks or an error, 2 bad usage; `rotation
// status --watch` adds 3 (past the deadline) and 4 (--timeout).
const (
	exitFailed = 1
	exitUsage  = 2
)

// usageError is a mistake on the command line: exit code 2, with a pointer
// to the help.
type usageError struct{ error }

func usageErrorf(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// errChecksFailed: the check results are already printed; exit 1.
var errChecksFailed = errors.New("checks failed")

// Run runs the command line args (without the program name) and returns
// the exit code.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return execute(ctx, &globals{stdout: stdout, stderr: stderr, now: time.Now}, args)
}

func execute(ctx context.Context, g *globals, args []string) int {
	stdout, stderr := g.stdout, g.stderr
	root := newRoot(g)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	var usage usageError
	var exit exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exit):
		fmt.Fprintf(stderr, "%s: %v\n", Name, err)
		return exit.code
	case errors.Is(err, errChecksFailed):
		return exitFailed
	case errors.As(err, &usage):
		fmt.Fprintf(stderr, "%s: %v\nRun '%s --help' for usage.\n", Name, err, cmd.CommandPath())
		return exitUsage
	default:
		fmt.Fprintf(stderr, "%s: %v\n", Name, err)
		return exitFailed
	}
}

// globals are the flags every command takes: client-go's kubeconfig
// overrides, and the ones Linkerd passes to its extensions.
type globals struct {
	kube             kubeFlags
	linkerdNamespace string
	verbose          bool
	stdout, stderr   io.Writer
	now              func() time.Time
	// keys opens KMS keys (--kms); nil: the built-in providers.
	keys anchorkey.Opener
	// kubeClient is the cluster's client; nil: the kubeconfig's.
	kubeClient func() (client.WithWatch, error)
}

func (g *globals) client() (client.WithWatch, error) {
	if g.kubeClient != nil {
		return g.kubeClient()
	}
	return g.kube.client()
}

func newRoot(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:   Name,
		Short: "Trust anchors, trust roots and checks for Linkerd's identity issuer signed by linkerd-ca-issuer",
		Long: `linkerd-ca makes trust anchors and trust-roots manifests fit for Linkerd, and
checks a Linkerd identity issuer the way ` + "`linkerd check`" + ` does.

Installed on PATH as linkerd-ca, it is also a Linkerd extension: ` + "`linkerd ca …`" + `
runs it, and ` + "`linkerd check`" + ` includes its checks.`,
		Version:       version.String(),
		SilenceErrors: true,
		SilenceUsage:  true,
		Args:          noSubcommand,
		RunE:          func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	root.SetVersionTemplate(Name + " {{.Version}}\n")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	flags := root.PersistentFlags()
	g.kube.bind(flags)
	flags.StringVarP(&g.linkerdNamespace, "linkerd-namespace", "L", defaultLinkerdNamespace(), "Namespace of Linkerd's control plane [$LINKERD_NAMESPACE]")
	flags.BoolVar(&g.verbose, "verbose", false, "Print what is read from the cluster to stderr")

	root.AddCommand(newCheck(g), newTrustAnchor(g), newTrustRoots(g), newRotation(g), newMulticluster(g), newVersion(g), newExtensionMetadata(g))
	return root
}

func defaultLinkerdNamespace() string {
	if ns := os.Getenv("LINKERD_NAMESPACE"); ns != "" {
		return ns
	}
	return v1alpha1.DefaultControlPlaneNamespace
}

// noSubcommand refuses arguments to a command that only groups others, so
// a typo is an error rather than the group's help with exit code 0.
func noSubcommand(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageErrorf("unknown command %q for %q", args[0], cmd.CommandPath())
	}
	return nil
}

// noArgs refuses positional arguments to a command that takes none.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageErrorf("%q takes no arguments, got %q", cmd.CommandPath(), args)
	}
	return nil
}

func newVersion(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of linkerd-ca",
		Args:  noArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := fmt.Fprintf(g.stdout, "%s %s\n", Name, version.String())
			return err
		},
	}
}
