package rotator

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
)

// The trusted set outlives its issuer (a Helm reinstall or an Argo CD
// replace deletes and re-creates the issuer; garbage collection would take
// the set with it, and Linkerd's trust roots with the set). It says whose
// it is and where the rotation stood, so that the issuer created again
// resumes it, where the identity issuer in place agrees.
const (
	// OwnerAnnotation names the one issuer that writes a trusted set:
	// <kind>/<name> for a cluster issuer, <kind>/<namespace>/<name> else.
	OwnerAnnotation = "linkerdca.io/issuer"
	// RecordAnnotation is the rotation status as last decided (JSON),
	// without its counts.
	RecordAnnotation = "linkerdca.io/rotation"
)

func ownerName(iss v1alpha1.GenericIssuer) string {
	if iss.GetNamespace() == "" {
		return iss.IssuerKind() + "/" + iss.GetName()
	}
	return iss.IssuerKind() + "/" + iss.GetNamespace() + "/" + iss.GetName()
}

// ownedByAnother is the issuer that writes cm, when not iss. A set from
// before the annotation is its owner reference's.
func ownedByAnother(cm *corev1.ConfigMap, iss v1alpha1.GenericIssuer) string {
	if cm == nil {
		return ""
	}
	if owner, ok := cm.Annotations[OwnerAnnotation]; ok {
		if owner != ownerName(iss) {
			return owner
		}
		return ""
	}
	for _, ref := range cm.OwnerReferences {
		if ref.APIVersion == v1alpha1.GroupVersion.String() && (ref.Kind != iss.IssuerKind() || ref.Name != iss.GetName()) {
			return ref.Kind + "/" + ref.Name
		}
	}
	return ""
}

// ownerLives says whether the issuer an owner annotation names still
// exists. A set whose writer is gone (deleted for good, or renamed by a
// reinstall) is taken over: the new writer rebuilds its state from the
// cluster, and adopts the record only where the identity issuer in place
// agrees with it.
func ownerLives(ctx context.Context, c client.Reader, owner string) (bool, error) {
	parts := strings.Split(owner, "/")
	iss := v1alpha1.NewIssuerOfKind(parts[0])
	if iss == nil || len(parts) < 2 || len(parts) > 3 {
		return true, nil // not ours to judge: keep refusing
	}
	key := client.ObjectKey{Name: parts[len(parts)-1]}
	if len(parts) == 3 {
		key.Namespace = parts[1]
	}
	switch err := c.Get(ctx, key, iss); {
	case apierrors.IsNotFound(err):
		return false, nil
	case err != nil:
		return true, err
	}
	return true, nil
}

func recordOf(cm *corev1.ConfigMap) *v1alpha1.RotationStatus {
	raw, ok := cm.Annotations[RecordAnnotation]
	if !ok {
		return nil
	}
	var st v1alpha1.RotationStatus
	if json.Unmarshal([]byte(raw), &st) != nil {
		return nil
	}
	return &st
}

func record(st v1alpha1.RotationStatus) (string, error) {
	st.PodsBehind, st.PodsTotal, st.Behind, st.Unrestartable, st.Blocked, st.Restarting, st.Message = 0, 0, nil, nil, nil, 0, ""
	// Restarted, and the peer root it may be for, are left out: up to 1000
	// entries, and after a reinstall the workloads' own annotations say
	// which were restarted.
	st.TrustRootsMissing, st.Restarted, st.PeerRoot = nil, nil, ""
	// What was read of linked clusters, and how far each root reached the
	// pods here, change with every read and every pod: kept beside the
	// trusted set, they would rewrite it, and wake this controller, each
	// time. A lost status reads them again (a root of a peer it cannot read
	// then stays, as the trusted set holds it: it drains).
	st.Peers, st.Propagation = nil, nil
	b, err := json.Marshal(st)
	if err != nil {
		return "", fmt.Errorf("recording the rotation beside the trusted set: %w", err)
	}
	return string(b), nil
}
