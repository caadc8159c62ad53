// Package v1alpha1 holds the linkerdca.io/v1alpha1 API: the LinkerdCAIssuer
// and LinkerdCAClusterIssuer kinds that a cert-manager Certificate names in its
// issuerRef to get a Linkerd identity issuer certificate.
//
// +kubebuilder:object:generate=true
// +groupName=linkerdca.io
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the group and version of this API.
	GroupVersion = schema.GroupVersion{Group: "linkerdca.io", Version: "v1alpha1"}

	// SchemeBuilder registers the kinds of this API with a runtime.Scheme.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds the kinds of this API to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &LinkerdCAIssuer{}, &LinkerdCAIssuerList{}, &LinkerdCAClusterIssuer{}, &LinkerdCAClusterIssuerList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
