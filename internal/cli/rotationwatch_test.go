package cli

import (
	"bytes"
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	"github.com/creack/pty"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
)

// syncBuffer is an output the test reads while the command writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// rotatingCluster is a fake cluster whose identity issuer Certificate names
// a rotating LinkerdCAClusterIssuer with status st.
func rotatingCluster(t *testing.T, st v1alpha1.RotationStatus) (client.WithWatch, *v1alpha1.LinkerdCAClusterIssuer) {
	t.Helper()
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, cmapi.AddToScheme, v1alpha1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	crt := &cmapi.Certificate{ObjectMeta: metav1.ObjectMeta{Namespace: "linkerd", Name: "linkerd-identity-issuer"},
		Spec: cmapi.CertificateSpec{IssuerRef: cmmeta.IssuerReference{Group: v1alpha1.GroupVersion.Group, Kind: v1alpha1.ClusterIssuerKind, Name: "linkerd"}}}
	iss := &v1alpha1.LinkerdCAClusterIssuer{ObjectMeta: metav1.ObjectMeta{Name: "linkerd"},
		Spec: v1alpha1.IssuerSpec{Rotation: &v1alpha1.RotationSpec{}}, Status: v1alpha1.IssuerStatus{Rotation: &st}}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(crt, iss).WithStatusSubresource(iss).Build()
	return c, iss
}

func propagating(behind int32, deadline time.Time) v1alpha1.RotationStatus {
	d := metav1.NewTime(deadline)
	return v1alpha1.RotationStatus{Phase: v1alpha1.RotationPropagating, SigningRoot: "aaaaaaaaaaaaaaaa", NextRoot: "bbbbbbbbbbbbbbbb",
		PodsBehind: behind, PodsTotal: 10, Restarting: 2, Deadline: &d, Message: "waiting for the pods behind",
		Blocked:            []string{"Deployment emojivoto/web is paused: resume it (kubectl rollout resume)"},
		LastTransitionTime: metav1.NewTime(time.Now().Add(-time.Minute))}
}

// watchRotation runs `rotation status --watch` with args on out and
// returns its exit code when it ends.
func watchRotation(c client.WithWatch, out io.Writer, args ...string) <-chan int {
	code := make(chan int, 1)
	g := &globals{stdout: out, stderr: out, now: time.Now, kubeClient: func() (client.WithWatch, error) { return c, nil }}
	go func() {
		code <- execute(context.Background(), g, append([]string{"rotation", "status", "--watch", "-L", "linkerd"}, args...))
	}()
	return code
}

// advance moves the issuer's rotation: 1 pod behind, then Stable.
func advance(t *testing.T, c client.WithWatch, iss *v1alpha1.LinkerdCAClusterIssuer, wait func(string)) {
	t.Helper()
	ctx := context.Background()
	wait("3/10 pods")
	st := propagating(1, time.Now().Add(time.Hour))
	iss.Status.Rotation = &st
	if err := c.Status().Update(ctx, iss); err != nil {
		t.Fatal(err)
	}
	wait("9/10 pods")
	iss.Status.Rotation = &v1alpha1.RotationStatus{Phase: v1alpha1.RotationStable, SigningRoot: "bbbbbbbbbbbbbbbb", PodsTotal: 10,
		LastTransitionTime: metav1.Now(), Message: "one root"}
	if err := c.Status().Update(ctx, iss); err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, out interface{ String() string }) func(string) {
	return func(s string) {
		t.Helper()
		for end := time.Now().Add(10 * time.Second); !strings.Contains(out.String(), s); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(end) {
				t.Fatalf("no %q in the output:\n%s", s, out.String())
			}
		}
	}
}

