//go:build !linux && !darwin

package pairfile

import "errors"

// exchange has no atomic swap of two directories to use here.
func exchange(_, b string) error {
	return errors.New("this platform cannot swap directories atomically; move " + b + " away first")
}
