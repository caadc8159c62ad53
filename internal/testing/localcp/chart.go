package localcp

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// ReleaseName is the Helm release the suite renders the chart as; with it
// the chart names its ServiceAccount linkerd-ca-issuer, the IssuerUser.
const ReleaseName = "linkerd-ca-issuer"

// RenderChart renders charts/linkerd-ca-issuer with bin/helm into the
// release namespace IssuerNamespace, with extra `--set` values, as `helm
// install` does on a 1.36 API server.
func RenderChart(repoRoot string, set ...string) ([]*unstructured.Unstructured, error) {
	// What the 1.36 API server's discovery tells `helm install`, and `helm
	// template` does not know by itself.
	return RenderChartServing(repoRoot, []string{"admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy"}, set...)
}

// RenderChartServing is RenderChart where the API server serves exactly
// the optional APIs given (group/version/Kind), for templates rendered only
// where an API is served.
func RenderChartServing(repoRoot string, apis []string, set ...string) ([]*unstructured.Unstructured, error) {
	args := []string{"template", ReleaseName, filepath.Join(repoRoot, "charts", "linkerd-ca-issuer"),
		"--namespace", IssuerNamespace, "--kube-version", "1.36.0"}
	for _, a := range apis {
		args = append(args, "--api-versions", a)
	}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	cmd := exec.Command(filepath.Join(repoRoot, "bin", "helm"), args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("helm template: %w: %s", err, stderr.String())
	}
	return DecodeManifests(out)
}

// DecodeManifests splits a multi-document YAML stream into objects.
func DecodeManifests(raw []byte) ([]*unstructured.Unstructured, error) {
	var objs []*unstructured.Unstructured
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(raw)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, err
		}
		obj := &unstructured.Unstructured{}
		if err := utilyaml.Unmarshal(doc, &obj.Object); err != nil {
			return nil, err
		}
		if len(obj.Object) > 0 {
			objs = append(objs, obj)
		}
	}
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "config", "crd")); err == nil {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				return dir, nil
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("cannot find the repository root (a directory with go.mod and config/crd) above the working directory")
		}
		dir = parent
	}
}
