//go:build e2e

package multicluster

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
)

// unlinkMidRotation: east rotates alone, from the shared root to one of
// its own, and west (its api paused) has not propagated it when west
// removes the link. West stops restarting for east's root but keeps it
// trusted until no leaf under it can be alive here (a proxy certificate's
// lifetime, its pods being older), then drops it; east, still naming west,
// waits, saying west publishes nothing, until it removes the link too.
func unlinkMidRotation(t *testing.T, shared string) {
	t.Helper()
	west.pause(t, "api", true)
	if code, out, errOut := east.linkerdCA("rotation", "start"); code != 0 {
		t.Fatalf("east: linkerd-ca rotation start: exit %d\n%s%s", code, out, errOut)
	}
	e3 := east.anchorRoot(t)
	west.waitRotation(t, within(3*time.Minute), "restarting for east's new root, api paused", func(st *v1alpha1.RotationStatus) error {
		if st.PeerRoot != e3 {
			return fmt.Errorf("peer root %q", short(st.PeerRoot))
		}
		return nil
	})
	east.waitRotation(t, within(3*time.Minute), "its own pods holding its new root, waiting for west", func(st *v1alpha1.RotationStatus) error {
		if st.SigningRoot != shared || !strings.Contains(st.Message, "peer west has not propagated it") {
			return fmt.Errorf("signing under %s", short(st.SigningRoot))
		}
		return nil
	})

	unlinked := time.Now()
	west.unlink(t)
	st := west.waitRotation(t, 60*time.Second, "no longer linked, east's root retiring", func(st *v1alpha1.RotationStatus) error {
		if len(st.Peers) != 0 || st.PeerRoot != "" {
			return fmt.Errorf("peers %+v, peer root %q", st.Peers, short(st.PeerRoot))
		}
		if i := slices.IndexFunc(st.RetiringRoots, func(r v1alpha1.RetiringRoot) bool { return r.Fingerprint == e3 }); i < 0 || st.RetiringRoots[i].Since == nil {
			return fmt.Errorf("retiring %+v", st.RetiringRoots)
		}
		return nil
	})
	since := st.RetiringRoots[slices.IndexFunc(st.RetiringRoots, func(r v1alpha1.RetiringRoot) bool { return r.Fingerprint == e3 })].Since.Time
	if err := hasAll(west.trustRoots(t), e3, shared); err != nil {
		t.Fatalf("west: Linkerd's trust roots right after the unlink: %v", err)
	}
	var gone time.Time
	eventually(t, 90*time.Second, "west: east's root gone from Linkerd's trust roots once drained", func() error {
		if slices.Contains(west.trustRoots(t), e3) {
			return fmt.Errorf("still holds %s", short(e3))
		}
		gone = time.Now()
		return nil
	})
	// West's pods all started before the unlink: a leaf under east's root,
	// if one reached them, lives a proxy certificate's lifetime.
	if gone.Before(since.Add(lifetime)) {
		t.Errorf("west dropped east's root %s after the unlink, before its drain ended (%s)", gone.Sub(unlinked).Round(time.Millisecond), since.Add(lifetime).Format(time.RFC3339))
	}
	west.waitRotation(t, 60*time.Second, "Stable under the shared root", func(st *v1alpha1.RotationStatus) error {
		if st.Phase != v1alpha1.RotationStable || st.SigningRoot != shared || len(st.Propagation) != 0 {
			return fmt.Errorf("not Stable under %s, or still publishing propagation %+v", short(shared), st.Propagation)
		}
		return nil
	})

	east.waitRotation(t, 60*time.Second, "waiting: west publishes nothing", func(st *v1alpha1.RotationStatus) error {
		if st.SigningRoot != shared || !strings.Contains(st.Message, "peer west publishes no propagation") {
			return fmt.Errorf("signing under %s", short(st.SigningRoot))
		}
		return nil
	})
	eastUnlinked := time.Now()
	east.unlink(t)
	east.waitRotation(t, within(3*time.Minute), "unlinked, Stable under its own new root", func(st *v1alpha1.RotationStatus) error {
		if st.Phase != v1alpha1.RotationStable || st.SigningRoot != e3 || len(st.Peers) != 0 {
			return fmt.Errorf("not Stable under %s, peers %+v", short(e3), st.Peers)
		}
		return nil
	})
	if roots := east.trustRoots(t); !slices.Equal(roots, []string{e3}) {
		t.Errorf("east: Linkerd's trust roots hold %v once unlinked and drained, want its own root alone", roots)
	}
	west.pause(t, "api", false)
	t.Logf("unlinked mid-rotation: west kept east's root %s after removing the link, until drained; east was Stable under its new root %s after its own removal",
		gone.Sub(unlinked).Round(time.Second), time.Since(eastUnlinked).Round(time.Second))
}
