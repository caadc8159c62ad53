// Package version is the release both binaries were built from, stamped
// once by the Makefile (`git describe` and the commit, through -ldflags -X)
// so that the controller, the CLI, the image tag and the chart's appVersion
// agree.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Version is `git describe --tags --always --dirty` at build time; "dev"
// in a plain `go build`.
var Version = "dev"

// Revision is the commit built; without stamping, what the Go toolchain
// recorded of the work tree, if anything.
var Revision = ""

// String is the version, commit and Go release, for `version` commands and
// the controller's start-up log.
func String() string {
	rev := Revision
	if rev == "" {
		if info, ok := debug.ReadBuildInfo(); ok {
			for _, s := range info.Settings {
				if s.Key == "vcs.revision" {
					rev = s.Value
				}
			}
		}
	}
	if rev == "" {
		rev = "unknown"
	}
	return fmt.Sprintf("%s (commit %s, %s)", Version, rev, runtime.Version())
}
