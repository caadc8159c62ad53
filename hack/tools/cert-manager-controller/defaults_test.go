package main

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDefaultsAreCertManagers reads cert-manager's own defaults.go, from the
// module this runner builds against, and checks every value the runner
// restates.
func TestDefaultsAreCertManagers(t *testing.T) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/cert-manager/cert-manager").Output()
	if err != nil {
		t.Fatalf("locating the cert-manager module: %v", err)
	}
	path := filepath.Join(strings.TrimSpace(string(out)), "internal", "apis", "config", "controller", "v1alpha1", "defaults.go")
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	upstream := map[string]string{}
	ast.Inspect(f, func(n ast.Node) bool {
		if v, ok := n.(*ast.ValueSpec); ok {
			for i, name := range v.Names {
				if i < len(v.Values) {
					upstream[name.Name] = exprString(v.Values[i])
				}
			}
		}
		return true
	})
	for name, ours := range map[string]string{
		"defaultKubernetesAPIQPS":                         fmt.Sprint(defaults.kubernetesAPIQPS),
		"defaultKubernetesAPIBurst":                       fmt.Sprint(defaults.kubernetesAPIBurst),
		"defaultNumberOfConcurrentWorkers":                fmt.Sprint(defaults.numberOfConcurrentWorkers),
		"defaultMaxConcurrentChallenges":                  fmt.Sprint(defaults.maxConcurrentChallenges),
		"defaultCertificateRequestMinimumBackoffDuration": hours(defaults.certificateRequestMinimumBackoffDuration),
		"defaultCertificateRequestMaximumBackoffDuration": hours(defaults.certificateRequestMaximumBackoffDuration),
		"defaultEnableCertificateOwnerRef":                fmt.Sprint(defaults.enableCertificateOwnerRef),
		"defaultClusterIssuerAmbientCredentials":          fmt.Sprint(defaults.clusterIssuerAmbientCredentials),
		"defaultIssuerAmbientCredentials":                 fmt.Sprint(defaults.issuerAmbientCredentials),
	} {
		got, ok := upstream[name]
		if !ok {
			t.Errorf("%s is gone from %s; update the runner", name, path)
			continue
		}
		if got != ours {
			t.Errorf("%s is %s in cert-manager, %s in the runner", name, got, ours)
		}
	}
}

func hours(d time.Duration) string { return fmt.Sprintf("%d * time.Hour", int(d/time.Hour)) }

// exprString renders the literal forms defaults.go uses: 20, true,
// 1 * time.Hour.
func exprString(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.BasicLit:
		return e.Value
	case *ast.Ident:
		return e.Name
	case *ast.SelectorExpr:
		return exprString(e.X) + "." + e.Sel.Name
	case *ast.BinaryExpr:
		return exprString(e.X) + " " + e.Op.String() + " " + exprString(e.Y)
	}
	return fmt.Sprintf("%T", e)
}

// TestControllersFlag reads --controllers as cert-manager does: the
// approver left out the way its chart's disableAutoApproval leaves it out.
func TestControllersFlag(t *testing.T) {
	for _, tc := range []struct {
		flag string
		name string
		want bool
	}{
		{"*", "certificaterequests-approver", true},
		{"*,-certificaterequests-approver", "certificaterequests-approver", false},
		{"*,-certificaterequests-approver", "certificates-issuing", true},
		{"certificates-issuing", "certificates-issuing", true},
		{"certificates-issuing", "certificaterequests-approver", false},
	} {
		if got := enabled(tc.name, strings.Split(tc.flag, ",")); got != tc.want {
			t.Errorf("--controllers=%s: %s enabled %t, want %t", tc.flag, tc.name, got, tc.want)
		}
	}
}
