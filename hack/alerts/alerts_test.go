package alerts

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/util/teststorage"
)

// Each state is held this long before the rules are judged, evaluated
// every minute: past the longest `for` (1h) and range ([1h]) of the rules.
const (
	held     = 2 * time.Hour
	scrape   = 30 * time.Second
	evaluate = time.Minute
)

// statesDir is where the e2e suite left the rules and the states:
// $ALERT_STATES, or the repository's bin/alert-states.
func statesDir(t *testing.T) string {
	if d := os.Getenv("ALERT_STATES"); d != "" {
		return d
	}
	d, err := filepath.Abs(filepath.Join("..", "..", "bin", "alert-states"))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestAlertsFireInTheStatesTheyName: the chart's rules, as rendered by the
// e2e suite, evaluated by Prometheus's rule engine over each state the
// suite's real issuer was in (its series as scraped, held two hours).
// Each alert fires in the state it names, none fires in any other, and
// none fires when the rotation is Stable.
func TestAlertsFireInTheStatesTheyName(t *testing.T) {
	dir := statesDir(t)
	rs, err := Load(filepath.Join(dir, "rules.yaml"))
	if err != nil {
		t.Fatalf("%v\n(the e2e suite writes the rules and states: run `make e2e`, then `make alerts`)", err)
	}
	for _, tc := range []struct {
		state string
		want  []string
		// check is what the alerts firing must say beyond their names.
		check func(t *testing.T, f Firing)
	}{
		{state: "stable"},
		// Its anchor Secret deleted. The seed certificate it signed before
		// lives 24h: within LinkerdIdentityIssuerNotRenewed's 24h from the
		// start, which a 48h identity issuer renewed 25h before its expiry
		// never is.
		{state: "not-ready", want: []string{"LinkerdCAIssuerNotReady", "LinkerdIdentityIssuerNotRenewed"}},
		{state: "anchor-expiring", want: []string{"LinkerdTrustAnchorExpiresSoon"}, check: func(t *testing.T, f Firing) {
			// 30 days left, less the two hours the state is held.
			if f.Value < 29*86400 || f.Value > 30*86400 {
				t.Errorf("%s: %v seconds left, want about 30 days", f.Alert, f.Value)
			}
		}},
		// The mesh's rotation held on its 200 pods, the identity issuer's
		// 48h deadline far off: held, and stalled when held for an hour;
		// the issuer is not Ready then either, which the held alert covers.
		{state: "held", want: []string{"LinkerdTrustAnchorRotationHeld", "LinkerdTrustAnchorRotationStalled"}},
		// A rotation held past its deadline, the identity issuer's expiry:
		// that issuer was not renewed in time either (its expiry exported
		// though the controller restarted since it signed).
		{state: "past-deadline", want: []string{"LinkerdIdentityIssuerNotRenewed", "LinkerdTrustAnchorRotationHeld",
			"LinkerdTrustAnchorRotationNearDeadline", "LinkerdTrustAnchorRotationStalled"}, check: func(t *testing.T, f Firing) {
			if f.Alert == "LinkerdTrustAnchorRotationNearDeadline" && (f.Value >= 0 || !strings.Contains(f.Annotations["summary"], "past its deadline")) {
				t.Errorf("%s: %v seconds to the deadline, summary %q; want it past (negative), and said so", f.Alert, f.Value, f.Annotations["summary"])
			}
		}},
	} {
		t.Run(tc.state, func(t *testing.T) {
			s, err := ReadScrape(filepath.Join(dir, tc.state+".prom"))
			if err != nil {
				t.Fatalf("%v\n(the e2e suite writes each state: run `make e2e`, then `make alerts`)", err)
			}
			fresh, err := Load(filepath.Join(dir, "rules.yaml")) // rules keep their alerts' state
			if err != nil {
				t.Fatal(err)
			}
			db := teststorage.New(t)
			n, err := s.Hold(context.Background(), db, held, scrape)
			if err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				t.Fatalf("the %s state holds no series of the issuer", tc.state)
			}
			firing, err := Evaluate(context.Background(), fresh, db, s.At.Add(-held), s.At, evaluate)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, f := range firing {
				names = append(names, f.Alert)
				if strings.Contains(f.Annotations["summary"], "<no value>") || f.Annotations["summary"] == "" {
					t.Errorf("%s: summary %q does not expand", f.Alert, f.Annotations["summary"])
				}
				if tc.check != nil {
					tc.check(t, f)
				}
				t.Logf("%s: %s", f.Alert, f.Annotations["summary"])
			}
			if !slices.Equal(names, tc.want) {
				t.Errorf("firing %v over %d series, want %v", names, n, tc.want)
			}
		})
	}
	if len(rs) != 7 {
		t.Errorf("%d alerting rules, want the chart's 7", len(rs))
	}
}
