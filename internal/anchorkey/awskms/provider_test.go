package awskms

import (
	"context"
	"fmt"
	"testing"
)

// TestProviderKeepsABoundedNumberOfClients: one client per region is kept,
// up to maxRegions; regions named past that get a client each time, and the
// cache does not grow.
func TestProviderKeepsABoundedNumberOfClients(t *testing.T) {
	made := 0
	p := &Provider{NewAPI: func(context.Context, string) (API, error) {
		made++
		return nil, nil
	}}
	for i := range maxRegions + 10 {
		if _, err := p.client(context.Background(), fmt.Sprintf("region-%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if len(p.clients) != maxRegions {
		t.Errorf("%d clients kept, want the bound %d", len(p.clients), maxRegions)
	}
	_, _ = p.client(context.Background(), "region-0")
	if made != maxRegions+10 {
		t.Errorf("a kept region's client was made again: %d made", made)
	}
}
