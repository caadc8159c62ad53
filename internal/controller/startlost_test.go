package controller

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	cmapiutil "github.com/cert-manager/cert-manager/pkg/api/util"
	issuersigner "github.com/cert-manager/issuer-lib/controllers/signer"
	"github.com/go-logr/logr/funcr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestALostFirstSightSignatureIsSignedAgainTheSame: the hook signs a prompt
// request but its write is refused (the cache lagged); before the retry the
// anchor Secret is deleted and restored, so the issuer is not Ready when the
// request comes back and it goes issuer-lib's way, where Sign records the
// start. That start must be the approval the hook signed from, or the
// request gets a second, different certificate (the fault suite caught 4 in
// 300 when Sign recorded "now" there). A request that only waited keeps
// its whole duration (the hardening's guarantee).
func TestALostFirstSightSignatureIsSignedAgainTheSame(t *testing.T) {
	a := newAnchor(t, now.Add(365*24*time.Hour))
	approved := now.Add(-2 * time.Second)
	cr := approve(newRequest(t, seed48h(), now.Add(-3*time.Second), time.Time{}), approved)
	iss := readyIssuer(1, 1, metav1.ConditionTrue)
	s, _ := newSigner(t, anchorSecret("linkerd", a), cr, iss)
	sigs := map[string]int{}
	s.Audit = funcr.NewJSON(func(obj string) {
		var line struct{ Msg, SHA256 string }
		if json.Unmarshal([]byte(obj), &line) == nil && line.Msg == "signed" {
			sigs[line.SHA256]++
		}
	}, funcr.Options{})
	ctx := context.Background()
	if err := s.Client.Get(ctx, client.ObjectKeyFromObject(cr), cr); err != nil {
		t.Fatal(err)
	}
	stale := cr.DeepCopy()
	cr.Annotations = map[string]string{"moved": "on"}
	if err := s.Client.Update(ctx, cr); err != nil {
		t.Fatal(err)
	}
	ignored, err := s.SignAtFirstSight(ctx, issuersigner.CertificateRequestObjectFromCertificateRequest(stale), issuerGVK,
		types.NamespacedName{Namespace: "linkerd", Name: "linkerd"})
	if err == nil || ignored || len(sigs) != 1 {
		t.Fatalf("first sight on a stale request: ignored %v, err %v, %d signed; want one signature and its write refused", ignored, err, len(sigs))
	}

	// 40s later, through issuer-lib's Sign (the issuer was not Ready for
	// the hook in between).
	s.Clock = clocktesting.NewFakePassiveClock(now.Add(40 * time.Second))
	if err := s.Client.Get(ctx, client.ObjectKeyFromObject(cr), cr); err != nil {
		t.Fatal(err)
	}
	_, err = s.Sign(ctx, issuersigner.CertificateRequestObjectFromCertificateRequest(cr), iss)
	if err != nil {
		t.Fatal(err)
	}
	if len(sigs) != 1 {
		t.Errorf("signed %d different certificates for one request (%v), want 1", len(sigs), sigs)
	}
	if err := s.Client.Get(ctx, client.ObjectKeyFromObject(cr), cr); err != nil {
		t.Fatal(err)
	}
	if c := cmapiutil.GetCertificateRequestCondition(cr, ConditionValidityStarted); c == nil || !c.LastTransitionTime.Time.Equal(approved) {
		t.Errorf("recorded start %+v, want the approval %s", c, approved)
	}

	// A request approved as promptly that only waited for its issuer (never
	// signed at first sight) gets its start at its first attempt, and so
	// its whole duration.
	waited := approve(newRequest(t, seed48h(), now.Add(-3*time.Second), time.Time{}), approved)
	waited.Name, waited.UID = "waited", "uid-waited"
	if err := s.Client.Create(ctx, waited); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Sign(ctx, issuersigner.CertificateRequestObjectFromCertificateRequest(waited), iss); err != nil {
		t.Fatal(err)
	}
	if err := s.Client.Get(ctx, client.ObjectKeyFromObject(waited), waited); err != nil {
		t.Fatal(err)
	}
	if c := cmapiutil.GetCertificateRequestCondition(waited, ConditionValidityStarted); c == nil || !c.LastTransitionTime.Time.Equal(now.Add(40*time.Second)) {
		t.Errorf("a request that waited: start %+v, want its first attempt %s", c, now.Add(40*time.Second))
	}
}
