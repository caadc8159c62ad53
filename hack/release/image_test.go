package main

import (
	"archive/tar"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

var meta = Meta{Version: "v1.2.3", Revision: "0123456789abcdef0123456789abcdef01234567", Source: "https://example.com/repo", Created: time.Unix(1764500000, 0)}

// files lists the paths in an image's filesystem, with their modes.
func files(t *testing.T, img v1.Image) map[string]os.FileMode {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]os.FileMode{}
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			out[strings.TrimPrefix(h.Name, "./")] = h.FileInfo().Mode()
		}
		rc.Close()
	}
	return out
}

func readFile(t *testing.T, img v1.Image, path string) []byte {
	t.Helper()
	layers, _ := img.Layers()
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if err != nil {
				break
			}
			if h.Name == path {
				b, err := io.ReadAll(tr)
				if err != nil {
					t.Fatal(err)
				}
				return b
			}
		}
	}
	t.Fatalf("no %s in the image", path)
	return nil
}

// assertImage checks one platform's image: the config, the one file, the
// annotations.
func assertImage(t *testing.T, img v1.Image, platform v1.Platform, m Meta) {
	t.Helper()
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.OS != platform.OS || cfg.Architecture != platform.Architecture {
		t.Errorf("config platform %s/%s, want %s", cfg.OS, cfg.Architecture, platform)
	}
	if cfg.Config.User != "65532:65532" || !slices.Equal(cfg.Config.Entrypoint, []string{"/linkerd-ca-issuer"}) || len(cfg.Config.Cmd) != 0 {
		t.Errorf("user %q entrypoint %q cmd %q", cfg.Config.User, cfg.Config.Entrypoint, cfg.Config.Cmd)
	}
	fs := files(t, img)
	if _, ok := fs["bin/sh"]; ok || len(fs) != 1 || fs["linkerd-ca-issuer"] != 0o555 {
		t.Errorf("filesystem %v, want only linkerd-ca-issuer (r-x), no shell", fs)
	}
	manifest, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if manifest.MediaType != types.OCIManifestSchema1 || manifest.Config.MediaType != types.OCIConfigJSON {
		t.Errorf("media types %s, %s: want OCI", manifest.MediaType, manifest.Config.MediaType)
	}
	for _, annotations := range []map[string]string{manifest.Annotations, cfg.Config.Labels} {
		assertAnnotations(t, annotations, m)
	}
}

func assertAnnotations(t *testing.T, a map[string]string, m Meta) {
	t.Helper()
	for k, want := range map[string]string{
		"org.opencontainers.image.source":   m.Source,
		"org.opencontainers.image.version":  m.Version,
		"org.opencontainers.image.revision": m.Revision,
		"org.opencontainers.image.licenses": "Apache-2.0",
	} {
		if a[k] != want {
			t.Errorf("annotation %s = %q, want %q", k, a[k], want)
		}
	}
}

func TestIndexShape(t *testing.T) {
	binaries := map[string][]byte{"linux/amd64": []byte("amd64 binary"), "linux/arm64": []byte("arm64 binary")}
	idx, _, err := Index(binaries, meta)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if im.MediaType != types.OCIImageIndex || len(im.Manifests) != 2 {
		t.Fatalf("index %s with %d manifests", im.MediaType, len(im.Manifests))
	}
	assertAnnotations(t, im.Annotations, meta)
	for _, d := range im.Manifests {
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		assertImage(t, img, *d.Platform, meta)
		if got := string(readFile(t, img, "linkerd-ca-issuer")); got != d.Platform.Architecture+" binary" {
			t.Errorf("%s holds %q", d.Platform, got)
		}
	}
	// Reproducible: the same inputs give the same digest.
	again, _, _ := Index(binaries, meta)
	d1, _ := idx.Digest()
	d2, _ := again.Digest()
	if d1 != d2 {
		t.Errorf("two builds of the same inputs: %s and %s", d1, d2)
	}
}

// TestBuiltImage reads what `make image` wrote (IMAGE_DIR), and runs the
// binary of this machine's platform from it.
func TestBuiltImage(t *testing.T) {
	dir := os.Getenv("IMAGE_DIR")
	want := Meta{Version: os.Getenv("IMAGE_VERSION"), Revision: os.Getenv("IMAGE_REVISION"), Source: "https://github.com/linkerd-ca-issuer/linkerd-ca-issuer"}
	if dir == "" || want.Version == "" || want.Revision == "" {
		t.Fatal("IMAGE_DIR, IMAGE_VERSION and IMAGE_REVISION are unset: run `make test-image`, which builds the image first")
	}
	p, err := layout.FromPath(filepath.Join(dir, "oci"))
	if err != nil {
		t.Fatal(err)
	}
	root, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	rm, err := root.IndexManifest()
	if err != nil || len(rm.Manifests) != 1 || rm.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != want.Version {
		t.Fatalf("layout index %+v (%v): want one image index tagged %s", rm, err, want.Version)
	}
	idx, err := root.ImageIndex(rm.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	assertAnnotations(t, im.Annotations, want)
	var platforms []string
	for _, d := range im.Manifests {
		platforms = append(platforms, d.Platform.String())
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		assertImage(t, img, *d.Platform, want)

		// The docker-archive tarball holds the same image.
		tb, err := tarball.ImageFromPath(filepath.Join(dir, "linkerd-ca-issuer-"+d.Platform.OS+"-"+d.Platform.Architecture+".tar"), nil)
		if err != nil {
			t.Fatal(err)
		}
		tbCfg, _ := tb.ConfigName()
		layoutCfg, _ := img.ConfigName()
		if tbCfg != layoutCfg {
			t.Errorf("%s: the tarball's config %s is not the layout's %s", d.Platform, tbCfg, layoutCfg)
		}

		if d.Platform.OS != runtime.GOOS || d.Platform.Architecture != runtime.GOARCH {
			continue
		}
		bin := filepath.Join(t.TempDir(), "linkerd-ca-issuer")
		if err := os.WriteFile(bin, readFile(t, img, "linkerd-ca-issuer"), 0o755); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(bin, "--version").CombinedOutput()
		if err != nil || !strings.HasPrefix(string(out), "linkerd-ca-issuer "+want.Version+" (commit "+want.Revision+",") {
			t.Errorf("%s --version: %v %q, want version %s commit %s", d.Platform, err, out, want.Version, want.Revision)
		}
	}
	slices.Sort(platforms)
	if !slices.Equal(platforms, []string{"linux/amd64", "linux/arm64"}) {
		t.Errorf("platforms %v", platforms)
	}
}
