//go:build e2e

package e2e

import (
	"strings"
	"testing"
	"time"
)

// assertWatchedToStable checks what `linkerd-ca rotation status --watch`,
// started with the rotation, printed: one line per change (its stdout is
// no terminal) from Propagating to Stable, then the timeline, and exit 0.
func assertWatchedToStable(t *testing.T, watched <-chan string) {
	t.Helper()
	var out string
	select {
	case out = <-watched:
	case <-time.After(time.Minute):
		t.Errorf("linkerd-ca rotation status --watch still running a minute after Stable")
		return
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	timeline := lines[len(lines)-1]
	if !strings.HasPrefix(out, "exit 0\n") || !strings.Contains(out, " Propagating: ") || !strings.Contains(out, "pods hold the new root") ||
		!strings.Contains(timeline, "Propagating ") || !strings.Contains(timeline, "→ Stable") || strings.Contains(out, "\x1b[") {
		t.Errorf("linkerd-ca rotation status --watch: want exit 0, a plain line per change from Propagating, and the timeline to Stable:\n%s", out)
	}
	t.Logf("linkerd-ca rotation status --watch followed the rotation in %d lines; the last: %s", len(lines)-1, timeline)
}
