package rotationwatch

import (
	"fmt"
	"io"
	"strings"

	"github.com/charmbracelet/bubbles/progress"
	tea "github.com/charmbracelet/bubbletea"
)

// maxBlocked is how many blocked items the terminal lists; the rest are
// counted (rotation status lists them all).
const maxBlocked = 5

// Terminal redraws the view in place, with a progress bar of the pods
// holding the new root, through bubbletea: it owns the cursor, the redraw
// and the terminal's width.
type Terminal struct {
	p    *tea.Program
	done chan struct{}
}

// NewTerminal starts drawing on out, a terminal. It reads no input: an
// interrupt reaches the command's context, not the program.
func NewTerminal(out io.Writer) *Terminal {
	t := &Terminal{done: make(chan struct{})}
	t.p = tea.NewProgram(frame{bar: progress.New(progress.WithDefaultGradient(), progress.WithoutPercentage())},
		tea.WithOutput(out), tea.WithInput(nil), tea.WithoutSignalHandler())
	go func() {
		defer close(t.done)
		_, _ = t.p.Run()
	}()
	return t
}

// Show redraws with v.
func (t *Terminal) Show(v *View) { t.p.Send(*v) }

// Close draws v and leaves it on the screen.
func (t *Terminal) Close(v *View) {
	t.p.Send(*v)
	t.p.Quit()
	<-t.done
}

// Live is true: the countdown moves every second.
func (t *Terminal) Live() bool { return true }

type frame struct {
	view  View
	bar   progress.Model
	width int
}

func (f frame) Init() tea.Cmd { return nil }

func (f frame) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case View:
		f.view = msg
	case tea.WindowSizeMsg:
		f.width = msg.Width
	}
	return f, nil
}

func (f frame) View() string {
	v := &f.view
	if v.Note != "" && len(v.Spans) == 0 {
		return "reading the issuer: " + v.Note + " (retrying)\n"
	}
	if len(v.Spans) == 0 {
		return "reading " + v.Issuer + "…\n"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n  %s\n", v.Headline(), v.Timeline())
	done, total := v.Holding()
	f.bar.Width = 40
	if f.width > 0 {
		f.bar.Width = min(40, max(f.width-40, 10))
	}
	pct := 1.0
	if total > 0 {
		pct = float64(done) / float64(total)
	}
	fmt.Fprintf(&b, "  %s %d/%d pods hold the new root\n", f.bar.ViewAs(pct), done, total)
	fmt.Fprintf(&b, "  %s\n", v.Workloads())
	for i, item := range v.Status.Blocked {
		if i == maxBlocked {
			fmt.Fprintf(&b, "  … and %d more blocked (linkerd-ca rotation status lists them)\n", len(v.Status.Blocked)-maxBlocked)
			break
		}
		fmt.Fprintf(&b, "  blocked: %s\n", item)
	}
	if d := v.Deadline(); d != "" {
		fmt.Fprintf(&b, "  %s\n", d)
	}
	if w := v.Waiting(); w != "" {
		fmt.Fprintf(&b, "  now: %s\n", w)
	}
	if v.Note != "" {
		fmt.Fprintf(&b, "  reading the issuer: %s (retrying)\n", v.Note)
	}
	return b.String()
}
