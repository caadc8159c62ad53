package cli

import (
	"fmt"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
)

// kubeFlags are kubectl's: --kubeconfig and client-go's override flags
// (--context, -n/--namespace, --as, --request-timeout, …), plus Linkerd's
// --api-addr.
type kubeFlags struct {
	kubeconfig string
	apiAddr    string
	overrides  clientcmd.ConfigOverrides
}

func (k *kubeFlags) bind(flags *pflag.FlagSet) {
	flags.StringVar(&k.kubeconfig, clientcmd.RecommendedConfigPathFlag, "", "Path to the kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
	clientcmd.BindOverrideFlags(&k.overrides, flags, clientcmd.RecommendedConfigOverrideFlags(""))
	flags.StringVar(&k.apiAddr, "api-addr", "", "Kubernetes API address (host:port) to use instead of the kubeconfig's, as Linkerd's --api-addr")
}

func (k *kubeFlags) clientConfig() clientcmd.ClientConfig {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = k.kubeconfig
	overrides := k.overrides
	if k.apiAddr != "" {
		overrides.ClusterInfo.Server = k.apiAddr
	}
	return clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &overrides)
}

// client is a client for the selected context, knowing cert-manager's and
// this issuer's kinds.
func (k *kubeFlags) client() (client.WithWatch, error) {
	cfg, err := k.clientConfig().ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("loading the kubeconfig: %w", err)
	}
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, cmapi.AddToScheme, v1alpha1.AddToScheme} {
		if err := add(scheme); err != nil {
			return nil, err
		}
	}
	return client.NewWithWatch(cfg, client.Options{Scheme: scheme})
}

// explicitNamespace is -n, else fallback: where a command puts what must
// not land in whatever namespace a kubeconfig context happens to select.
func (k *kubeFlags) explicitNamespace(fallback string) string {
	if k.overrides.Context.Namespace != "" {
		return k.overrides.Context.Namespace
	}
	return fallback
}
