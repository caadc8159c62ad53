package cli

import (
	"context"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/identitycheck"
)

const checkBundleSource = "trust-manager's Bundle takes the rotation's trusted set as its only source"

var bundleGVK = schema.GroupVersionKind{Group: "trust.cert-manager.io", Version: "v1alpha1", Kind: "Bundle"}

// bundleSourceCheck reads the Bundle that writes Linkerd's trust roots
// (trust-manager names the target ConfigMap after the Bundle) for a
// rotating issuer. Any other source (the old guide's anchor Secret, a
// second ConfigMap) drops the old root from Linkerd's trust roots at the
// next rotation, and before that nothing else shows it: the roots match
// until the anchor changes.
func bundleSourceCheck(ctx context.Context, c client.Client, iss v1alpha1.GenericIssuer, trustRoots string) []identitycheck.Result {
	spec := iss.GetSpec().Rotation
	if spec == nil {
		return nil
	}
	trusted := spec.TrustedRootsConfigMapName
	if trusted == "" {
		trusted = v1alpha1.DefaultTrustedRootsConfigMap
	}
	b := &unstructured.Unstructured{}
	b.SetGroupVersionKind(bundleGVK)
	switch err := c.Get(ctx, client.ObjectKey{Name: trustRoots}, b); {
	case meta.IsNoMatchError(err) || apierrors.IsNotFound(err):
		// No trust-manager, or no Bundle of that name: something else
		// writes the roots, and the controller's TrustRootsSynced
		// condition watches what it writes.
		return nil
	case err != nil:
		return []identitycheck.Result{{Name: checkBundleSource, Status: identitycheck.Warn, Detail: fmt.Sprintf("reading Bundle %s: %v", trustRoots, err)}}
	}
	sources, _, _ := unstructured.NestedSlice(b.Object, "spec", "sources")
	var others []string
	ok := false
	for _, s := range sources {
		src, _ := s.(map[string]any)
		cm, _ := src["configMap"].(map[string]any)
		if cm != nil && cm["name"] == trusted && (cm["key"] == v1alpha1.DefaultTrustRootsKey) && len(src) == 1 && !ok {
			ok = true
			continue
		}
		others = append(others, describeSource(src))
	}
	if ok && len(others) == 0 {
		return []identitycheck.Result{{Name: checkBundleSource, Status: identitycheck.Pass}}
	}
	return []identitycheck.Result{{Name: checkBundleSource, Status: identitycheck.Fail,
		Detail: fmt.Sprintf("Bundle %s sources %s; %s %s rotates its root, and only its trusted set keeps the old root trusted through a rotation: make the Bundle's only source ConfigMap %s, key %s (`kubectl patch bundle %s --type merge -p '{\"spec\":{\"sources\":[{\"configMap\":{\"name\":\"%s\",\"key\":\"%s\"}}]}}'`)",
			trustRoots, strings.Join(others, ", "), iss.IssuerKind(), iss.GetName(), trusted, v1alpha1.DefaultTrustRootsKey, trustRoots, trusted, v1alpha1.DefaultTrustRootsKey)}}
}

func describeSource(src map[string]any) string {
	for _, kind := range []string{"configMap", "secret"} {
		if ref, ok := src[kind].(map[string]any); ok {
			return fmt.Sprintf("%s %v key %v", map[string]string{"configMap": "ConfigMap", "secret": "Secret"}[kind], ref["name"], ref["key"])
		}
	}
	switch {
	case src["inLine"] != nil:
		return "certificates inline"
	case src["useDefaultCAs"] != nil:
		return "the default CA package"
	}
	return "no source"
}
