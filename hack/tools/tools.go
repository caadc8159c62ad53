//go:build tools

// Package tools pins the versions of the tools the Makefile builds into bin/.
// It is its own module so that their dependencies stay out of the product's
// go.mod.
package tools

import (
	_ "sigs.k8s.io/controller-tools/cmd/controller-gen"
)
