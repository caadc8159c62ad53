package signer

import (
	"crypto/x509"
	"time"
)

// checkValidity refuses a certificate Linkerd could not use for long: one
// that ends at or before it starts (a validity start older than a replaced
// anchor's NotBefore), or that has less than the policy's MinDuration left
// from now, give or take ClockSkew (a start long past, or an anchor about to
// expire). Issuing it
// would hand Linkerd an issuer that is expired, or expires before
// cert-manager's renewal comes round.
func checkValidity(p Policy, anchor *Anchor, req Request, tmpl *x509.Certificate, now time.Time) error {
	start := req.Start
	if start.IsZero() {
		start = now
	}
	if !tmpl.NotAfter.After(tmpl.NotBefore) {
		return refuse(RuleValidity, "the certificate would end (%s, the validity start %s + %s) at or before it begins (%s, the trust anchor's NotBefore): the anchor was replaced after this request's validity started. Have cert-manager make a new request (cmctl renew)",
			stamp(tmpl.NotAfter), stamp(start), req.Duration, stamp(tmpl.NotBefore))
	}
	// The signing itself takes a moment after the start: a request for
	// exactly minDuration is not refused for it, within ClockSkew.
	if left := tmpl.NotAfter.Sub(now); left < p.MinDuration-ClockSkew {
		why := "its validity started at " + stamp(start) + ", " + now.Sub(start).Round(time.Second).String() + " ago"
		if tmpl.NotAfter.Equal(anchor.Certificate.NotAfter) {
			why = "the trust anchor expires at " + stamp(anchor.Certificate.NotAfter) + "; rotate it (docs/rotation.md)"
		}
		return refuse(RuleValidity, "the certificate would be valid for %s more (until %s), less than this issuer's minimum %s (spec.minDuration): %s. Have cert-manager make a new request (cmctl renew)",
			left.Round(time.Second), stamp(tmpl.NotAfter), p.MinDuration, why)
	}
	return nil
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }
