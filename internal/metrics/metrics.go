// Package metrics holds the issuer's Prometheus metrics, served on the
// controller-runtime metrics endpoint. Labels name issuers and refusal
// rules, never requests, so cardinality stays with the number of issuers.
package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

var (
	signed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "linkerd_ca_issuer_requests_signed_total",
		Help: "Requests (CertificateRequests and CertificateSigningRequests) signed, by issuer.",
	}, []string{"issuer_kind", "issuer"})

	refused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "linkerd_ca_issuer_requests_refused_total",
		Help: "Requests refused by the signing policy, by issuer and by the rule that refused them.",
	}, []string{"issuer_kind", "issuer", "rule"})

	signingSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "linkerd_ca_issuer_signing_duration_seconds",
		Help:    "Time to apply the policy to a request and sign it.",
		Buckets: prometheus.ExponentialBuckets(0.0001, 2, 14), // 0.1 ms to ~0.8 s
	}, []string{"issuer_kind"})

	anchorExpiry = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "linkerd_ca_issuer_trust_anchor_expiry_timestamp_seconds",
		Help: "When the issuer's trust anchor expires (Unix time).",
	}, []string{"issuer_kind", "issuer"})

	ready = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "linkerd_ca_issuer_ready",
		Help: "1 when the issuer's last check passed (it can sign), 0 when it did not.",
	}, []string{"issuer_kind", "issuer"})

	issuedExpiry = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "linkerd_ca_issuer_issued_certificate_expiry_timestamp_seconds",
		Help: "When the certificate the issuer signed last expires (Unix time).",
	}, []string{"issuer_kind", "issuer"})
)

func init() {
	ctrlmetrics.Registry.MustRegister(signed, refused, signingSeconds, anchorExpiry, issuedExpiry, ready)
}

// Signed records a signed request and its certificate's expiry.
func Signed(kind, issuer string, took time.Duration, notAfter time.Time) {
	signed.WithLabelValues(kind, issuer).Inc()
	signingSeconds.WithLabelValues(kind).Observe(took.Seconds())
	issuedExpiry.WithLabelValues(kind, issuer).Set(float64(notAfter.Unix()))
}

// IdentityIssuerExpiry records when the identity issuer in place, the
// certificate a rotating issuer signed last, expires: read from the
// cluster, it survives a restart that signing alone would not (a held
// rotation signs nothing).
func IdentityIssuerExpiry(kind, issuer string, notAfter time.Time) {
	issuedExpiry.WithLabelValues(kind, issuer).Set(float64(notAfter.Unix()))
}

// Refused records a request the policy refused under rule.
func Refused(kind, issuer, rule string) {
	refused.WithLabelValues(kind, issuer, rule).Inc()
}

// AnchorExpiry records when an issuer's trust anchor expires.
func AnchorExpiry(kind, issuer string, notAfter time.Time) {
	anchorExpiry.WithLabelValues(kind, issuer).Set(float64(notAfter.Unix()))
}

// Ready records whether an issuer's last check passed.
func Ready(kind, issuer string, ok bool) {
	v := 0.0
	if ok {
		v = 1
	}
	ready.WithLabelValues(kind, issuer).Set(v)
}

// Forget deletes every series of a deleted issuer.
func Forget(kind, issuer string) {
	labels := map[string]string{"issuer_kind": kind, "issuer": issuer}
	signed.DeletePartialMatch(labels)
	refused.DeletePartialMatch(labels)
	anchorExpiry.DeletePartialMatch(labels)
	issuedExpiry.DeletePartialMatch(labels)
	ready.DeletePartialMatch(labels)
	forgetRotation(labels)
}
