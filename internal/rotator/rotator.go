package rotator

import (
	"context"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/controller"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/metrics"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/peers"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/podtrust"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/rotation"
)

// FieldOwner manages status.rotation, the Rotation condition and the
// trusted set.
const FieldOwner = controller.FieldOwner + "-rotation"

// Reconciler rotates one issuer kind's trust anchors.
type Reconciler struct {
	Kind      v1alpha1.GenericIssuer
	Client    client.Client
	APIReader client.Reader
	// Signer says where an issuer's anchor Secret and trust roots are.
	Signer   *controller.Signer
	Recorder events.EventRecorder
	Clock    clock.PassiveClock
	Config   rotation.Config
	// Pods lists meshed pods (IndexedPods); nil: a List through Client.
	Pods PodLister
	// Peers reads linked clusters' issuers; nil with --multicluster off.
	Peers *peers.Reader

	throttle throttle
}

// resync re-observes a rotation in progress that no event may move: a
// workload that rolled out, an event of Linkerd's identity service.
const resync = 10 * time.Second

// resyncFor backs off where nothing unwatched moves the rotation: pods,
// the trusted set and the trust roots are watched, and a drain's end is
// requeued for. Only a switch (identity's events) and restarts (rollouts,
// their timeout) need the short resync; a 24 h drain does not re-read the
// cluster every 10 s.
func resyncFor(phase v1alpha1.RotationPhase, restarts bool) time.Duration {
	switch {
	case phase == v1alpha1.RotationSwitching:
		return resync
	case restarts && (phase == v1alpha1.RotationPropagating || phase == v1alpha1.RotationHeld):
		return resync
	}
	return 5 * time.Minute
}

