// Command bench-e2e measures this issuer beside cert-manager's own CA issuer
// on the local control plane, with the same trust anchor and the same
// approver: N seed-shaped CertificateRequests per round, the two issuers
// alternately for ROUNDS rounds each, then one round each under a churn of
// foreign requests (another issuer's), then the RSS growth of both
// controllers under 5,000 foreign CertificateRequests and 1,000 × 64 KiB
// foreign Secrets. `make bench-e2e` runs it; docs/performance.md has the
// figures. Absolute times on these machines are noisy: read the ratios.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/testing/localcp"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/testing/testpki"
)

const (
	ns        = "linkerd" // watched by the issuer, like a real control plane
	foreignNS = "team-a"  // another team's requests, to another issuer
	roundKey  = "bench/round"
)

func main() {
	n := flag.Int("n", 300, "CertificateRequests per round.")
	rounds := flag.Int("rounds", 3, "Rounds per issuer, alternating.")
	memory := flag.Bool("memory", true, "Measure RSS growth under foreign load.")
	issuerArgs := flag.String("issuer-args", "", "Extra flags for the issuer, space-separated (to compare settings).")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *n, *rounds, *memory, strings.Fields(*issuerArgs)); err != nil {
		fmt.Fprintln(os.Stderr, "bench-e2e:", err)
		os.Exit(1)
	}
}

type issuerUnderTest struct {
	name string
	ref  cmmeta.IssuerReference
}

