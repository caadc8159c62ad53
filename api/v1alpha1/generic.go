package v1alpha1

import (
	issuerapi "github.com/cert-manager/issuer-lib/api/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// The kinds of this API group, as issuerRefs and metrics name them.
const (
	IssuerKind        = "LinkerdCAIssuer"
	ClusterIssuerKind = "LinkerdCAClusterIssuer"
)

// ConditionTrustAnchorTrusted is the issuer condition, beside issuer-lib's
// Ready, that says whether the issuer's trust anchor is among the roots
// Linkerd's identity service trusts.
const ConditionTrustAnchorTrusted = "TrustAnchorTrusted"

// GenericIssuer is what LinkerdCAIssuer and LinkerdCAClusterIssuer share, as
// cert-manager's GenericIssuer is for its Issuer and ClusterIssuer: code that
// handles both kinds asks the object, never switches on its type.
//
// +kubebuilder:object:generate=false
type GenericIssuer interface {
	issuerapi.Issuer
	// GetSpec is the issuer's spec.
	GetSpec() *IssuerSpec
	// GetStatus is the issuer's status.
	GetStatus() *IssuerStatus
	// IssuerKind is the issuer's kind, whether or not TypeMeta is set.
	IssuerKind() string
	// IsClusterScoped is true for the cluster-scoped kind.
	IsClusterScoped() bool
	// NewList is an empty list of the issuer's kind (a client.ObjectList).
	NewList() ObjectList
	// New is an empty object of the issuer's kind.
	New() GenericIssuer
}

// ObjectList is a list of API objects, as controller-runtime's
// client.ObjectList, without this package depending on it.
//
// +kubebuilder:object:generate=false
type ObjectList interface {
	metav1.ListInterface
	runtime.Object
}

// GetSpec is the issuer's spec.
func (i *LinkerdCAIssuer) GetSpec() *IssuerSpec { return &i.Spec }

// GetStatus is the issuer's status.
func (i *LinkerdCAIssuer) GetStatus() *IssuerStatus { return &i.Status }

// IssuerKind is LinkerdCAIssuer.
func (i *LinkerdCAIssuer) IssuerKind() string { return IssuerKind }

// IsClusterScoped is false: a LinkerdCAIssuer lives in a namespace.
func (i *LinkerdCAIssuer) IsClusterScoped() bool { return false }

// NewList is an empty LinkerdCAIssuerList.
func (i *LinkerdCAIssuer) NewList() ObjectList { return &LinkerdCAIssuerList{} }

// New is an empty LinkerdCAIssuer.
func (i *LinkerdCAIssuer) New() GenericIssuer { return &LinkerdCAIssuer{} }

// GetSpec is the issuer's spec.
func (i *LinkerdCAClusterIssuer) GetSpec() *IssuerSpec { return &i.Spec }

// GetStatus is the issuer's status.
func (i *LinkerdCAClusterIssuer) GetStatus() *IssuerStatus { return &i.Status }

// IssuerKind is LinkerdCAClusterIssuer.
func (i *LinkerdCAClusterIssuer) IssuerKind() string { return ClusterIssuerKind }

// IsClusterScoped is true: a LinkerdCAClusterIssuer has no namespace.
func (i *LinkerdCAClusterIssuer) IsClusterScoped() bool { return true }

// NewList is an empty LinkerdCAClusterIssuerList.
func (i *LinkerdCAClusterIssuer) NewList() ObjectList { return &LinkerdCAClusterIssuerList{} }

// New is an empty LinkerdCAClusterIssuer.
func (i *LinkerdCAClusterIssuer) New() GenericIssuer { return &LinkerdCAClusterIssuer{} }

var (
	_ GenericIssuer = &LinkerdCAIssuer{}
	_ GenericIssuer = &LinkerdCAClusterIssuer{}
)

// NewIssuerOfKind is an empty issuer of the kind an issuerRef names, or
// nil when the kind is not this group's.
func NewIssuerOfKind(kind string) GenericIssuer {
	for _, iss := range []GenericIssuer{&LinkerdCAIssuer{}, &LinkerdCAClusterIssuer{}} {
		if iss.IssuerKind() == kind {
			return iss.New()
		}
	}
	return nil
}
