package rotationwatch

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Plain writes one line per change, for a pipe or a CI log: the countdown
// alone is no change.
type Plain struct {
	W       io.Writer
	last    string
	blocked []string
}

// Show writes the view's line if it differs from the last one, and each
// newly blocked item on its own line.
func (p *Plain) Show(v *View) {
	if v.Note != "" {
		p.write(v, "reading the issuer: "+v.Note+" (retrying)")
		return
	}
	if len(v.Spans) == 0 {
		return
	}
	done, total := v.Holding()
	line := fmt.Sprintf("%s: %d/%d pods hold the new root; %s: %s", v.Status.Phase, done, total, v.Workloads(), v.Waiting())
	if v.Status.NextRoot == "" {
		line = fmt.Sprintf("%s: %d meshed pods; %s", v.Status.Phase, total, v.Waiting())
	}
	p.write(v, line)
	for _, b := range v.Status.Blocked {
		if !slices.Contains(p.blocked, b) {
			fmt.Fprintf(p.W, "%s   blocked: %s\n", stamp(v), b)
		}
	}
	p.blocked = slices.Clone(v.Status.Blocked)
}

func (p *Plain) write(v *View, line string) {
	if line == p.last {
		return
	}
	p.last = line
	fmt.Fprintf(p.W, "%s %s\n", stamp(v), line)
}

// Close writes the timeline.
func (p *Plain) Close(v *View) {
	if len(v.Spans) == 0 {
		return
	}
	parts := []string{v.Headline(), v.Timeline()}
	if d := v.Deadline(); d != "" {
		parts = append(parts, d)
	}
	fmt.Fprintf(p.W, "%s %s\n", stamp(v), strings.Join(parts, "; "))
}

// Live is false: a pipe gets no countdown.
func (p *Plain) Live() bool { return false }

func stamp(v *View) string { return v.Now.UTC().Format(time.RFC3339) }
