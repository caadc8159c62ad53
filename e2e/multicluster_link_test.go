//go:build e2e

package e2e

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/cli"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/peers"
)

// TestMulticlusterLinkCanOnlyRead: `linkerd-ca multicluster link` makes
// the reader and prints a link Secret whose kubeconfig reaches the API
// server and reads an issuer; the reader's credentials are allowed get on
// the issuers and Linkerd's trust roots and nothing else, as the API
// server's own SubjectAccessReview answers, verb by verb.
func TestMulticlusterLinkCanOnlyRead(t *testing.T) {
	if cp.Existing {
		t.Skip("makes a ServiceAccount and ClusterRole on the local control plane")
	}
	var out, errOut bytes.Buffer
	if code := cli.Run(ctx, []string{"multicluster", "link", "--cluster-name", "east", "--service-account-namespace", nsCluster,
		"--kubeconfig", cp.AdminKubeconfig}, &out, &errOut); code != 0 {
		t.Fatalf("linkerd-ca multicluster link: exit %d\n%s", code, errOut.String())
	}
	if !strings.Contains(errOut.String(), "kubeconfigSecretName: linkerd-ca-peer-east") {
		t.Errorf("it does not say what to name in spec.rotation.peers:\n%s", errOut.String())
	}
	var secret corev1.Secret
	if err := yaml.Unmarshal(out.Bytes(), &secret); err != nil {
		t.Fatalf("the link Secret does not parse: %v\n%s", err, out.String())
	}
	if secret.Name != "linkerd-ca-peer-east" || secret.Namespace != "cert-manager" || len(secret.Data[peers.KubeconfigKey]) == 0 {
		t.Fatalf("link Secret %s/%s with keys %v", secret.Namespace, secret.Name, keys(secret.Data))
	}
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, v1alpha1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	peer, err := peers.Connect(secret.Data[peers.KubeconfigKey], scheme)
	if err != nil {
		t.Fatal(err)
	}
	// An issuer of its own: the one it reads, and would write.
	iss := linkerdIssuer(nsMetrics, "e2e-link", "anchor")
	create(t, iss)
	eventually(t, 10*time.Second, "the issuer read through the link", func() error {
		return peer.Get(ctx, client.ObjectKeyFromObject(iss), &v1alpha1.LinkerdCAIssuer{})
	})
	writer, ok := peer.(client.Client)
	if !ok {
		t.Fatalf("peers.Connect returned %T", peer)
	}
	got := &v1alpha1.LinkerdCAIssuer{}
	if err := peer.Get(ctx, client.ObjectKeyFromObject(iss), got); err != nil {
		t.Fatal(err)
	}
	got.Spec.TrustAnchorSecretName = "mine"
	if err := writer.Update(ctx, got); !apierrors.IsForbidden(err) {
		t.Errorf("an update through the link: %v, want Forbidden", err)
	}
	user := fmt.Sprintf("system:serviceaccount:%s:linkerd-ca-issuer-peer-reader", nsCluster)
	for _, tc := range []struct {
		group, resource, sub, name, verb string
		allowed                          bool
	}{
		{"linkerdca.io", "linkerdcaissuers", "", "e2e-link", "get", true},
		{"linkerdca.io", "linkerdcaclusterissuers", "", "linkerd", "get", true},
		{"", "configmaps", "", "linkerd-identity-trust-roots", "get", true},
		{"", "configmaps", "", "linkerd-trusted-roots", "get", false},
		{"", "secrets", "", "linkerd-trust-anchor", "get", false},
		{"linkerdca.io", "linkerdcaclusterissuers", "", "", "list", false},
	} {
		for _, verb := range []string{tc.verb, "create", "update", "patch", "delete"} {
			want := tc.allowed && verb == tc.verb
			sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{User: user, ResourceAttributes: &authorizationv1.ResourceAttributes{
				Namespace: nsMetrics, Group: tc.group, Resource: tc.resource, Subresource: tc.sub, Name: tc.name, Verb: verb}}}
			if err := cl.Create(ctx, sar); err != nil {
				t.Fatal(err)
			}
			if sar.Status.Allowed != want {
				t.Errorf("%s %s/%s %q: allowed %v, want %v", verb, tc.group, tc.resource, tc.name, sar.Status.Allowed, want)
			}
		}
		for _, verb := range []string{"update", "patch"} {
			sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{User: user, ResourceAttributes: &authorizationv1.ResourceAttributes{
				Namespace: nsMetrics, Group: "linkerdca.io", Resource: "linkerdcaissuers", Subresource: "status", Name: "e2e-link", Verb: verb}}}
			if err := cl.Create(ctx, sar); err != nil {
				t.Fatal(err)
			}
			if sar.Status.Allowed {
				t.Errorf("%s on an issuer's status allowed through the link", verb)
			}
		}
	}
}
