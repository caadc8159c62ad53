package cli

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"github.com/cert-manager/cert-manager/pkg/util/pki"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/identitycheck"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/signer"
)

func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := Run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func createAnchorFiles(t *testing.T) (dir string, anchor *signer.Anchor) {
	t.Helper()
	dir = t.TempDir()
	if code, out, errOut := run(t, "trust-anchor", "create", "--out-dir", dir); code != 0 {
		t.Fatalf("trust-anchor create: %d %s %s", code, out, errOut)
	}
	certPEM, _ := os.ReadFile(filepath.Join(dir, "ca.crt"))
	keyPEM, _ := os.ReadFile(filepath.Join(dir, "ca.key"))
	anchor, err := signer.ParseAnchor(certPEM, keyPEM, time.Now())
	if err != nil {
		t.Fatalf("the created anchor is not a usable trust anchor: %v", err)
	}
	return dir, anchor
}

func TestTrustAnchorCreateFiles(t *testing.T) {
	dir, anchor := createAnchorFiles(t)
	info, err := os.Stat(filepath.Join(dir, "ca.key"))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("ca.key mode %v (%v), want 0600", info.Mode().Perm(), err)
	}
	c := anchor.Certificate
	if c.Subject.CommonName != "root.linkerd.cluster.local" || !c.IsCA || c.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign {
		t.Errorf("anchor %s isCA=%v usage=%b", c.Subject, c.IsCA, c.KeyUsage)
	}
	if got := c.NotAfter.Sub(c.NotBefore); got < 10*365*24*time.Hour {
		t.Errorf("validity %s, want ten years", got)
	}
	for _, r := range identitycheck.Anchors([]*x509.Certificate{c}, time.Now()) {
		if r.Status != identitycheck.Pass {
			t.Errorf("check's anchor rule fails on the created anchor: %s", r)
		}
	}

	before, _ := os.ReadFile(filepath.Join(dir, "ca.crt"))
	code, _, errOut := run(t, "trust-anchor", "create", "--out-dir", dir)
	if code != 1 || !strings.Contains(errOut, "already holds a trust anchor") || !strings.Contains(errOut, "--overwrite") {
		t.Errorf("second create: code %d, %q; want a refusal that says why", code, errOut)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, "ca.crt")); !bytes.Equal(before, after) {
		t.Error("the refused create changed ca.crt")
	}
	if code, _, errOut := run(t, "trust-anchor", "create", "--out-dir", dir, "--overwrite", "--validity", "48h"); code != 0 {
		t.Fatalf("--overwrite: %d %s", code, errOut)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, "ca.crt")); bytes.Equal(before, after) {
		t.Error("--overwrite did not replace ca.crt")
	}
	if code, _, errOut := run(t, "trust-anchor", "create", "--out-dir", dir, "--validity", "1m", "--overwrite"); code != 2 || !strings.Contains(errOut, "too short") {
		t.Errorf("1m validity: code %d %q", code, errOut)
	}
}

type issuerSpec struct {
	key       crypto.Signer
	isCA      bool
	notBefore time.Time // two hours ago when zero
	notAfter  time.Time
}

