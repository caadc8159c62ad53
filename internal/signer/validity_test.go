package signer

import (
	"errors"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// request48h asks for 48h, with its validity started at start.
func request48h(t *testing.T, start time.Time) Request {
	t.Helper()
	crt := seedCertificate()
	crt.Spec.Duration = &metav1.Duration{Duration: 48 * time.Hour}
	req := requestFor(t, crt)
	req.ID, req.Start = "uid-1", start
	return req
}

// TestSignFromTheRecordedStart: the validity runs from the request's
// recorded start, not from the signing time, so a re-sign later yields the
// same certificate.
func TestSignFromTheRecordedStart(t *testing.T) {
	anchor := parsedAnchor(t, defaultAnchorSpec(t))
	start := testNow.Add(-3 * time.Hour)
	req := request48h(t, start)
	first, err := Sign(defaultPolicy, anchor, req, testNow)
	if err != nil {
		t.Fatal(err)
	}
	cert := parseIssued(t, first)
	if !cert.NotBefore.Equal(start.Add(-ClockSkew)) || !cert.NotAfter.Equal(start.Add(48*time.Hour)) {
		t.Errorf("valid %s to %s, want %s to %s", cert.NotBefore, cert.NotAfter, start.Add(-ClockSkew), start.Add(48*time.Hour))
	}
	again, err := Sign(defaultPolicy, anchor, req, testNow.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if string(again.CertificatePEM) != string(first.CertificatePEM) {
		t.Error("the same request and start signed again gave another certificate")
	}
}

// TestAnotherStartAnotherSerial: two validities of one request never share
// a serial.
func TestAnotherStartAnotherSerial(t *testing.T) {
	anchor := parsedAnchor(t, defaultAnchorSpec(t))
	req := request48h(t, testNow)
	a, err := Sign(defaultPolicy, anchor, req, testNow)
	if err != nil {
		t.Fatal(err)
	}
	req.Start = testNow.Add(time.Second)
	b, err := Sign(defaultPolicy, anchor, req, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if a.Certificate.SerialNumber.Cmp(b.Certificate.SerialNumber) == 0 {
		t.Errorf("starts a second apart share serial %x", a.Certificate.SerialNumber)
	}
}

// TestSignRefusesWhatWouldNotLive: created 3 days before it is signed with
// its start at creation, a 48h request would be born expired; an anchor
// replaced after the start would make NotAfter fall before NotBefore; a
// start that leaves less than minDuration is as bad. Each is refused with
// RuleValidity, and a start that leaves enough, even before a replaced
// anchor's NotBefore, is signed.
func TestSignRefusesWhatWouldNotLive(t *testing.T) {
	replaced := defaultAnchorSpec(t)
	replaced.notBefore = testNow.Add(-time.Minute) // made after the start below
	old := defaultAnchorSpec(t)
	old.notBefore = testNow.Add(-30 * 24 * time.Hour)
	for _, tc := range []struct {
		name   string
		anchor anchorSpec
		start  time.Time
		want   string // refusal prefix; empty: signed
	}{
		{"created 3 days before approval", old, testNow.Add(-72 * time.Hour),
			"validity: the certificate would be valid for -24h0m0s more"},
		{"anchor replaced after the start", replaced, testNow.Add(-49 * time.Hour),
			"validity: the certificate would end (" + stamp(testNow.Add(-time.Hour)) + ", the validity start " + stamp(testNow.Add(-49*time.Hour)) + " + 48h0m0s) at or before it begins (" + stamp(testNow.Add(-time.Minute)) + ", the trust anchor's NotBefore)"},
		{"less than minDuration left", old, testNow.Add(-47*time.Hour - 30*time.Minute),
			"validity: the certificate would be valid for 30m0s more"},
		{"anchor replaced after the start, enough left", replaced, testNow.Add(-time.Hour), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			issued, err := Sign(defaultPolicy, parsedAnchor(t, tc.anchor), request48h(t, tc.start), testNow)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if c := parseIssued(t, issued); !c.NotAfter.After(c.NotBefore) || c.NotAfter.Sub(testNow) < defaultPolicy.MinDuration {
					t.Errorf("valid %s to %s", c.NotBefore, c.NotAfter)
				}
				return
			}
			var refusal *Refusal
			if !errors.As(err, &refusal) || refusal.Rule != RuleValidity || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("got %v\nwant a refusal starting %s", err, tc.want)
			}
			if issued != nil {
				t.Error("a refused request was signed")
			}
		})
	}
}

// TestMinDurationAskedIsSigned: a request for exactly minDuration has a
// little less left by the time it is signed, after its start; within the
// clock skew allowance it is signed, not refused.
func TestMinDurationAskedIsSigned(t *testing.T) {
	req := request48h(t, testNow.Add(-30*time.Second))
	req.Duration = defaultPolicy.MinDuration
	if _, err := Sign(defaultPolicy, parsedAnchor(t, defaultAnchorSpec(t)), req, testNow); err != nil {
		t.Fatal(err)
	}
	req.Start = testNow.Add(-2 * ClockSkew)
	if _, err := Sign(defaultPolicy, parsedAnchor(t, defaultAnchorSpec(t)), req, testNow); err == nil {
		t.Error("signed with less than minDuration left, beyond the clock skew allowance")
	}
}

// TestSignRefusesWhenTheAnchorEndsTooSoon: a capped certificate with less
// than minDuration left says to rotate the anchor.
func TestSignRefusesWhenTheAnchorEndsTooSoon(t *testing.T) {
	s := defaultAnchorSpec(t)
	s.notAfter = testNow.Add(30 * time.Minute)
	_, err := Sign(defaultPolicy, parsedAnchor(t, s), request48h(t, testNow), testNow)
	want := "validity: the certificate would be valid for 30m0s more (until " + stamp(testNow.Add(30*time.Minute)) + "), less than this issuer's minimum 1h0m0s (spec.minDuration): the trust anchor expires at " + stamp(testNow.Add(30*time.Minute)) + "; rotate it"
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("got %v\nwant %s…", err, want)
	}
}
