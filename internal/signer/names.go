package signer

import (
	"crypto/x509"
	"encoding/asn1"
	"fmt"

	"github.com/cert-manager/cert-manager/pkg/util/pki"
)

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