// writeIssuerSecret writes the files of an identity issuer Secret signed by
// anchor into a new directory.
func writeIssuerSecret(t *testing.T, anchor *signer.Anchor, caPEM []byte, s issuerSpec, withKey bool) string {
	t.Helper()
	if s.notBefore.IsZero() {
		s.notBefore = time.Now().Add(-2 * time.Hour)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "identity.linkerd.cluster.local"},
		NotBefore: s.notBefore, NotAfter: s.notAfter,
		BasicConstraintsValid: true, IsCA: s.isCA, MaxPathLenZero: s.isCA,
		KeyUsage:    x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, anchor.Certificate, s.key.Public(), anchor.Key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("ca.crt", caPEM)
	write("tls.crt", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	if withKey {
		keyPEM, err := pki.EncodePrivateKey(s.key, cmapi.PKCS8)
		if err != nil {
			t.Fatal(err)
		}
		write("tls.key", keyPEM)
	}
	return dir
}

func TestCheck(t *testing.T) {
	_, anchor := createAnchorFiles(t)
	_, other := createAnchorFiles(t)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	good := issuerSpec{key: p256, isCA: true, notAfter: time.Now().Add(24 * time.Hour)}

	for _, tc := range []struct {
		name  string
		dir   string
		code  int
		lines []string
	}{
		{"the seed flow's Secret passes", writeIssuerSecret(t, anchor, anchor.PEM, good, true), 0, []string{
			"√ certificate config is valid",
			"√ trust anchors are using supported crypto algorithm",
			"√ trust anchors are within their validity period",
			"√ trust anchors are valid for at least 60 days",
			"√ issuer cert is using supported crypto algorithm",
			"√ issuer cert is within its validity period",
			"‼ issuer cert is valid for at least 60 days\n    issuer certificate expires at",
			"√ issuer cert is a CA",
			"√ issuer cert is issued by the trust anchor",
			"√ issuer can sign a proxy certificate",
		}},
		{"issuer not a CA", writeIssuerSecret(t, anchor, anchor.PEM, issuerSpec{key: p256, notAfter: good.notAfter}, true), 1, []string{
			"× issuer cert is a CA\n    the issuer certificate is not a CA",
		}},
		{"P-384 issuer", writeIssuerSecret(t, anchor, anchor.PEM, issuerSpec{key: p384, isCA: true, notAfter: good.notAfter}, true), 1, []string{
			"× issuer cert is using supported crypto algorithm\n    the issuer key is ECDSA P-384; Linkerd needs ECDSA P-256",
		}},
		{"expired issuer", writeIssuerSecret(t, anchor, anchor.PEM, issuerSpec{key: p256, isCA: true, notAfter: time.Now().Add(-time.Hour)}, true), 1, []string{
			"× issuer cert is within its validity period\n    issuer certificate expired at",
		}},
		{"ca.crt not matching", writeIssuerSecret(t, anchor, other.PEM, good, true), 1, []string{
			"× issuer cert is issued by the trust anchor\n    x509: certificate signed by unknown authority",
		}},
		{"missing key", writeIssuerSecret(t, anchor, anchor.PEM, good, false), 1, []string{
			"× certificate config is valid\n    tls.key is missing or empty",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := run(t, "check", "--dir", tc.dir)
			if code != tc.code {
				t.Errorf("exit code %d, want %d\n%s%s", code, tc.code, out, errOut)
			}
			for _, want := range tc.lines {
				if !strings.Contains(out, "\n"+want) {
					t.Errorf("no line %q in:\n%s", want, out)
				}
			}
		})
	}
}

func TestCheckTrustRoots(t *testing.T) {
	_, anchor := createAnchorFiles(t)
	_, other := createAnchorFiles(t)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	dir := writeIssuerSecret(t, anchor, anchor.PEM, issuerSpec{key: p256, isCA: true, notAfter: time.Now().Add(24 * time.Hour)}, true)
	if err := os.WriteFile(filepath.Join(dir, "ca-bundle.crt"), other.PEM, 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, _ := run(t, "check", "--dir", dir)
	if code != 1 || !strings.Contains(out, "\n× issuer cert chains to Linkerd's trust roots\n    x509: certificate signed by unknown authority") {
		t.Errorf("issuer outside Linkerd's trust roots: code %d\n%s", code, out)
	}
	if err := os.WriteFile(filepath.Join(dir, "ca-bundle.crt"), append(append([]byte{}, other.PEM...), anchor.PEM...), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, _ := run(t, "check", "--dir", dir); code != 0 || !strings.Contains(out, "\n√ issuer cert chains to Linkerd's trust roots") {
		t.Errorf("issuer inside Linkerd's trust roots: code %d\n%s", code, out)
	}
	// An empty bundle is one Linkerd trusts nothing from: a failure, not a
	// skipped check.
	if err := os.WriteFile(filepath.Join(dir, "ca-bundle.crt"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, _ := run(t, "check", "--dir", dir); code != 1 || !strings.Contains(out, "\n× issuer cert chains to Linkerd's trust roots\n    the trust roots have no ca-bundle.crt, or it is empty, so Linkerd trusts no root") {
		t.Errorf("empty trust roots: code %d\n%s", code, out)
	}
}

// TestTrustAnchorFilesAreAPair: --out-dir refuses a linked ca.key and a
// directory holding other files, and --overwrite replaces both files.
func TestTrustAnchorFilesAreAPair(t *testing.T) {
	dir, _ := createAnchorFiles(t)
	outside := filepath.Join(t.TempDir(), "stolen")
	if err := os.Remove(filepath.Join(dir, "ca.key")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "ca.key")); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := run(t, "trust-anchor", "create", "--out-dir", dir, "--overwrite"); code != 1 || !strings.Contains(errOut, "symbolic link") {
		t.Errorf("a linked ca.key: code %d %q", code, errOut)
	}
	if _, err := os.Stat(outside); err == nil {
		t.Error("the key was written through the link")
	}

	repo := t.TempDir()
	if err := os.WriteFile(filepath.Join(repo, "go.mod"), []byte("module x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := run(t, "trust-anchor", "create", "--out-dir", repo); code != 1 || !strings.Contains(errOut, "holds go.mod besides the files written here") {
		t.Errorf("a directory with other files: code %d %q", code, errOut)
	}

	dir, first := createAnchorFiles(t)
	if code, _, errOut := run(t, "trust-anchor", "create", "--out-dir", dir, "--overwrite"); code != 0 {
		t.Fatalf("--overwrite: %d %s", code, errOut)
	}
	certPEM, _ := os.ReadFile(filepath.Join(dir, "ca.crt"))
	keyPEM, _ := os.ReadFile(filepath.Join(dir, "ca.key"))
	second, err := signer.ParseAnchor(certPEM, keyPEM, time.Now())
	if err != nil {
		t.Fatalf("after --overwrite the files are no pair: %v", err)
	}
	if second.Certificate.Equal(first.Certificate) {
		t.Error("--overwrite kept the old anchor")
	}
}
