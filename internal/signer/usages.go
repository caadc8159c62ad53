package signer

import (
	"crypto/x509"
	"fmt"
	"slices"
	"strings"

	apiutil "github.com/cert-manager/cert-manager/pkg/api/util"
	"github.com/cert-manager/cert-manager/pkg/util/pki"
)

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
