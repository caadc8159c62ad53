// Package signer holds the Linkerd signing policy and the x509 signing that
// follows it. It is pure: no Kubernetes client, no controller library, no
// clock of its own, so every rule can be proven with table tests and fuzzing.
package signer

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"fmt"
	"slices"
	"time"

	"github.com/cert-manager/cert-manager/pkg/util/pki"
)

// Policy is what one issuer allows: the identity issuer of one Linkerd
// control plane, for a bounded lifetime, to the requesters that may have it.
type Policy struct {
	TrustDomain           string
	ControlPlaneNamespace string
	MinDuration           time.Duration
	MaxDuration           time.Duration
	// Namespace, when set, is the only namespace a request may come from. A
	// cluster issuer sets it to ControlPlaneNamespace; a namespaced issuer
	// leaves it empty, since cert-manager only routes it requests from its
	// own namespace, where its anchor Secret already is.
	Namespace string
	// Requesters are the users whose Kubernetes CertificateSigningRequests
	// may be signed. Such a request has no namespace to hold it to, so
	// nobody else's is.
	Requesters []string
}

// Request is what a CertificateRequest or a Kubernetes
// CertificateSigningRequest asks for, as the policy reads it.
type Request struct {
	// ID identifies the request (its UID): the same request signed again
	// gets the same certificate. Empty, every signature is new.
	ID string
	// Namespace is the request's namespace; empty for a Kubernetes
	// CertificateSigningRequest, which is cluster-scoped.
	Namespace string
	// Requester is the user who made a Kubernetes CertificateSigningRequest.
	Requester string
	// CSR is the PEM certificate signing request.
	CSR []byte
	// Start is when the certificate's validity starts: a time recorded on
	// the request at its first signing attempt, so that a request that
	// waited (for approval, or for its issuer to be Ready) still gets its
	// whole duration, and signing it again yields the same certificate.
	// Zero: the signing time.
	Start       time.Time
	Duration    time.Duration
	IsCA        bool
	KeyUsage    x509.KeyUsage
	ExtKeyUsage []x509.ExtKeyUsage
}

// CommonName is the subject Linkerd's identity service expects of its
// issuer: identity.<controlPlaneNamespace>.<trustDomain>.
func (p Policy) CommonName() string {
	return "identity." + p.ControlPlaneNamespace + "." + p.TrustDomain
}

// Refusal is a request the policy will not sign. Rule names the policy rule
// (a stable word, usable as a metric label); Reason says what was asked and
// what is allowed. A refusal never changes on retry, so the controller fails
// the request instead of retrying it.
type Refusal struct {
	Rule   string
	Reason string
}

func (r *Refusal) Error() string { return r.Rule + ": " + r.Reason }

// The rules, in the order they are checked.
const (
	RuleNamespace = "namespace"
	RuleRequester = "requester"
	RuleCSR       = "csr"
	RuleKey       = "key"
	RuleIsCA      = "isCA"
	RuleUsages    = "usages"
	RuleSubject   = "subject"
	RuleSANs      = "subjectAltNames"
	RuleDuration  = "duration"
	// RuleValidity refuses a certificate that would be born expired,
	// inverted or shorter-lived than minDuration (validity.go).
	RuleValidity = "validity"
)

func refuse(rule, format string, args ...any) error {
	return &Refusal{Rule: rule, Reason: fmt.Sprintf(format, args...)}
}

