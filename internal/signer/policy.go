// Package signer holds the Linkerd signing policy and the x509 signing that
// follows it. It is pure: no Kubernetes client, no controller library, no
// clock of its own, so every rule can be proven with table tests and fuzzing.
package signer

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/asn1"
	"fmt"
	"slices"
	"strings"
	"time"

	apiutil "github.com/cert-manager/cert-manager/pkg/api/util"
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
	// Namespace is the request's namespace; empty for a Kubernetes
	// CertificateSigningRequest, which is cluster-scoped.
	Namespace string
	// Requester is the user who made a Kubernetes CertificateSigningRequest.
	Requester string
	// CSR is the PEM certificate signing request.
	CSR         []byte
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
)

func refuse(rule, format string, args ...any) error {
	return &Refusal{Rule: rule, Reason: fmt.Sprintf(format, args...)}
}

// The usages Linkerd needs of its issuer: to sign proxy
// certificates (cert sign), CRLs, and — because proxies verify with webpki,
// which requires every CA carrying extended key usages to allow both — server
// and client auth.
var (
	requiredKeyUsages    = []x509.KeyUsage{x509.KeyUsageCertSign, x509.KeyUsageCRLSign}
	requiredExtKeyUsages = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	optionalKeyUsages    = x509.KeyUsageDigitalSignature
)

const (
	usagesNeeded  = "a Linkerd identity issuer needs cert sign, crl sign, server auth, client auth"
	usagesAllowed = "a Linkerd identity issuer may have only cert sign, crl sign, server auth, client auth and digital signature"
)

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

// checkUsages allows exactly what Linkerd needs, plus digital signature at
// most, and a CSR that encodes usages must agree with the request.
func (p Policy) checkUsages(r *request) error {
	req := r.Request
	var missing, extra []string
	for _, u := range requiredKeyUsages {
		if req.KeyUsage&u == 0 {
			missing = append(missing, usageNames(u, nil)...)
		}
	}
	for _, u := range requiredExtKeyUsages {
		if !slices.Contains(req.ExtKeyUsage, u) {
			missing = append(missing, usageNames(0, []x509.ExtKeyUsage{u})...)
		}
	}
	if len(missing) > 0 {
		return refuse(RuleUsages, "missing %s; %s", quoteAll(missing), usagesNeeded)
	}
	allowedKU := optionalKeyUsages
	for _, u := range requiredKeyUsages {
		allowedKU |= u
	}
	var extraEKU []x509.ExtKeyUsage
	for _, u := range req.ExtKeyUsage {
		if !slices.Contains(requiredExtKeyUsages, u) {
			extraEKU = append(extraEKU, u)
		}
	}
	extra = usageNames(req.KeyUsage&^allowedKU, extraEKU)
	if len(extra) > 0 {
		return refuse(RuleUsages, "%s not allowed; %s", quoteAll(extra), usagesAllowed)
	}
	if len(r.fromCSR.UnknownExtKeyUsage) > 0 {
		return refuse(RuleUsages, "the CSR asks for extended key usages %v not known here; %s", r.fromCSR.UnknownExtKeyUsage, usagesAllowed)
	}
	if err := pki.CertificateTemplateValidateAndOverrideKeyUsages(req.KeyUsage, req.ExtKeyUsage)(r.csr, r.fromCSR); err != nil {
		return refuse(RuleUsages, "the CSR contradicts the request's usages (%v); regenerate the CSR", err)
	}
	return nil
}

// usageNames spells usages the way a Certificate's spec.usages does.
func usageNames(ku x509.KeyUsage, eku []x509.ExtKeyUsage) []string {
	var names []string
	for _, u := range apiutil.KeyUsageStrings(ku) {
		names = append(names, string(u))
	}
	for _, u := range apiutil.ExtKeyUsageStrings(eku) {
		names = append(names, string(u))
	}
	return names
}

func quoteAll(s []string) string {
	q := make([]string, len(s))
	for i, v := range s {
		q[i] = fmt.Sprintf("%q", v)
	}
	return strings.Join(q, ", ")
}

