package controller

import (
	"context"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// confirmations reads an anchor Secret's current revision from the API
// server for the signatures that need it, one read for all those waiting
// at once (a group commit). A signature is served only by a read that
// began after it asked, so what it learns is at least as fresh as a read
// of its own: the guarantee that a key is never used once its Secret has
// changed is the same, at one GET per burst instead of one per request.
type confirmations struct {
	mu   sync.Mutex
	refs map[types.NamespacedName]*confirmer
}

// confirmer is one Secret's: the read in flight, and the one that starts
// when it ends, for those who asked meanwhile.
type confirmer struct {
	inFlight, next *confirmRound
}

type confirmRound struct {
	done chan struct{}
	meta metav1.PartialObjectMetadata
	err  error
}

// confirmTimeout bounds a shared read: no one caller's context may end it
// for the others.
const confirmTimeout = 30 * time.Second

// get is ref's metadata, from a read that began after get was called.
func (c *confirmations) get(ctx context.Context, ref types.NamespacedName, read func(context.Context, *metav1.PartialObjectMetadata) error) (*metav1.PartialObjectMetadata, error) {
	c.mu.Lock()
	if c.refs == nil {
		c.refs = map[types.NamespacedName]*confirmer{}
	}
	cf := c.refs[ref]
	if cf == nil {
		cf = &confirmer{}
		c.refs[ref] = cf
	}
	var round *confirmRound
	switch {
	case cf.inFlight == nil:
		round = &confirmRound{done: make(chan struct{})}
		cf.inFlight = round
		go c.run(ref, cf, round, read)
	case cf.next == nil:
		// The read in flight began before this call: wait for the next.
		cf.next = &confirmRound{done: make(chan struct{})}
		round = cf.next
	default:
		round = cf.next
	}
	c.mu.Unlock()
	select {
	case <-round.done:
		if round.err != nil {
			return nil, round.err
		}
		return round.meta.DeepCopy(), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// run makes round's read, then the next round's if anyone asked during it.
func (c *confirmations) run(ref types.NamespacedName, cf *confirmer, round *confirmRound, read func(context.Context, *metav1.PartialObjectMetadata) error) {
	for round != nil {
		ctx, cancel := context.WithTimeout(context.Background(), confirmTimeout)
		round.err = read(ctx, &round.meta)
		cancel()
		close(round.done)
		c.mu.Lock()
		round, cf.inFlight, cf.next = cf.next, cf.next, nil
		if round == nil {
			delete(c.refs, ref)
		}
		c.mu.Unlock()
	}
}