func run(ctx context.Context, n, rounds int, memory bool, issuerArgs []string) (err error) {
	cp, err := localcp.Start(ctx, localcp.Options{
		WatchNamespaces: []string{ns},
		// Info, as the chart runs it: debug logging is not what users run.
		IssuerArgs: append([]string{"--zap-log-level=info"}, issuerArgs...),
		Logf:       func(f string, a ...any) { fmt.Fprintf(os.Stderr, "… "+f+"\n", a...) },
	})
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			cp.KeepDir = true
			err = fmt.Errorf("%w (logs in %s)", err, cp.Dir)
		}
		_ = cp.Stop()
	}()
	c, err := client.NewWithWatch(cp.Config, client.Options{Scheme: localcp.Scheme()})
	if err != nil {
		return err
	}
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: foreignNS}}); err != nil {
		return err
	}

	// One anchor, both issuers.
	anchor, err := testpki.NewAnchor(time.Now().Add(-time.Minute), time.Now().Add(10*365*24*time.Hour))
	if err != nil {
		return err
	}
	objs := []client.Object{
		&corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "bench-anchor"},
			Type:       corev1.SecretTypeTLS,
			Data:       map[string][]byte{corev1.TLSCertKey: anchor.CertPEM, corev1.TLSPrivateKeyKey: anchor.KeyPEM},
		},
		&cmapi.Issuer{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "cert-manager-ca"},
			Spec:       cmapi.IssuerSpec{IssuerConfig: cmapi.IssuerConfig{CA: &cmapi.CAIssuer{SecretName: "bench-anchor"}}},
		},
		&v1alpha1.LinkerdCAIssuer{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "linkerd-ca"},
			Spec:       v1alpha1.IssuerSpec{TrustAnchorSecretName: "bench-anchor"},
		},
	}
	for _, o := range objs {
		if err := c.Create(ctx, o); err != nil {
			return fmt.Errorf("creating %T: %w", o, err)
		}
	}
	issuers := []issuerUnderTest{
		{"cert-manager CA", cmmeta.IssuerReference{Group: "cert-manager.io", Kind: "Issuer", Name: "cert-manager-ca"}},
		{"linkerd-ca-issuer", cmmeta.IssuerReference{Group: v1alpha1.GroupVersion.Group, Kind: v1alpha1.IssuerKind, Name: "linkerd-ca"}},
	}
	csr, _, err := testpki.CSRFor(testpki.SeedCertificate(ns))
	if err != nil {
		return err
	}
	// Warm both paths: the first request of each waits for issuers to be
	// checked, which is no part of throughput.
	for _, iss := range issuers {
		if _, err := round(ctx, c, "warm-"+slug(iss.name), iss.ref, csr, 5); err != nil {
			return fmt.Errorf("warming %s: %w", iss.name, err)
		}
	}

	// What each issuer costs the API server, per request: the API server is
	// what saturates first on a small control plane.
	for _, iss := range issuers {
		before, err := apiCalls(ctx, cp)
		if err != nil {
			return err
		}
		cpuBefore, err := cpuTimes(cp)
		if err != nil {
			return err
		}
		if _, err := round(ctx, c, "calls-"+slug(iss.name), iss.ref, csr, 100); err != nil {
			return err
		}
		after, err := apiCalls(ctx, cp)
		if err != nil {
			return err
		}
		cpuAfter, err := cpuTimes(cp)
		if err != nil {
			return err
		}
		var cpu []string
		for _, p := range cpuProcesses {
			cpu = append(cpu, fmt.Sprintf("%s %s", p, ((cpuAfter[p]-cpuBefore[p])/100).Round(10*time.Microsecond)))
		}
		fmt.Printf("CPU per request, %s: %s\n", iss.name, strings.Join(cpu, ", "))
		var parts []string
		for k, v := range after {
			if d := (v - before[k]) / 100; d >= 0.05 {
				parts = append(parts, fmt.Sprintf("%s %.2f", k, d))
			}
		}
		slices.Sort(parts)
		fmt.Printf("API calls per request (apiserver_request_total; reads are GET and LIST, watches not counted), %s: %s\n", iss.name, strings.Join(parts, ", "))
	}

	results := map[string][]result{}
	for r := range rounds {
		order := issuers
		if r%2 == 1 {
			order = []issuerUnderTest{issuers[1], issuers[0]}
		}
		for _, iss := range order {
			res, err := round(ctx, c, fmt.Sprintf("r%d-%s", r, slug(iss.name)), iss.ref, csr, n)
			if err != nil {
				return fmt.Errorf("%s, round %d: %w", iss.name, r+1, err)
			}
			fmt.Fprintf(os.Stderr, "… %-18s round %d: %s\n", iss.name, r+1, res)
			results[iss.name] = append(results[iss.name], res)
		}
	}
	churn := map[string]result{}
	for _, iss := range issuers {
		stopChurn, sent := foreignChurn(ctx, c, csr)
		res, err := round(ctx, c, "churn-"+slug(iss.name), iss.ref, csr, n)
		stopChurn()
		if err != nil {
			return fmt.Errorf("%s under foreign churn: %w", iss.name, err)
		}
		fmt.Fprintf(os.Stderr, "… %-18s under churn (%d foreign requests): %s\n", iss.name, sent(), res)
		churn[iss.name] = res
		if err := c.DeleteAllOf(ctx, &cmapi.CertificateRequest{}, client.InNamespace(foreignNS)); err != nil {
			return err
		}
	}

	fmt.Printf("\n%d requests a round; %d rounds each, alternating; same anchor and approver\n\n", n, rounds)
	fmt.Println("| scenario | issuer | throughput (req/s) | created at (req/s) | p50 | p99 |")
	fmt.Println("|---|---|---|---|---|---|")
	for _, iss := range issuers {
		for i, res := range results[iss.name] {
			fmt.Printf("| round %d | %s | %.1f | %.1f | %s | %s |\n", i+1, iss.name, res.throughput, res.arrival, res.p50, res.p99)
		}
	}
	for _, iss := range issuers {
		res := churn[iss.name]
		fmt.Printf("| foreign churn | %s | %.1f | %.1f | %s | %s |\n", iss.name, res.throughput, res.arrival, res.p50, res.p99)
	}
	cm, li := median(results[issuers[0].name]), median(results[issuers[1].name])
	fmt.Printf("\nmedian round: linkerd-ca-issuer %.1f req/s, p99 %s; cert-manager CA %.1f req/s, p99 %s; throughput ratio %.2f×\n",
		li.throughput, li.p99, cm.throughput, cm.p99, li.throughput/cm.throughput)
	cc, lc := churn[issuers[0].name], churn[issuers[1].name]
	fmt.Printf("under foreign churn: linkerd-ca-issuer %.1f req/s, p99 %s; cert-manager CA %.1f req/s, p99 %s; throughput ratio %.2f×\n",
		lc.throughput, lc.p99, cc.throughput, cc.p99, lc.throughput/cc.throughput)

	signed, again, different, err := signedTwice(cp.Dir)
	if err != nil {
		return err
	}
	fmt.Printf("audit log: linkerd-ca-issuer signed %d requests, %d of them again to the same certificate, %d to a different one\n", signed, again, different)
	if different > 0 {
		return fmt.Errorf("%d requests signed to two different certificates", different)
	}

	if memory {
		return measureMemory(ctx, cp, csr)
	}
	return nil
}

func slug(s string) string { return strings.ReplaceAll(strings.ToLower(s), " ", "-") }