// oidCommonName is the X.520 commonName attribute type.
var oidCommonName = asn1.ObjectIdentifier{2, 5, 4, 3}

// checkSubject allows only the subject CN=<expected>. Linkerd's identity
// service checks nothing else, so anything else would only be a surprise.
func (p Policy) checkSubject(r *request) error {
	csr := r.csr
	want := p.CommonName()
	for _, attr := range csr.Subject.Names {
		if !attr.Type.Equal(oidCommonName) {
			return refuse(RuleSubject, "attribute %s=%v is not allowed; the subject must be only CN=%s (remove spec.subject from the Certificate)", attributeName(attr.Type), attr.Value, want)
		}
	}
	if n := countCommonNames(csr); n != 1 || csr.Subject.CommonName != want {
		got := fmt.Sprintf("common name %q", csr.Subject.CommonName)
		if n == 0 {
			got = "no common name"
		} else if n > 1 {
			got = fmt.Sprintf("%d common names", n)
		}
		return refuse(RuleSubject, "%s; the common name must be %q, identity.<controlPlaneNamespace>.<trustDomain> of this issuer (set spec.commonName on the Certificate)", got, want)
	}
	return nil
}

func countCommonNames(csr *x509.CertificateRequest) int {
	n := 0
	for _, attr := range csr.Subject.Names {
		if attr.Type.Equal(oidCommonName) {
			n++
		}
	}
	return n
}

var attributeNames = map[string]string{
	"2.5.4.6": "C", "2.5.4.10": "O", "2.5.4.11": "OU", "2.5.4.7": "L", "2.5.4.8": "ST",
	"2.5.4.9": "STREET", "2.5.4.17": "POSTALCODE", "2.5.4.5": "SERIALNUMBER",
	"1.2.840.113549.1.9.1": "emailAddress",
}

func attributeName(oid asn1.ObjectIdentifier) string {
	if n, ok := attributeNames[oid.String()]; ok {
		return n
	}
	return oid.String()
}

// oidSubjectAltName is the X.509 subjectAltName extension.
var oidSubjectAltName = asn1.ObjectIdentifier{2, 5, 29, 17}

// checkSANs allows no name but the common name itself, as a DNS name. Go's CSR
// parser drops SAN types it does not model (otherName and friends), so the
// extension is read with cert-manager's full GeneralNames decoder.
func (p Policy) checkSANs(r *request) error {
	want := p.CommonName()
	allowed := fmt.Sprintf("the only subject alternative name allowed is DNS name %q (remove spec.dnsNames, ipAddresses, uris and emailAddresses from the Certificate)", want)
	for _, ext := range r.csr.Extensions {
		if !ext.Id.Equal(oidSubjectAltName) {
			continue
		}
		names, err := pki.UnmarshalSANs(ext.Value)
		if err != nil {
			return refuse(RuleSANs, "cannot decode the CSR's subject alternative names (%v)", err)
		}
		for _, dns := range names.DNSNames {
			if dns != want {
				return refuse(RuleSANs, "DNS name %q is not allowed; %s", dns, allowed)
			}
		}
		if len(names.DNSNames) > 1 {
			return refuse(RuleSANs, "DNS name %q appears %d times; %s", want, len(names.DNSNames), allowed)
		}
		names.DNSNames = nil
		if !names.Empty() {
			return refuse(RuleSANs, "%s is not allowed; %s", describeOtherSANs(names), allowed)
		}
	}
	return nil
}

func describeOtherSANs(n pki.GeneralNames) string {
	switch {
	case len(n.IPAddresses) > 0:
		return fmt.Sprintf("IP address %s", n.IPAddresses[0])
	case len(n.RFC822Names) > 0:
		return fmt.Sprintf("email address %q", n.RFC822Names[0])
	case len(n.UniformResourceIdentifiers) > 0:
		return fmt.Sprintf("URI %q", n.UniformResourceIdentifiers[0])
	case len(n.OtherNames) > 0:
		return fmt.Sprintf("otherName %s", n.OtherNames[0].TypeID)
	default:
		return "a directory, X.400, EDI party or registered-ID name"
	}
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