// Reconcile observes, decides and acts, in the order that keeps the
// invariants if it stops between any two steps: the trusted set first (a
// root is trusted before anything uses it), then the status (the root
// signed under), then the re-issue and the restarts.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	iss := r.Kind.New()
	if err := r.Client.Get(ctx, req.NamespacedName, iss); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if iss.GetSpec().Rotation == nil || !iss.GetDeletionTimestamp().IsZero() {
		return ctrl.Result{}, nil
	}
	if ns := iss.GetNamespace(); ns != "" && controller.PolicyFor(iss, nil).ControlPlaneNamespace != ns {
		// Its restarts and its status would reach a control plane that is
		// not its namespace's, for a root of its own choosing.
		return ctrl.Result{}, r.refuse(ctx, iss, "ControlPlaneNotInNamespace", fmt.Sprintf(
			"a rotating LinkerdCAIssuer rotates only the control plane of its own namespace: set spec.controlPlaneNamespace to %q, or rotate %q's roots with a LinkerdCAClusterIssuer", ns, controller.PolicyFor(iss, nil).ControlPlaneNamespace))
	}
	if cp := controller.PolicyFor(iss, nil).ControlPlaneNamespace; len(r.Signer.WatchNamespaces) > 0 && !slices.Contains(r.Signer.WatchNamespaces, cp) {
		return ctrl.Result{}, r.refuse(ctx, iss, "ControlPlaneNotWatched", fmt.Sprintf(
			"namespace %q (spec.controlPlaneNamespace) is not watched, so its trust roots, identity issuer and pods cannot be read: add it to --watch-namespaces (Helm value watchNamespaces)", cp))
	}
	o, err := r.observe(ctx, iss)
	if err != nil {
		return ctrl.Result{}, err
	}
	if owner := ownedByAnother(o.trusted, iss); owner != "" {
		lives, err := ownerLives(ctx, r.Client, owner)
		if err != nil {
			return ctrl.Result{}, err
		}
		if lives {
			return ctrl.Result{}, r.refuse(ctx, iss, "TrustedSetConflict", fmt.Sprintf(
				"ConfigMap %s is the trusted set of %s, and a trusted set has one writer: give this issuer its own (spec.rotation.trustedRootsConfigMapName) or remove spec.rotation from one of them",
				r.trustedRef(iss), owner))
		}
		log.FromContext(ctx).Info("taking over a trusted set whose issuer is gone", "trustedSet", r.trustedRef(iss).String(), "previousIssuer", owner)
	}
	if o.Anchor == "" && o.Prev == nil {
		return ctrl.Result{RequeueAfter: resync}, nil
	}
	if r.Config.Restarts {
		if err := r.observeWorkloads(ctx, o); err != nil {
			return ctrl.Result{}, err
		}
	}
	d := rotation.Decide(r.Config, o.Observed)
	if err := r.writeTrusted(ctx, iss, o, d.Trusted, d.Status); err != nil {
		return ctrl.Result{}, err
	}
	key := client.ObjectKeyFromObject(iss)
	if hold := r.throttle.wait(key, o.Prev, d.Status, o.Now); hold > 0 && len(d.Restart) == 0 && !d.Reissue {
		return ctrl.Result{RequeueAfter: hold}, nil
	}
	if err := r.applyStatus(ctx, iss, d.Status); err != nil {
		return ctrl.Result{}, err
	}
	r.throttle.wrote(key, o.Now)
	kind, name := controller.IssuerLabels(iss)
	var deadline time.Time
	if d.Status.Deadline != nil {
		deadline = d.Status.Deadline.Time
	}
	metrics.SetRotation(kind, name, string(d.Status.Phase), int(d.Status.PodsBehind), deadline)
	if !o.Identity.NotAfter.IsZero() {
		metrics.IdentityIssuerExpiry(kind, name, o.Identity.NotAfter)
	}
	if d.Event != nil {
		typ := corev1.EventTypeNormal
		if d.Event.Warning {
			typ = corev1.EventTypeWarning
		}
		r.Recorder.Eventf(iss, nil, typ, d.Event.Reason, "Rotate", "%s", d.Event.Detail)
	}
	if d.Reissue {
		if err := r.reissue(ctx, o); err != nil {
			return ctrl.Result{}, err
		}
	}
	for _, w := range d.Restart {
		root := d.Status.NextRoot
		if root == "" {
			root = d.Status.PeerRoot
		}
		if err := r.restart(ctx, w, root, restartedAt(d.Status, w)); err != nil {
			return ctrl.Result{}, err
		}
		metrics.Restarted(kind, name)
	}
	var after time.Duration
	switch {
	case d.Status.PeerRoot != "":
		// Restarting for a peer's root: a workload resumed by hand changes
		// no pod, so nothing here would wake.
		after = resync
	case d.Status.Phase != v1alpha1.RotationStable:
		after = resyncFor(d.Status.Phase, r.Config.Restarts)
	}
	// Nothing here watches a linked cluster.
	if o.Linked && (after == 0 || after > peerResync(o)) {
		after = peerResync(o)
	}
	if d.RequeueAfter > 0 && (after == 0 || d.RequeueAfter < after) {
		after = d.RequeueAfter
	}
	return ctrl.Result{RequeueAfter: after}, nil
}

func (r *Reconciler) trustedRef(iss v1alpha1.GenericIssuer) types.NamespacedName {
	ref := r.Signer.AnchorSecret(iss)
	ref.Name = iss.GetSpec().Rotation.TrustedRootsConfigMapName
	if ref.Name == "" {
		ref.Name = v1alpha1.DefaultTrustedRootsConfigMap
	}
	return ref
}

// restart rolls a workload out again, as `kubectl rollout restart` does, by
// writing the root, and the time the restart was recorded, into its pod
// template: the same values again change nothing, so a restart made again
// after a crash (or read from a stale cache) is no second rollout.
func (r *Reconciler) restart(ctx context.Context, w podtrust.Workload, root string, at time.Time) error {
	obj, err := workloadObject(w)
	if err != nil {
		return err
	}
	obj.SetNamespace(w.Namespace)
	obj.SetName(w.Name)
	patch := fmt.Sprintf(`{"spec":{"template":{"metadata":{"annotations":{%q:%q,%q:%q}}}}}`, podtrust.RestartedForAnnotation, root,
		podtrust.RestartedAtAnnotation, at.UTC().Format(time.RFC3339))
	err = r.Client.Patch(ctx, obj, client.RawPatch(types.MergePatchType, []byte(patch)))
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// restartedAt is when the status records w's restart for the next root
// (every restart decided is recorded first).
func restartedAt(st v1alpha1.RotationStatus, w podtrust.Workload) time.Time {
	for _, rec := range st.Restarted {
		if rec.Workload == w.String() {
			return rec.At.Time
		}
	}
	return st.LastTransitionTime.Time
}
