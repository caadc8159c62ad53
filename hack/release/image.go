package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The image's shape, as the Dockerfile's final stage makes it too: one
// file on an empty base, run as a numeric nonroot user, no shell.
const (
	Entrypoint = "/linkerd-ca-issuer"
	User       = "65532:65532"
)

// Meta is what the image says about itself, as OCI annotations (on the
// index and each manifest) and config labels.
type Meta struct {
	Version  string // git describe; also the tag
	Revision string // the commit
	Source   string // the repository URL
	Created  time.Time
}

func (m Meta) annotations() map[string]string {
	return map[string]string{
		"org.opencontainers.image.title":       "linkerd-ca-issuer",
		"org.opencontainers.image.description": "A cert-manager external issuer that signs Linkerd's identity issuer certificate from a trust anchor",
		"org.opencontainers.image.licenses":    "Apache-2.0",
		"org.opencontainers.image.source":      m.Source,
		"org.opencontainers.image.version":     m.Version,
		"org.opencontainers.image.revision":    m.Revision,
		"org.opencontainers.image.created":     m.Created.UTC().Format(time.RFC3339),
	}
}

// Image is the image of one platform: the static binary as the only file.
func Image(platform v1.Platform, binary []byte, m Meta) (v1.Image, error) {
	var layerTar bytes.Buffer
	tw := tar.NewWriter(&layerTar)
	hdr := &tar.Header{
		Name: Entrypoint[1:], Mode: 0o555, Size: int64(len(binary)), Typeflag: tar.TypeReg,
		ModTime: m.Created.UTC(), Format: tar.FormatPAX,
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return nil, err
	}
	if _, err := tw.Write(binary); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	tarBytes := layerTar.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(tarBytes)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("the layer: %w", err)
	}

	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err := mutate.ConfigFile(base, &v1.ConfigFile{
		Architecture: platform.Architecture,
		OS:           platform.OS,
		Variant:      platform.Variant,
		Created:      v1.Time{Time: m.Created.UTC()},
		Config: v1.Config{
			User:       User,
			Entrypoint: []string{Entrypoint},
			WorkingDir: "/",
			Labels:     m.annotations(),
		},
	})
	if err != nil {
		return nil, err
	}
	img, err = mutate.Append(img, mutate.Addendum{
		Layer:     layer,
		MediaType: types.OCILayer,
		History:   v1.History{Created: v1.Time{Time: m.Created.UTC()}, CreatedBy: "COPY linkerd-ca-issuer " + Entrypoint},
	})
	if err != nil {
		return nil, fmt.Errorf("appending the layer: %w", err)
	}
	return mutate.Annotations(img, m.annotations()).(v1.Image), nil
}

// Index is the multi-platform image: one manifest per platform, binaries
// keyed by OS/ARCH.
func Index(binaries map[string][]byte, m Meta) (v1.ImageIndex, map[string]v1.Image, error) {
	platforms := make([]string, 0, len(binaries))
	for p := range binaries {
		platforms = append(platforms, p)
	}
	sort.Strings(platforms)
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	images := map[string]v1.Image{}
	for _, p := range platforms {
		platform, err := v1.ParsePlatform(p)
		if err != nil || platform.OS == "" || platform.Architecture == "" {
			return nil, nil, fmt.Errorf("platform %q: use OS/ARCH", p)
		}
		img, err := Image(*platform, binaries[p], m)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", p, err)
		}
		images[p] = img
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: platform}})
	}
	return mutate.Annotations(idx, m.annotations()).(v1.ImageIndex), images, nil
}

// Write puts the index into an OCI image layout at dir/oci (tagged
// m.Version) and each platform's image into a docker-archive tarball
// (dir/linkerd-ca-issuer-<os>-<arch>.tar, for `kind load image-archive`
// and `docker load`), replacing what was there.
func Write(dir, repository string, binaries map[string][]byte, m Meta) ([]string, error) {
	idx, images, err := Index(binaries, m)
	if err != nil {
		return nil, err
	}
	layoutDir := filepath.Join(dir, "oci")
	if err := os.RemoveAll(layoutDir); err != nil {
		return nil, err
	}
	p, err := layout.Write(layoutDir, empty.Index)
	if err != nil {
		return nil, err
	}
	if err := p.AppendIndex(idx, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": m.Version})); err != nil {
		return nil, fmt.Errorf("writing the OCI layout: %w", err)
	}
	written := []string{layoutDir}
	tag, err := name.NewTag(repository + ":" + m.Version)
	if err != nil {
		return nil, fmt.Errorf("image reference: %w", err)
	}
	for platform, img := range images {
		path := filepath.Join(dir, "linkerd-ca-issuer-"+strings.ReplaceAll(platform, "/", "-")+".tar")
		if err := tarball.WriteToFile(path, tag, img); err != nil {
			return nil, fmt.Errorf("writing %s: %w", path, err)
		}
		written = append(written, path)
	}
	sort.Strings(written)
	return written, nil
}