func TestRotationWatchOnAPipe(t *testing.T) {
	c, iss := rotatingCluster(t, propagating(7, time.Now().Add(time.Hour)))
	var out syncBuffer
	code := watchRotation(c, &out)
	advance(t, c, iss, waitFor(t, &out))
	if got := <-code; got != 0 {
		t.Fatalf("exit code %d at Stable, want 0:\n%s", got, out.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	for _, want := range []string{"Propagating: 3/10 pods hold the new root; 0 workloads restarted, 2 with pods still behind, 1 awaiting an operator",
		"blocked: Deployment emojivoto/web is paused", "Propagating: 9/10 pods", "Stable: 10 meshed pods; one root", "Propagating 1m"} {
		if n := strings.Count(out.String(), want); n != 1 {
			t.Errorf("%q printed %d times, want once:\n%s", want, n, out.String())
		}
	}
	if len(lines) != 5 || strings.Contains(out.String(), "\x1b[") {
		t.Errorf("want 5 plain lines (one per change, the blocked item, the timeline), got %d:\n%q", len(lines), out.String())
	}
}

func TestRotationWatchOnATerminal(t *testing.T) {
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Fatalf("opening a pty: %v", err)
	}
	defer ptmx.Close()
	if err := pty.Setsize(ptmx, &pty.Winsize{Rows: 30, Cols: 120}); err != nil {
		t.Fatal(err)
	}
	var screen syncBuffer
	go func() { _, _ = io.Copy(&screen, ptmx) }()
	c, iss := rotatingCluster(t, propagating(7, time.Now().Add(time.Hour)))
	code := watchRotation(c, tty)
	advance(t, c, iss, waitFor(t, &screen))
	got := <-code
	_ = tty.Close()
	if got != 0 {
		t.Fatalf("exit code %d at Stable, want 0:\n%s", got, screen.String())
	}
	waitFor(t, &screen)("10/10 pods hold the new root")
	s := screen.String()
	// The bar: bubbles' progress draws full cells █ and empty ░; 3/10 of
	// 40 cells is 12 full ones.
	for _, want := range []string{strings.Repeat("█", 12) + strings.Repeat("░", 28), "deadline in ", "the identity issuer in place expires)", "blocked: Deployment emojivoto/web is paused",
		"now: waiting for the pods behind", "Propagating 1m", "\x1b[", "rotating from root aaaaaaaaaaaa… to bbbbbbbbbbbb…"} {
		if !strings.Contains(s, want) {
			t.Errorf("the terminal lacks %q:\n%q", want, s)
		}
	}
}

func TestRotationWatchExitCodes(t *testing.T) {
	held := propagating(7, time.Now().Add(-time.Minute))
	held.Phase = v1alpha1.RotationHeld
	for _, tc := range []struct {
		name string
		st   v1alpha1.RotationStatus
		args []string
		code int
		says string
	}{
		{"Stable already", v1alpha1.RotationStatus{Phase: v1alpha1.RotationStable, PodsTotal: 3}, nil, 0, "Stable: 3 meshed pods"},
		{"Held past the deadline", held, nil, exitPastDeadline, "past its deadline: LinkerdCAClusterIssuer linkerd is Held"},
		{"--timeout", propagating(7, time.Now().Add(time.Hour)), []string{"--timeout", "300ms"}, exitTimeout, "timed out after 300ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := rotatingCluster(t, tc.st)
			var out syncBuffer
			select {
			case got := <-watchRotation(c, &out, tc.args...):
				if got != tc.code || !strings.Contains(out.String(), tc.says) {
					t.Errorf("exit code %d, want %d, and output with %q:\n%s", got, tc.code, tc.says, out.String())
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("still watching after 10s:\n%s", out.String())
			}
		})
	}
	var out syncBuffer
	if code := execute(context.Background(), &globals{stdout: &out, stderr: &out, now: time.Now}, []string{"rotation", "status", "--timeout", "1m"}); code != exitUsage {
		t.Errorf("--timeout without --watch: exit code %d, want %d", code, exitUsage)
	}
}

// A watch started right after `rotation start` reads the previous
// rotation's Stable: it waits until the controller has seen the new Secret.
func TestRotationWatchWaitsForTheControllerToSeeAStart(t *testing.T) {
	c, iss := rotatingCluster(t, v1alpha1.RotationStatus{Phase: v1alpha1.RotationStable, SigningSecretName: "anchor", PodsTotal: 10})
	iss.Spec.TrustAnchorSecretName = "anchor-next"
	if err := c.Update(context.Background(), iss); err != nil {
		t.Fatal(err)
	}
	var out syncBuffer
	code := watchRotation(c, &out)
	waitFor(t, &out)("has not yet seen spec.trustAnchorSecretName anchor-next")
	select {
	case got := <-code:
		t.Fatalf("exit %d on the previous rotation's Stable:\n%s", got, out.String())
	case <-time.After(300 * time.Millisecond):
	}
	iss.Status.Rotation = &v1alpha1.RotationStatus{Phase: v1alpha1.RotationStable, SigningSecretName: "anchor-next", PodsTotal: 10, LastTransitionTime: metav1.Now()}
	if err := c.Status().Update(context.Background(), iss); err != nil {
		t.Fatal(err)
	}
	if got := <-code; got != 0 {
		t.Fatalf("exit %d, want 0:\n%s", got, out.String())
	}
}

// An issuer deleted while it is watched ends the watch with exit 1, naming it.
func TestRotationWatchEndsWhenTheIssuerIsDeleted(t *testing.T) {
	c, iss := rotatingCluster(t, propagating(7, time.Now().Add(time.Hour)))
	var out syncBuffer
	code := watchRotation(c, &out)
	waitFor(t, &out)("3/10 pods")
	if err := c.Delete(context.Background(), iss); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-code:
		if got != exitFailed || !strings.Contains(out.String(), "LinkerdCAClusterIssuer linkerd was deleted") {
			t.Errorf("exit %d, want %d and the issuer named deleted:\n%s", got, exitFailed, out.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("still watching a deleted issuer:\n%s", out.String())
	}
}
