package cli

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/signer"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/trustanchor"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/version"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/cli -run %s -update to write it)", err, t.Name())
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s:\n--- got\n%s--- want\n%s", path, got, want)
	}
}

func TestHelpAndExitCodes(t *testing.T) {
	for _, tc := range []struct {
		args         []string
		code         int
		stdout, errs string
	}{
		{[]string{"--help"}, 0, "trust-anchor", ""},
		{[]string{"-h"}, 0, "Usage:", ""},
		{nil, 0, "Available Commands:", ""},
		{[]string{"check", "--help"}, 0, "--output", ""},
		{[]string{"trust-anchor", "create", "--help"}, 0, "--dry-run", ""},
		{[]string{"help", "trust-roots", "render"}, 0, "--from-file", ""},
		{[]string{"frobnicate"}, 2, "", `unknown command "frobnicate" for "linkerd-ca"`},
		{[]string{"trust-anchor", "frobnicate"}, 2, "", `unknown command "frobnicate" for "linkerd-ca trust-anchor"`},
		{[]string{"trust-anchor", "create", "--no-such-flag"}, 2, "", "unknown flag: --no-such-flag"},
		{[]string{"check", "extra"}, 2, "", "takes no arguments"},
		{[]string{"check", "-o", "yaml"}, 2, "", `--output "yaml": use table, short or json`},
		{[]string{"trust-anchor", "create", "-o", "json"}, 2, "", "add --dry-run"},
		{[]string{"trust-anchor", "create", "--dry-run=server"}, 2, "", "only client"},
		{[]string{"trust-roots", "render"}, 2, "", "--from-file or --from-secret"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, out, errOut := run(t, tc.args...)
			if code != tc.code || !strings.Contains(out, tc.stdout) || !strings.Contains(errOut, tc.errs) {
				t.Errorf("exit %d (want %d)\nstdout (want %q):\n%s\nstderr (want %q):\n%s", code, tc.code, tc.stdout, out, tc.errs, errOut)
			}
			if tc.code == 0 && errOut != "" {
				t.Errorf("help went to stderr: %s", errOut)
			}
			if tc.code == 2 && !strings.Contains(errOut, "--help' for usage") {
				t.Errorf("a usage error does not point to the help: %s", errOut)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	old := version.Version
	version.Version = "v1.2.3-4-gabcdef0"
	defer func() { version.Version = old }()
	for _, args := range [][]string{{"version"}, {"--version"}} {
		code, out, _ := run(t, args...)
		if code != 0 || !strings.HasPrefix(out, "linkerd-ca v1.2.3-4-gabcdef0 (commit ") {
			t.Errorf("%v: exit %d, %q", args, code, out)
		}
	}
}

func TestCompletion(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		code, out, errOut := run(t, "completion", shell)
		if code != 0 || !strings.Contains(out, "linkerd-ca") {
			t.Errorf("completion %s: exit %d %s", shell, code, errOut)
		}
	}
}

// TestExtensionMetadata: linkerd check runs `linkerd-ca _extension-metadata`
// and checks the extension always when it answers with its own executable
// name and "always" (linkerd2 cli/cmd/check_extensions.go).
func TestExtensionMetadata(t *testing.T) {
	code, out, errOut := run(t, "_extension-metadata")
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	golden(t, "extension-metadata.json", []byte(out))
	var m struct {
		Name   string `json:"name"`
		Checks string `json:"checks"`
	}
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil || !strings.EqualFold(m.Name, "linkerd-ca") || m.Checks != "always" {
		t.Errorf("metadata %+v (%v): linkerd check would not run this extension", m, err)
	}
	if _, help, _ := run(t, "--help"); strings.Contains(help, "_extension-metadata") {
		t.Error("the protocol command shows in the help")
	}
}

// linkerdCheckOutput is the document linkerd check parses from an
// extension's `check -o json` (linkerd2 pkg/healthcheck).
type linkerdCheckOutput struct {
	Success    bool `json:"success"`
	Categories []struct {
		Name   string `json:"categoryName"`
		Checks []struct {
			Description string `json:"description"`
			Hint        string `json:"hint"`
			Error       string `json:"error"`
			Result      string `json:"result"`
		} `json:"checks"`
	} `json:"categories"`
}

func parseLinkerdCheck(t *testing.T, out string) linkerdCheckOutput {
	t.Helper()
	var doc linkerdCheckOutput
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("not linkerd check's JSON: %v\n%s", err, out)
	}
	failed := false
	for _, cat := range doc.Categories {
		for _, c := range cat.Checks {
			switch c.Result {
			case "success":
				if c.Error != "" {
					t.Errorf("%q succeeded with an error %q", c.Description, c.Error)
				}
			case "warning", "error":
				if c.Error == "" {
					t.Errorf("%q is a %s without an error message", c.Description, c.Result)
				}
				failed = failed || c.Result == "error"
			default:
				t.Errorf("%q: result %q is not one linkerd check knows", c.Description, c.Result)
			}
		}
	}
	if doc.Success == failed {
		t.Errorf("success=%v but a check failed=%v", doc.Success, failed)
	}
	return doc
}

// fixedIssuerDir is an issuer Secret signed by an anchor at a fixed time,
// whose ca-bundle.crt holds another anchor only: one check of each result.
func fixedIssuerDir(t *testing.T, now time.Time) string {
	t.Helper()
	parse := func(p *trustanchor.PEM) *signer.Anchor {
		a, err := signer.ParseAnchor(p.Certificate, p.Key, now)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	mk := func() *trustanchor.PEM {
		p, err := trustanchor.Create(trustanchor.DefaultCommonName, trustanchor.DefaultValidity, now)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	anchorPEM, otherPEM := mk(), mk()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	dir := writeIssuerSecret(t, parse(anchorPEM), anchorPEM.Certificate, issuerSpec{key: key, isCA: true, notBefore: now.Add(-time.Hour), notAfter: now.Add(48 * time.Hour)}, true)
	if err := os.WriteFile(filepath.Join(dir, "ca-bundle.crt"), otherPEM.Certificate, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func runAt(t *testing.T, now time.Time, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := execute(context.Background(), &globals{stdout: &out, stderr: &errOut, now: func() time.Time { return now }}, args)
	return code, out.String(), errOut.String()
}

// TestCheckJSON: `check -o json` is linkerd check's format, byte for byte
// against a golden file, and exits 1 on an error result.
func TestCheckJSON(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	code, out, errOut := runAt(t, now, "check", "--dir", fixedIssuerDir(t, now), "-o", "json")
	if code != 1 || errOut != "" {
		t.Errorf("exit %d (want 1), stderr %q", code, errOut)
	}
	doc := parseLinkerdCheck(t, out)
	if len(doc.Categories) != 1 || doc.Categories[0].Name != "linkerd-ca" {
		t.Errorf("categories %+v, want one, linkerd-ca", doc.Categories)
	}
	golden(t, "check.json", []byte(out))
}

func TestCheckShort(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	code, out, _ := runAt(t, now, "check", "--dir", fixedIssuerDir(t, now), "-o", "short")
	if code != 1 {
		t.Errorf("exit %d", code)
	}
	golden(t, "check-short.txt", []byte(out))
	if strings.Contains(out, "√ ") || !strings.HasSuffix(out, "Status check results are ×\n") {
		t.Errorf("short output shows passing checks or lacks the summary:\n%s", out)
	}
}

// TestCheckAsLinkerdCallsIt: linkerd check calls every extension with its
// own flags, some of which this one ignores, and flags from later Linkerd
// releases, which it must not fail on.
func TestCheckAsLinkerdCallsIt(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	dir := fixedIssuerDir(t, now)
	code, out, errOut := runAt(t, now, "check", "--dir", dir, "--output", "json", "--wait", "5m0s", "--linkerd-namespace", "linkerd",
		"--as-group", "ops", "--verbose", "--pre", "--linkerd-cni-enabled", "--a-flag-from-the-future=1")
	if code != 1 || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	parseLinkerdCheck(t, out)
	code, out, _ = runAt(t, now, "check", "--dir", dir, "-o", "json", "--proxy")
	if doc := parseLinkerdCheck(t, out); code != 0 || !doc.Success || len(doc.Categories) != 0 {
		t.Errorf("--proxy (no data-plane checks here): exit %d %s", code, out)
	}
}

func TestTrustAnchorDryRun(t *testing.T) {
	code, out, errOut := run(t, "trust-anchor", "create", "--dry-run", "-o", "yaml", "-n", "cert-manager", "--kubeconfig", "/nonexistent")
	if code != 0 {
		t.Fatalf("exit %d %s", code, errOut)
	}
	if !strings.Contains(errOut, "private key") {
		t.Errorf("no warning that the output holds the key: %q", errOut)
	}
	var s corev1.Secret
	if err := yaml.UnmarshalStrict([]byte(out), &s); err != nil {
		t.Fatalf("not a Secret manifest: %v\n%s", err, out)
	}
	if s.APIVersion != "v1" || s.Kind != "Secret" || s.Namespace != "cert-manager" || s.Name != "linkerd-trust-anchor" || s.Type != corev1.SecretTypeTLS {
		t.Errorf("Secret %s %s %s/%s type %s", s.APIVersion, s.Kind, s.Namespace, s.Name, s.Type)
	}
	if _, err := signer.ParseAnchor(s.Data["tls.crt"], s.Data["tls.key"], time.Now()); err != nil {
		t.Errorf("the printed anchor is not usable: %v", err)
	}

	code, out, _ = run(t, "trust-anchor", "create", "--dry-run", "-o", "json", "-L", "linkerd-alt", "--name", "root")
	if err := json.Unmarshal([]byte(out), &s); code != 0 || err != nil || s.Namespace != "linkerd-alt" || s.Name != "root" {
		t.Errorf("-o json: exit %d %v %s/%s", code, err, s.Namespace, s.Name)
	}
}

func TestTrustRootsRender(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	old, _ := trustanchor.Create(trustanchor.DefaultCommonName, trustanchor.DefaultValidity, time.Now())
	next, _ := trustanchor.Create("root-2.linkerd.cluster.local", trustanchor.DefaultValidity, time.Now())
	oldPath, nextPath := write("old.crt", old.Certificate), write("next.crt", next.Certificate)

	code, out, errOut := run(t, "trust-roots", "render", "-f", oldPath, "--from-file", nextPath, "-f", oldPath)
	if code != 0 {
		t.Fatalf("exit %d %s", code, errOut)
	}
	var cm corev1.ConfigMap
	if err := yaml.UnmarshalStrict([]byte(out), &cm); err != nil {
		t.Fatal(err)
	}
	if cm.Kind != "ConfigMap" || cm.Namespace != "linkerd" || cm.Name != "linkerd-identity-trust-roots" {
		t.Errorf("ConfigMap %s %s/%s", cm.Kind, cm.Namespace, cm.Name)
	}
	roots, err := signer.ParseTrustBundle([]byte(cm.Data["ca-bundle.crt"]))
	if err != nil || len(roots) != 2 || roots[0].Subject.CommonName != trustanchor.DefaultCommonName || roots[1].Subject.CommonName != "root-2.linkerd.cluster.local" {
		t.Errorf("bundle: %v, %d roots (want old then new, the duplicate dropped)", err, len(roots))
	}

	// Not an anchor: a certificate that is no CA, and what is not PEM.
	now := time.Now()
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p384Dir := writeIssuerSecret(t, mustAnchor(t, old), old.Certificate, issuerSpec{key: p384, notAfter: now.Add(time.Hour)}, false)
	notCA, _ := os.ReadFile(filepath.Join(p384Dir, "tls.crt"))
	for _, tc := range []struct{ file, want string }{
		{write("not-ca.crt", notCA), "not a CA certificate"},
		{write("garbage.crt", []byte("hello")), "not PEM"},
	} {
		code, out, errOut := run(t, "trust-roots", "render", "-f", oldPath, "-f", tc.file)
		if code != 1 || out != "" || !strings.Contains(errOut, tc.want) {
			t.Errorf("%s: exit %d, stdout %q, stderr %q (want %q)", tc.file, code, out, errOut, tc.want)
		}
	}
}

func mustAnchor(t *testing.T, p *trustanchor.PEM) *signer.Anchor {
	t.Helper()
	a, err := signer.ParseAnchor(p.Certificate, p.Key, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestContextSelection: --context picks the cluster of one context of the
// kubeconfig, and -n or the context's namespace the Secret's namespace.
func TestContextSelection(t *testing.T) {
	type hit struct{ server, path string }
	hits := make(chan hit, 16)
	record := func(name string) func(string) { return func(path string) { hits <- hit{name, path} } }
	eastURL := fakeAPIServer(t, fakeAPI{ours: true, hit: record("east")})
	westURL := fakeAPIServer(t, fakeAPI{ours: true, hit: record("west")})
	kubeconfig := filepath.Join(t.TempDir(), "config")
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
current-context: east
clusters:
- name: east
  cluster: {server: %s}
- name: west
  cluster: {server: %s}
users:
- name: u
  user: {token: t}
contexts:
- name: east
  context: {cluster: east, user: u}
- name: west
  context: {cluster: west, user: u, namespace: west-linkerd}
`, eastURL, westURL)
	if err := os.WriteFile(kubeconfig, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args   []string
		server string
		path   string
	}{
		{nil, "east", "/api/v1/namespaces/linkerd/secrets/linkerd-identity-issuer"},
		{[]string{"--context", "west"}, "west", "/api/v1/namespaces/linkerd/secrets/linkerd-identity-issuer"},
		{[]string{"--context", "west", "-L", "linkerd-b"}, "west", "/api/v1/namespaces/linkerd-b/secrets/linkerd-identity-issuer"},
	} {
		code, out, _ := run(t, append([]string{"check", "--kubeconfig", kubeconfig}, tc.args...)...)
		if code != 1 || !strings.Contains(out, "× can read the identity issuer Secret") {
			t.Errorf("%v: exit %d\n%s", tc.args, code, out)
		}
		if h := <-hits; h.server != tc.server || h.path != tc.path {
			t.Errorf("%v: asked %s for %s, want %s for %s", tc.args, h.server, h.path, tc.server, tc.path)
		}
	}
	// trust-anchor create stores in -n, else the Linkerd namespace, never
	// the context's: a root key must not land in a team's namespace.
	for _, tc := range []struct {
		args []string
		path string
	}{
		{[]string{"--context", "west"}, "/api/v1/namespaces/linkerd/secrets"},
		{[]string{"--context", "west", "-L", "linkerd-b"}, "/api/v1/namespaces/linkerd-b/secrets"},
		{[]string{"--context", "west", "-n", "cert-manager"}, "/api/v1/namespaces/cert-manager/secrets"},
		{nil, "/api/v1/namespaces/linkerd/secrets"},
	} {
		run(t, append([]string{"trust-anchor", "create", "--kubeconfig", kubeconfig}, tc.args...)...)
		if h := <-hits; h.path != tc.path {
			t.Errorf("%v: created at %s, want %s", tc.args, h.path, tc.path)
		}
	}
}

// fakeAPI is just enough of an API server for the CLI: the discovery of
// core/v1 and, when ours is set, of linkerdca.io; every object is secret
// (the identity issuer Secret, as JSON) or not found. hit, when set, is
// told every path asked for that is not discovery.
type fakeAPI struct {
	ours   bool
	secret string
	hit    func(path string)
}

func fakeAPIServer(t *testing.T, api fakeAPI) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/api":
			fmt.Fprint(w, `{"kind":"APIVersions","versions":["v1"]}`)
			return
		case "/apis":
			groups := ""
			if api.ours {
				groups = `{"name":"linkerdca.io","versions":[{"groupVersion":"linkerdca.io/v1alpha1","version":"v1alpha1"}],"preferredVersion":{"groupVersion":"linkerdca.io/v1alpha1","version":"v1alpha1"}}`
			}
			fmt.Fprint(w, `{"kind":"APIGroupList","apiVersion":"v1","groups":[`+groups+`]}`)
			return
		case "/api/v1":
			fmt.Fprint(w, `{"kind":"APIResourceList","groupVersion":"v1","resources":[`+
				`{"name":"secrets","namespaced":true,"kind":"Secret","verbs":["get","create"]},`+
				`{"name":"configmaps","namespaced":true,"kind":"ConfigMap","verbs":["get"]}]}`)
			return
		case "/apis/linkerdca.io/v1alpha1":
			if api.ours {
				fmt.Fprint(w, `{"kind":"APIResourceList","groupVersion":"linkerdca.io/v1alpha1","resources":[`+
					`{"name":"linkerdcaissuers","namespaced":true,"kind":"LinkerdCAIssuer","verbs":["get"]}]}`)
			} else {
				w.WriteHeader(http.StatusNotFound)
			}
			return
		}
		if api.hit != nil {
			api.hit(r.URL.Path)
		}
		if api.secret != "" && r.URL.Path == "/api/v1/namespaces/linkerd/secrets/linkerd-identity-issuer" {
			fmt.Fprint(w, api.secret)
			return
		}
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404,"message":"not here"}`)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestCheckOnClustersWithoutThisIssuer: linkerd check runs this extension
// on every cluster; where this issuer is not installed, or Linkerd makes
// its own issuer, it warns and passes instead of failing linkerd check.
func TestCheckOnClustersWithoutThisIssuer(t *testing.T) {
	linkerdOwn := `{"kind":"Secret","apiVersion":"v1","metadata":{"name":"linkerd-identity-issuer","namespace":"linkerd"},"data":{"crt.pem":"Y2VydA==","key.pem":"a2V5"}}`
	for _, tc := range []struct {
		name   string
		ours   bool
		secret string
		code   int
		want   string
	}{
		{"no linkerdca.io API", false, "", 0, "‼ linkerd-ca-issuer's API is served\n    no linkerdca.io/v1alpha1 API in this cluster"},
		{"Linkerd's own issuer", true, linkerdOwn, 0, "‼ the identity issuer is an external one (kubernetes.io/tls)\n    Secret linkerd/linkerd-identity-issuer holds crt.pem and key.pem"},
		{"this issuer installed, no Secret", true, "", 1, "× can read the identity issuer Secret"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := run(t, "check", "--server", fakeAPIServer(t, fakeAPI{ours: tc.ours, secret: tc.secret}), "--token", "t")
			if code != tc.code || !strings.Contains(out, tc.want) {
				t.Errorf("exit %d (want %d)\n%s%s", code, tc.code, out, errOut)
			}
		})
	}
}
