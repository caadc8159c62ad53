package rotator

import (
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"

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
	st.TrustRootsMissing = nil
	b, err := json.Marshal(st)
	if err != nil {
		return "", fmt.Errorf("recording the rotation beside the trusted set: %w", err)
	}
	return string(b), nil
}
