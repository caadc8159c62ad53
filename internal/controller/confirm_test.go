package controller

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// TestConfirmationsServeOnlyWithAReadBegunAfterTheAsk: signatures asking
// while a read is in flight share the next read, never the one in flight,
// whose answer may predate their ask.
func TestConfirmationsServeOnlyWithAReadBegunAfterTheAsk(t *testing.T) {
	var c confirmations
	ref := types.NamespacedName{Namespace: "linkerd", Name: "anchor"}
	var reads atomic.Int32
	began := make(chan int32, 4)
	release := make(chan struct{})
	read := func(_ context.Context, m *metav1.PartialObjectMetadata) error {
		n := reads.Add(1)
		began <- n
		<-release
		m.ResourceVersion = strconv.Itoa(int(n))
		return nil
	}
	got := make([]string, 3)
	var wg sync.WaitGroup
	ask := func(i int) {
		wg.Go(func() {
			m, err := c.get(context.Background(), ref, read)
			if err != nil {
				t.Error(err)
				return
			}
			got[i] = m.ResourceVersion
		})
	}
	ask(0)
	if n := <-began; n != 1 {
		t.Fatalf("read %d began first", n)
	}
	// Read 1 is in flight: these two ask now, and must wait for read 2.
	ask(1)
	ask(2)
	time.Sleep(50 * time.Millisecond)
	release <- struct{}{}
	if n := <-began; n != 2 {
		t.Fatalf("read %d began second", n)
	}
	release <- struct{}{}
	wg.Wait()
	if got[0] != "1" || got[1] != "2" || got[2] != "2" {
		t.Errorf("served revisions %v, want [1 2 2]: the first its own read, the others the one begun after they asked", got)
	}
	if reads.Load() != 2 {
		t.Errorf("%d reads for 3 signatures, want 2", reads.Load())
	}
	// Nothing left behind once no one waits (the reader lets go of it
	// just after it answers).
	left := 1
	for deadline := time.Now().Add(time.Second); left != 0 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		c.mu.Lock()
		left = len(c.refs)
		c.mu.Unlock()
	}
	if left != 0 {
		t.Errorf("%d confirmers kept with no one waiting", left)
	}
}
