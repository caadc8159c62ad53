package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/term"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/rotationwatch"
)

// Exit codes of `rotation status --watch` beyond Run's.
const (
	exitPastDeadline = 3
	exitTimeout      = 4
)

// exitError ends the command with its own exit code.
type exitError struct {
	code int
	error
}

// followRotation is `rotation status --watch`: the issuer's rotation
// followed until Stable, drawn live on a terminal, one line per change on
// anything else.
func followRotation(ctx context.Context, g *globals, c client.WithWatch, iss v1alpha1.GenericIssuer, key client.ObjectKey, timeout time.Duration) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	updates := make(chan rotationwatch.Update)
	go watchIssuer(ctx, c, iss, key, updates)
	var r rotationwatch.Renderer = &rotationwatch.Plain{W: g.stdout}
	if f, ok := g.stdout.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		r = rotationwatch.NewTerminal(f)
	}
	err := rotationwatch.Follow(ctx, issuerName(iss, key), updates, r, rotationwatch.Options{Timeout: timeout, Now: g.now})
	switch {
	case errors.Is(err, rotationwatch.ErrPastDeadline):
		return exitError{exitPastDeadline, err}
	case errors.Is(err, rotationwatch.ErrTimeout):
		return exitError{exitTimeout, err}
	}
	return err
}

// watchIssuer sends the issuer's rotation status, then each change of it,
// until ctx ends. A failed read or a closed watch is retried with backoff
// (and said); a deleted issuer ends the watch.
func watchIssuer(ctx context.Context, c client.WithWatch, iss v1alpha1.GenericIssuer, key client.ObjectKey, out chan<- rotationwatch.Update) {
	send := func(u rotationwatch.Update) bool {
		select {
		case out <- u:
			return true
		case <-ctx.Done():
			return false
		}
	}
	delay := time.Second
	for ctx.Err() == nil {
		rv, err := readIssuer(ctx, c, iss, key, send)
		if err == nil {
			delay = time.Second
			err = followIssuer(ctx, c, iss, key, rv, send)
		}
		var gone errGone
		switch {
		case errors.As(err, &gone):
			send(rotationwatch.Update{Err: err})
			return
		case err != nil && !send(rotationwatch.Update{Err: err, Retrying: true}):
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(delay):
		}
		delay = min(2*delay, 30*time.Second)
	}
}

// issuerName is "LinkerdCAIssuer linkerd/x" or "LinkerdCAClusterIssuer x".
func issuerName(iss v1alpha1.GenericIssuer, key client.ObjectKey) string {
	if key.Namespace == "" {
		return iss.IssuerKind() + " " + key.Name
	}
	return iss.IssuerKind() + " " + key.String()
}

// errGone: the issuer was deleted, or its spec.rotation removed.
type errGone struct{ error }

func readIssuer(ctx context.Context, c client.Client, iss v1alpha1.GenericIssuer, key client.ObjectKey, send func(rotationwatch.Update) bool) (string, error) {
	got := iss.New()
	if err := c.Get(ctx, key, got); apierrors.IsNotFound(err) {
		return "", errGone{fmt.Errorf("%s was deleted", issuerName(iss, key))}
	} else if err != nil {
		return "", fmt.Errorf("reading %s: %w", issuerName(iss, key), err)
	}
	if err := sendStatus(got, key, send); err != nil {
		return "", err
	}
	return got.GetResourceVersion(), nil
}

func sendStatus(got v1alpha1.GenericIssuer, key client.ObjectKey, send func(rotationwatch.Update) bool) error {
	if got.GetSpec().Rotation == nil {
		return errGone{fmt.Errorf("%s no longer has spec.rotation: nothing rotates its anchor", issuerName(got, key))}
	}
	st := got.GetStatus().Rotation
	if st == nil {
		return nil
	}
	u := rotationwatch.Update{Status: st}
	if spec := got.GetSpec().TrustAnchorSecretName; st.Phase == v1alpha1.RotationStable && st.SigningSecretName != "" && st.SigningSecretName != spec {
		// Just started: Stable is the rotation before this one.
		u.Unobserved = fmt.Sprintf("the controller has not yet seen spec.trustAnchorSecretName %s (it signs from %s)", spec, st.SigningSecretName)
	}
	send(u)
	return nil
}

func followIssuer(ctx context.Context, c client.WithWatch, iss v1alpha1.GenericIssuer, key client.ObjectKey, rv string, send func(rotationwatch.Update) bool) error {
	w, err := c.Watch(ctx, iss.NewList(), client.InNamespace(key.Namespace), client.MatchingFields{"metadata.name": key.Name},
		&client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: rv, AllowWatchBookmarks: true}})
	if err != nil {
		return fmt.Errorf("watching %s: %w", issuerName(iss, key), err)
	}
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.ResultChan():
			if !ok {
				return nil // expired: read again, then watch again
			}
			got, isIssuer := ev.Object.(v1alpha1.GenericIssuer)
			switch {
			case ev.Type == watch.Error:
				return nil
			case !isIssuer || got.GetName() != key.Name:
			case ev.Type == watch.Deleted:
				return errGone{fmt.Errorf("%s was deleted", issuerName(iss, key))}
			case ev.Type == watch.Added || ev.Type == watch.Modified:
				if err := sendStatus(got, key, send); err != nil {
					return err
				}
			}
		}
	}
}
