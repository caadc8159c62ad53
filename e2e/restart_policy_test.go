//go:build e2e

package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestRestartPolicyLetsTheControllerOnlyRestart: with restarts on, the
// controller's ServiceAccount may patch every Deployment, StatefulSet and
// DaemonSet; the chart's policy, installed with that grant, lets it change
// nothing in them but its own two pod-template annotations. Its restart
// patch passes; a patch of an image, a service account, a label or the
// replicas is refused at the API server. The same patches by anyone else
// are not its business.
func TestRestartPolicyLetsTheControllerOnlyRestart(t *testing.T) {
	if cp.Existing {
		t.Skip("needs the local control plane's issuer identity")
	}
	t.Parallel()
	const ns = "e2e-restart-policy"
	namespace(t, ns, nil)
	d := deployment(ns, "web", 1)
	create(t, d)
	as, err := client.New(cp.IssuerConfig, client.Options{Scheme: cl.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	patch := func(c client.Client, body string) error {
		return c.Patch(ctx, d.DeepCopy(), client.RawPatch(types.MergePatchType, []byte(body)))
	}
	image := `{"spec":{"template":{"spec":{"containers":[{"name":"app","image":"registry.example/evil:1"}]}}}}`
	// The policy takes effect a moment after it is created.
	eventually(t, 30*time.Second, "the controller's image patch refused", func() error {
		if err := patch(as, image); err == nil || !strings.Contains(err.Error(), "the rotation controller may") {
			return fmt.Errorf("image patch by the controller: %w", err)
		}
		return nil
	})
	for name, body := range map[string]string{
		"a service account":               `{"spec":{"template":{"spec":{"serviceAccountName":"admin"}}}}`,
		"a pod template label":            `{"spec":{"template":{"metadata":{"labels":{"app":"web","extra":"x"}}}}}`,
		"another pod template annotation": `{"spec":{"template":{"metadata":{"annotations":{"linkerdca.io/restarted-for":"AA","sidecar.example/inject":"true"}}}}}`,
		"the replicas":                    `{"spec":{"replicas":5}}`,
		"the workload's own labels":       `{"metadata":{"labels":{"owned":"by-me"}}}`,
	} {
		if err := patch(as, body); err == nil || (!apierrors.IsForbidden(err) && !apierrors.IsInvalid(err)) || !strings.Contains(err.Error(), "the rotation controller may") {
			t.Errorf("%s changed by the controller: %v; want it refused by the policy", name, err)
		}
	}
	// Each kind's policy type-checks against its schema: a field named
	// wrong would be no check at all.
	eventually(t, 30*time.Second, "the restart policies type-checked clean", func() error {
		var policies admissionv1.ValidatingAdmissionPolicyList
		if err := cl.List(ctx, &policies); err != nil {
			return err
		}
		n := 0
		for _, p := range policies.Items {
			if !strings.Contains(p.Name, "-restarts-") {
				continue
			}
			n++
			if p.Status.ObservedGeneration != p.Generation || p.Status.TypeChecking == nil {
				return fmt.Errorf("%s not type-checked yet", p.Name)
			}
			if w := p.Status.TypeChecking.ExpressionWarnings; len(w) > 0 {
				t.Fatalf("%s: %+v", p.Name, w)
			}
		}
		if n != 3 {
			return fmt.Errorf("%d restart policies, want 3", n)
		}
		return nil
	})
	restart := `{"spec":{"template":{"metadata":{"annotations":{"linkerdca.io/restarted-for":"AA:BB","linkerdca.io/restarted-at":"2026-12-07T12:00:00Z"}}}}}`
	if err := patch(as, restart); err != nil {
		t.Errorf("the controller's restart patch: %v; want it to pass", err)
	}
	if err := patch(cl, image); err != nil {
		t.Errorf("an administrator's image patch: %v; the policy binds the controller alone", err)
	}
}
