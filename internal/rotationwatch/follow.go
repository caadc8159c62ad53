package rotationwatch

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
)

var (
	// ErrTimeout is --timeout passing before the rotation is Stable.
	ErrTimeout = errors.New("timed out")
	// ErrPastDeadline is a rotation not Stable whose identity issuer in
	// place has expired.
	ErrPastDeadline = errors.New("the rotation is past its deadline")
)

// Update is one read of the issuer: its rotation status, or the error
// that stopped the read (Retrying: the source tries again).
type Update struct {
	Status *v1alpha1.RotationStatus
	// Unobserved says why Status is not yet the controller's view of the
	// spec (a rotation just started reads Stable until it is seen).
	Unobserved string
	Err        error
	Retrying   bool
}

// Renderer draws the view: Show on every change and, on a terminal, every
// second for the countdown; Close once, with the last view.
type Renderer interface {
	Show(v *View)
	Close(v *View)
	// Live says Show wants the ticks that only move the countdown.
	Live() bool
}

// Options are the watch's limits.
type Options struct {
	// Timeout ends the watch with ErrTimeout; zero waits until Stable.
	Timeout time.Duration
	// Now is the clock; nil is time.Now.
	Now func() time.Time
	// Tick is how often the countdown moves; zero is a second.
	Tick time.Duration
}

// Follow shows each update until the rotation is Stable (nil), past its
// deadline (ErrPastDeadline), out of time (ErrTimeout), interrupted (the
// context's error) or unreadable (the update's error).
func Follow(ctx context.Context, issuer string, updates <-chan Update, r Renderer, o Options) (err error) {
	now := o.Now
	if now == nil {
		now = time.Now
	}
	tick := o.Tick
	if tick == 0 {
		tick = time.Second
	}
	v := &View{Issuer: issuer, Now: now()}
	defer func() { v.Now = now(); r.Close(v) }()
	var timeout <-chan time.Time
	if o.Timeout > 0 {
		t := time.NewTimer(o.Timeout)
		defer t.Stop()
		timeout = t.C
	}
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timeout:
			return fmt.Errorf("%w after %s: %s is %s", ErrTimeout, o.Timeout, issuer, phaseOf(v))
		case <-ticker.C:
			v.Now = now()
			if r.Live() {
				r.Show(v)
			}
		case u, ok := <-updates:
			v.Now = now()
			switch {
			case !ok:
				return fmt.Errorf("the watch of %s ended", issuer)
			case u.Err != nil && !u.Retrying:
				return u.Err
			case u.Err != nil:
				v.Note = u.Err.Error()
			default:
				v.Observe(*u.Status)
				v.Unobserved = u.Unobserved
			}
			r.Show(v)
			if v.Stable() {
				return nil
			}
		}
		if v.PastDeadline() {
			return fmt.Errorf("%w: %s is %s since %s, and the identity issuer in place expired at %s", ErrPastDeadline,
				issuer, v.Status.Phase, v.Status.LastTransitionTime.UTC().Format(time.RFC3339), v.Status.Deadline.UTC().Format(time.RFC3339))
		}
	}
}

func phaseOf(v *View) string {
	if len(v.Spans) == 0 {
		return "not read yet"
	}
	return fmt.Sprintf("%s (%s)", v.Status.Phase, v.Status.Message)
}
