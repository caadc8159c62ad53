// Package rotator is the rotation controller: for each issuer with
// spec.rotation it observes the cluster (the anchor Secrets, Linkerd's
// trust roots, the meshed pods, the identity issuer), has
// internal/rotation decide, and acts: it writes the trusted set, the
// issuer's status.rotation, re-issues the identity issuer and restarts
// workloads. It holds no state of its own between reconciles.
package rotator

import (
	"flag"
	"fmt"
	"time"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/rotation"
)

// Options are the rotation controller's flags.
type Options struct {
	Enabled bool
	// Multicluster reads the linked peers issuers name
	// (spec.rotation.peers), through their link Secrets.
	Multicluster bool
	rotation.Config
}

// BindFlags registers the options with their defaults.
func (o *Options) BindFlags(fs *flag.FlagSet) {
	fs.BoolVar(&o.Enabled, "rotation", false, "Run the trust anchor rotation controller for issuers with spec.rotation: it keeps their trusted set and signs under a new root only once every meshed pod holds it. Needs list/watch on pods cluster-wide.")
	fs.BoolVar(&o.Restarts, "rotation-restarts", false, "Restart the workloads whose pods do not hold a new root yet: the control plane first, each workload at most once per rotation. Needs get, list, watch and patch on Deployments, StatefulSets and DaemonSets.")
	fs.IntVar(&o.MaxConcurrentRestarts, "rotation-max-concurrent-restarts", 2, "Workloads restarting at once during a rotation.")
	fs.DurationVar(&o.RestartTimeout, "rotation-restart-timeout", 10*time.Minute, "How long a restarted workload may keep pods without the new root before it is named stalled and frees its restart slot for the others.")
	fs.BoolVar(&o.Multicluster, "multicluster", false, "Read the linked clusters' issuers that spec.rotation.peers names, through the kubeconfig in each link Secret (cluster resource namespace): their roots are trusted here, and no root is switched to or retired until every linked cluster has propagated or drained it. Needs --rotation.")
	fs.DurationVar(&o.LeafLifetime, "proxy-certificate-lifetime", 24*time.Hour, "How long Linkerd's proxy certificates live (identity.issuer.issuanceLifetime): a retired root stays trusted this long after the switch, unless every meshed pod restarted since.")
}

// Complete checks the options.
func (o *Options) Complete() error {
	if o.Restarts && !o.Enabled {
		return fmt.Errorf("--rotation-restarts needs --rotation")
	}
	if o.Multicluster && !o.Enabled {
		return fmt.Errorf("--multicluster needs --rotation")
	}
	if o.MaxConcurrentRestarts < 1 {
		return fmt.Errorf("--rotation-max-concurrent-restarts must be at least 1, got %d", o.MaxConcurrentRestarts)
	}
	if o.RestartTimeout <= 0 {
		return fmt.Errorf("--rotation-restart-timeout must be positive, got %s", o.RestartTimeout)
	}
	if o.LeafLifetime <= 0 {
		return fmt.Errorf("--proxy-certificate-lifetime must be positive, got %s", o.LeafLifetime)
	}
	return nil
}
