package controller

import (
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
)

// TestStopIsBoundedInsideTheGracePeriod: the manager's stop is bounded well
// inside the kubelet's default 30 s grace period, and the lease released.
func TestStopIsBoundedInsideTheGracePeriod(t *testing.T) {
	o := Options{LeaderElect: true, LeaderElectionNamespace: "x", LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 2 * time.Second}
	opts, err := o.ManagerOptions(runtime.NewScheme(), &rest.Config{Host: "https://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	if opts.GracefulShutdownTimeout == nil || *opts.GracefulShutdownTimeout <= 0 || *opts.GracefulShutdownTimeout > 15*time.Second {
		t.Fatalf("GracefulShutdownTimeout = %v, want a bound well under 30s", opts.GracefulShutdownTimeout)
	}
	if !opts.LeaderElectionReleaseOnCancel {
		t.Fatal("the lease is not released on stop")
	}
}
