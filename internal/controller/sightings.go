package controller

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// sightings are the requests SignAtFirstSight signed from their approval
// time but could not record (the write refused: a cache that lagged, an
// admission policy), for signedPromptly. Its retry may find the issuer
// not Ready any more (its anchor Secret deleted and restored) and take
// issuer-lib's way, where Sign records a start: the remembered one, so the
// request is signed again to the same certificate, not to a second one.
// A request that only ever waited for its issuer is not here, and gets its
// whole duration from its first signing attempt.
type sightings struct {
	mu sync.Mutex
	at map[types.UID]sighting
}

type sighting struct{ start, seen time.Time }

// signed remembers that the request was signed from start, at now.
func (s *sightings) signed(uid types.UID, start, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.at == nil {
		s.at = map[types.UID]sighting{}
	}
	for k, v := range s.at {
		if now.Sub(v.seen) > signedPromptly {
			delete(s.at, k)
		}
	}
	s.at[uid] = sighting{start: start, seen: now}
}

// start is the start the request was signed from, if it was.
func (s *sightings) start(uid types.UID, now time.Time) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.at[uid]
	if !ok || now.Sub(v.seen) > signedPromptly {
		return time.Time{}, false
	}
	return v.start, true
}
