//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/rotator"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/testing/localcp"
)

// killer SIGKILLs the issuer just before one of the rotation's writes
// reaches storage, once per kind of write and phase: the trusted set, the
// status, the identity issuer's re-issue and a workload's restart. It sits
// where the writes go, as an admission webhook of the real API server, so
// the issuer's binary runs unchanged: the write it was making is refused,
// the process is gone, and it is started again, as a kubelet would.
//
// It also checks the first rotation status the restarted issuer writes: a
// rotation never goes back (Switching to Propagating, a new root to the
// old), whatever it lost.
type killer struct {
	m        *rotationMesh
	mu       sync.Mutex
	seen     map[string]bool
	kills    []string
	checking string // the kill whose restart's first status is not yet seen
	wrong    []string
	down     bool
	restarts sync.WaitGroup
	stopped  sync.Once
}

const killerWebhook = "e2e-rotation-killer"

func startKiller(t *testing.T, m *rotationMesh) *killer {
	t.Helper()
	k := &killer{m: m, seen: map[string]bool{}}
	ops := []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update}
	rule := func(group string, resources ...string) admissionregistrationv1.RuleWithOperations {
		return admissionregistrationv1.RuleWithOperations{Operations: ops,
			Rule: admissionregistrationv1.Rule{APIGroups: []string{group}, APIVersions: []string{"*"}, Resources: resources}}
	}
	err := cp.ServeMutatingWebhook(ctx, killerWebhook, k, admissionregistrationv1.MutatingWebhook{
		Name: "killer.e2e.linkerdca.io",
		Rules: []admissionregistrationv1.RuleWithOperations{rule("", "configmaps"), rule(v1alpha1.GroupVersion.Group, "linkerdcaclusterissuers/status"),
			rule("cert-manager.io", "certificates/status"), rule("apps", "deployments")},
		MatchConditions: []admissionregistrationv1.MatchCondition{{Name: "the-issuer", Expression: fmt.Sprintf("request.userInfo.username == %q", localcp.IssuerUser)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	// However the test ends, nothing is killed after it.
	t.Cleanup(func() { k.stop(t) })
	return k
}

// stop unregisters the webhook and waits for a restart in flight; once.
func (k *killer) stop(t *testing.T) {
	t.Helper()
	k.stopped.Do(func() {
		if err := cl.Delete(ctx, &admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: killerWebhook}}); err != nil {
			t.Error(err)
		}
		k.restarts.Wait()
	})
}

func (k *killer) Handle(_ context.Context, req admission.Request) admission.Response {
	what, statusFrom, statusTo := k.classify(req)
	if what == "" {
		return admission.Allowed("")
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if statusTo != "" && k.checking != "" && !k.down {
		// The restarted issuer's first status.
		if phaseOrder(statusFrom, statusTo) < phaseOrder("", statusFrom) {
			k.wrong = append(k.wrong, fmt.Sprintf("after the kill before %s: status %s → %s", k.checking, statusFrom, statusTo))
		}
		k.checking = ""
	}
	if k.seen[what] {
		return admission.Allowed("")
	}
	if k.down {
		// The restarted process writes before StartIssuer returns: a kind
		// of write not yet killed before is refused, not let through
		// unkilled, and the controller makes it again (a failed write
		// is requeued), to be killed before then.
		return admission.Denied("the e2e suite is restarting the issuer; write again")
	}
	k.seen[what], k.down, k.checking = true, true, what
	k.kills = append(k.kills, what)
	if err := cp.StopIssuer("issuer", syscall.SIGKILL); err != nil {
		k.wrong = append(k.wrong, fmt.Sprintf("killing before %s: %v", what, err))
	}
	k.restarts.Add(1)
	go func() {
		defer k.restarts.Done()
		err := cp.StartIssuer(context.Background(), "issuer")
		k.mu.Lock()
		defer k.mu.Unlock()
		k.down = false
		if err != nil {
			k.wrong = append(k.wrong, fmt.Sprintf("restarting after the kill before %s: %v", what, err))
		}
	}()
	return admission.Denied("SIGKILLed before this write by the e2e suite")
}

// classify names a write of the mesh's rotation, "" for any other; for a
// rotation status write, the phases it goes from and to.
func (k *killer) classify(req admission.Request) (what, from, to string) {
	switch req.Resource.Resource {
	case "configmaps":
		if req.Namespace != nsCluster || req.Name != rotationTrusted {
			return "", "", ""
		}
		return fmt.Sprintf("the trusted set's write (%s → %s)", recordPhase(req.OldObject.Raw), recordPhase(req.Object.Raw)), "", ""
	case "linkerdcaclusterissuers":
		var opts metav1.PatchOptions
		_ = json.Unmarshal(req.Options.Raw, &opts)
		if req.Name != rotationIssuer || opts.FieldManager != rotator.FieldOwner {
			return "", "", ""
		}
		from, to = statusPhase(req.OldObject.Raw), statusPhase(req.Object.Raw)
		return fmt.Sprintf("the status write (%s → %s)", from, to), from, to
	case "certificates":
		if req.Namespace != nsMesh {
			return "", "", ""
		}
		return "the re-issue (in " + k.storedPhase() + ")", "", ""
	case "deployments":
		if req.Operation != admissionv1.Update || (req.Namespace != nsMesh && !strings.HasPrefix(req.Namespace, "e2e-mesh-apps-")) {
			return "", "", ""
		}
		return "a restart (in " + k.storedPhase() + ")", "", ""
	}
	return "", "", ""
}

func (k *killer) storedPhase() string {
	var iss v1alpha1.LinkerdCAClusterIssuer
	if err := cl.Get(ctx, client.ObjectKey{Name: rotationIssuer}, &iss); err != nil || iss.Status.Rotation == nil {
		return "?"
	}
	return string(iss.Status.Rotation.Phase)
}

func recordPhase(raw []byte) string {
	var cm corev1.ConfigMap
	if len(raw) == 0 || json.Unmarshal(raw, &cm) != nil {
		return "none"
	}
	var st v1alpha1.RotationStatus
	if json.Unmarshal([]byte(cm.Annotations[rotator.RecordAnnotation]), &st) != nil {
		return "none"
	}
	return string(st.Phase)
}

func statusPhase(raw []byte) string {
	var iss v1alpha1.LinkerdCAClusterIssuer
	if len(raw) == 0 || json.Unmarshal(raw, &iss) != nil || iss.Status.Rotation == nil {
		return "none"
	}
	return string(iss.Status.Rotation.Phase)
}

// phaseOrder ranks the phases of one rotation from a Stable start: Stable
// after Switching or Draining is its end.
func phaseOrder(from, phase string) int {
	if phase == "Stable" && (from == "Switching" || from == "Draining") {
		return 4
	}
	return map[string]int{"none": 0, "Stable": 0, "Propagating": 1, "Held": 1, "Switching": 2, "Draining": 3}[phase]
}

// report fails t for every regression seen, and checks that the kills
// covered each kind of write the rotation makes, in the phases that make it.
func (k *killer) report(t *testing.T, must ...string) {
	t.Helper()
	k.mu.Lock()
	defer k.mu.Unlock()
	t.Logf("SIGKILLed %d times, each before: %s", len(k.kills), strings.Join(k.kills, "; "))
	for _, w := range k.wrong {
		t.Error(w)
	}
	for _, want := range must {
		if !k.seen[want] {
			t.Errorf("never killed before %s", want)
		}
	}
}

// waitKilledThrough waits for a rotation under kills to end Stable under
// root, a restart in flight included.
func (k *killer) waitStable(t *testing.T, root string) {
	t.Helper()
	start := time.Now()
	eventually(t, 5*time.Minute, "the rotation Stable under the new root, through every kill", func() error {
		st := k.m.status(t)
		if st.Phase != v1alpha1.RotationStable || st.SigningRoot != root {
			return fmt.Errorf("phase %s under %s: %s", st.Phase, short(st.SigningRoot), st.Message)
		}
		return nil
	})
	t.Logf("Stable under the new root %s after the rotation started, through the kills", time.Since(start).Round(time.Millisecond))
}

// killedBefore are the writes a rotation with restarts makes whatever its
// timing, each of which the kills must have come before once.
var killedBefore = []string{
	"the trusted set's write (Stable → Propagating)",
	"the status write (Stable → Propagating)",
	"a restart (in Propagating)",
	"the trusted set's write (Propagating → Switching)",
	"the status write (Propagating → Switching)",
	"the re-issue (in Switching)",
}
