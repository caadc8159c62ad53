package controller

import (
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"

	"k8s.io/client-go/tools/events"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// assertEvents checks that the recorder holds exactly one event per prefix,
// in order, and nothing else (no prefixes: no event at all).
func assertEvents(t *testing.T, rec *events.FakeRecorder, prefixes ...string) {
	t.Helper()
	var got []string
	for len(rec.Events) > 0 {
		got = append(got, <-rec.Events)
	}
	ok := len(got) == len(prefixes)
	for i := 0; ok && i < len(got); i++ {
		ok = strings.HasPrefix(got[i], prefixes[i])
	}
	if !ok {
		t.Errorf("events %q\nwant one each, and only, with the prefixes %q", got, prefixes)
	}
}

func decodeOne(t *testing.T, b []byte) *x509.Certificate {
	t.Helper()
	block, rest := pem.Decode(b)
	if block == nil || len(rest) != 0 {
		t.Fatalf("want exactly one PEM block, got %q", b)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// metricValue reads the series of an issuer (and refusal rule) from the
// controller-runtime registry the metrics endpoint serves; 0 when it does
// not exist yet.
func metricValue(t *testing.T, name, kind, issuer string, rule ...string) float64 {
	t.Helper()
	want := map[string]string{"issuer_kind": kind, "issuer": issuer}
	if len(rule) > 0 {
		want["rule"] = rule[0]
	}
	families, err := ctrlmetrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			if len(m.GetLabel()) != len(want) {
				continue
			}
			for _, l := range m.GetLabel() {
				if want[l.GetName()] != l.GetValue() {
					continue series
				}
			}
			if m.Counter != nil {
				return m.Counter.GetValue()
			}
			return m.Gauge.GetValue()
		}
	}
	return 0
}