// Check applies the policy to a request and returns its parsed CSR when every
// rule holds. Any other result is a *Refusal.
func (p Policy) Check(req Request) (*x509.CertificateRequest, error) {
	if err := p.checkNamespace(req); err != nil {
		return nil, err
	}
	csr, err := pki.DecodeX509CertificateRequestBytes(req.CSR)
	if err != nil {
		return nil, refuse(RuleCSR, "cannot decode the PEM certificate signing request (%v); it must be one PEM block of type CERTIFICATE REQUEST", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, refuse(RuleCSR, "the signature does not verify (%v); the CSR must be signed by the private key it carries", err)
	}
	// The CSR's own extensions, read the way cert-manager reads them, to
	// catch a CSR that contradicts its request.
	fromCSR, err := pki.CertificateTemplateFromCSR(csr)
	if err != nil {
		return nil, refuse(RuleCSR, "cannot read the CSR's extensions (%v)", err)
	}
	r := &request{csr: csr, fromCSR: fromCSR, Request: req}
	for _, rule := range []func(*request) error{
		p.checkKey, p.checkIsCA, p.checkUsages, p.checkSubject, p.checkSANs, p.checkDuration,
	} {
		if err := rule(r); err != nil {
			return nil, err
		}
	}
	return csr, nil
}

// request is what the rules look at: the request's fields, its CSR, and the
// CSR's extensions decoded.
type request struct {
	Request
	csr     *x509.CertificateRequest
	fromCSR *x509.Certificate
}

// checkNamespace refuses a request from any namespace but the one Linkerd's
// control plane reads its issuer from, and a Kubernetes CSR from anyone not
// named. The identity issuer is a CA under the mesh root: signed anywhere
// else, it would let whoever can create a Certificate there impersonate
// every meshed workload.
func (p Policy) checkNamespace(r Request) error {
	if r.Namespace == "" {
		if slices.Contains(p.Requesters, r.Requester) {
			return nil
		}
		named := "none is named"
		if len(p.Requesters) > 0 {
			named = "named: " + quoteAll(p.Requesters)
		}
		return refuse(RuleRequester, "Kubernetes CertificateSigningRequest from %q; such a request has no namespace to hold it to Linkerd's control plane, so only the requesters named in --kubernetes-csr-requesters (Helm value kubernetesCSR.requesters) are signed (%s). Use a cert-manager Certificate in namespace %q instead", r.Requester, named, p.ControlPlaneNamespace)
	}
	if p.Namespace == "" || r.Namespace == p.Namespace {
		return nil
	}
	return refuse(RuleNamespace, "the request comes from namespace %q; this issuer signs only for namespace %q, where Linkerd's control plane reads its identity issuer (spec.controlPlaneNamespace), because an identity issuer is a CA under the mesh root that could impersonate every meshed workload. Create the Certificate in namespace %q", r.Namespace, p.Namespace, p.Namespace)
}

// checkKey refuses any key but ECDSA P-256: Linkerd's identity service signs
// every proxy certificate with ECDSA-SHA256 and `linkerd check` requires
// P-256.
func (p Policy) checkKey(r *request) error {
	csr := r.csr
	if k, ok := csr.PublicKey.(*ecdsa.PublicKey); ok && k.Curve == elliptic.P256() {
		return nil
	}
	return refuse(RuleKey, "%s is not allowed; a Linkerd identity issuer key must be ECDSA P-256 (set spec.privateKey.algorithm: ECDSA and size: 256 on the Certificate)", DescribeKey(csr.PublicKey))
}

// checkIsCA refuses a request that is not for a CA, or whose CSR encodes
// basic constraints that disagree: the issuer signs proxy certificates.
func (p Policy) checkIsCA(r *request) error {
	if !r.IsCA {
		return refuse(RuleIsCA, "the request has isCA false; a Linkerd identity issuer must be a CA (set spec.isCA: true on the Certificate)")
	}
	if err := pki.CertificateTemplateValidateAndOverrideBasicConstraints(true, nil)(r.csr, r.fromCSR); err != nil {
		return refuse(RuleIsCA, "the CSR contradicts the request's isCA true (%v); regenerate the CSR as a CA request", err)
	}
	return nil
}

// checkDuration allows a requested lifetime within the issuer's bounds.
func (p Policy) checkDuration(req *request) error {
	bounds := fmt.Sprintf("this issuer allows %s to %s (its spec.minDuration and spec.maxDuration); set spec.duration on the Certificate within them", p.MinDuration, p.MaxDuration)
	switch {
	case req.Duration < p.MinDuration:
		return refuse(RuleDuration, "%s is shorter than the minimum; %s", req.Duration, bounds)
	case req.Duration > p.MaxDuration:
		return refuse(RuleDuration, "%s is longer than the maximum; %s", req.Duration, bounds)
	}
	return nil
}

// SubjectIsIssuers reports whether an anchor's subject is exactly the one
// the policy gives the identity issuer, CN=<CommonName>: the original
// guide's root was named so.
func (p Policy) SubjectIsIssuers(anchor *x509.Certificate) bool {
	return len(anchor.Subject.Names) == 1 && anchor.Subject.CommonName == p.CommonName()
}
