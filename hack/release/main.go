// Command release builds the controller image without a container engine,
// and pushes it: `make image`, `make release` and the release workflow run
// it, so that the image here and the one published are built alike.
//
//	release image --out DIR --repository REPO --version V --revision R --source URL --created UNIX \
//	    --binary linux/amd64=PATH --binary linux/arm64=PATH
//	release push --layout DIR/oci --image REPO:TAG
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "release:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return errors.New("usage: release image|push [flags]")
	}
	switch args[0] {
	case "image":
		return buildImage(args[1:])
	case "push":
		return push(args[1:])
	}
	return fmt.Errorf("unknown command %q: use image or push", args[0])
}

type binaryFlags map[string]string

func (b binaryFlags) String() string { return fmt.Sprint(map[string]string(b)) }

func (b binaryFlags) Set(s string) error {
	platform, path, ok := strings.Cut(s, "=")
	if !ok || strings.Count(platform, "/") != 1 {
		return fmt.Errorf("%q: use OS/ARCH=PATH", s)
	}
	b[platform] = path
	return nil
}

func buildImage(args []string) error {
	fs := flag.NewFlagSet("image", flag.ContinueOnError)
	out := fs.String("out", "", "directory for the OCI layout and the tarballs")
	repo := fs.String("repository", "ghcr.io/linkerd-ca-issuer/linkerd-ca-issuer", "image repository the tarballs are tagged in")
	var m Meta
	fs.StringVar(&m.Version, "version", "", "version, also the tag")
	fs.StringVar(&m.Revision, "revision", "", "commit")
	fs.StringVar(&m.Source, "source", "https://github.com/linkerd-ca-issuer/linkerd-ca-issuer", "repository URL")
	created := fs.String("created", "", "creation time, seconds since the epoch (the commit's, for reproducible images)")
	binaries := binaryFlags{}
	fs.Var(binaries, "binary", "OS/ARCH=PATH of a static controller binary (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" || m.Version == "" || m.Revision == "" || len(binaries) == 0 {
		return errors.New("image needs --out, --version, --revision and at least one --binary")
	}
	secs, err := strconv.ParseInt(*created, 10, 64)
	if err != nil {
		return fmt.Errorf("--created %q: seconds since the epoch: %w", *created, err)
	}
	m.Created = time.Unix(secs, 0).UTC()
	data := map[string][]byte{}
	for p, path := range binaries {
		if data[p], err = os.ReadFile(path); err != nil {
			return err
		}
	}
	written, err := Write(*out, *repo, data, m)
	if err != nil {
		return err
	}
	for _, w := range written {
		fmt.Println(w)
	}
	return nil
}

// push uploads the layout's index under a tag, with the credentials of
// ~/.docker/config.json (docker login, or the workflow's login step).
func push(args []string) error {
	fs := flag.NewFlagSet("push", flag.ContinueOnError)
	dir := fs.String("layout", "", "OCI image layout written by `release image`")
	ref := fs.String("image", "", "REPOSITORY:TAG to push to")
	if err := fs.Parse(args); err != nil {
		return err
	}
	tag, err := name.NewTag(*ref)
	if err != nil {
		return fmt.Errorf("--image: %w", err)
	}
	p, err := layout.FromPath(*dir)
	if err != nil {
		return err
	}
	root, err := p.ImageIndex()
	if err != nil {
		return err
	}
	manifest, err := root.IndexManifest()
	if err != nil {
		return err
	}
	if len(manifest.Manifests) != 1 {
		return fmt.Errorf("%s holds %d entries, want the one image index `release image` writes", *dir, len(manifest.Manifests))
	}
	idx, err := root.ImageIndex(manifest.Manifests[0].Digest)
	if err != nil {
		return err
	}
	if err := remote.WriteIndex(tag, idx, remote.WithAuthFromKeychain(authn.DefaultKeychain)); err != nil {
		return fmt.Errorf("pushing %s: %w", tag, err)
	}
	digest, _ := idx.Digest()
	fmt.Printf("%s@%s\n", tag, digest)
	return nil
}
