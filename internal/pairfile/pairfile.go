// Package pairfile writes files that are only valid together, such as a
// certificate and its private key, as one unit: they are written into a new
// directory, then swapped in for the target directory with one rename, so
// that a crash leaves the old set or the new one, never a key beside the
// wrong certificate.
package pairfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
)

// File is one file of the set.
type File struct {
	Name string
	Data []byte
	Mode fs.FileMode
}

// ExistsError is a set that is already there and was not to be replaced.
type ExistsError struct{ Path string }

func (e *ExistsError) Error() string { return e.Path + " already exists" }

// Write makes dir hold exactly files. dir must not exist, be empty, or hold
// only files of the set (a set written before), which replace allows to be
// replaced. A symbolic link is refused, for dir and inside it: a private key
// is not written wherever a link points.
func Write(dir string, files []File, replace bool) error {
	dir = filepath.Clean(dir)
	held, mode, err := inspect(dir, files)
	if err != nil {
		return err
	}
	if len(held) > 0 && !replace {
		return &ExistsError{Path: filepath.Join(dir, held[0])}
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "."+filepath.Base(dir)+".tmp-")
	if err != nil {
		return err
	}
	// After a swap tmp holds the old set, which goes too.
	defer func() { _ = os.RemoveAll(tmp) }()
	for _, f := range files {
		if err := writeFile(filepath.Join(tmp, f.Name), f.Data, f.Mode); err != nil {
			return err
		}
	}
	if err := os.Chmod(tmp, mode); err != nil {
		return err
	}
	if err := syncDir(tmp); err != nil {
		return err
	}
	if held != nil {
		err = exchange(tmp, dir) // an existing directory, even an empty one
	} else {
		err = os.Rename(tmp, dir)
	}
	if err != nil {
		return fmt.Errorf("moving the new files into %s: %w", dir, err)
	}
	return syncDir(filepath.Dir(dir))
}

// inspect reports the set's files dir holds (nil when dir does not exist)
// and the mode the new directory takes: the old one's, else 0700.
func inspect(dir string, files []File) ([]string, fs.FileMode, error) {
	st, err := os.Lstat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, 0o700, nil
	case err != nil:
		return nil, 0, err
	case st.Mode()&fs.ModeSymlink != 0:
		return nil, 0, fmt.Errorf("%s is a symbolic link; name the directory itself: a private key is not written wherever a link points", dir)
	case !st.IsDir():
		return nil, 0, fmt.Errorf("%s is not a directory", dir)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, 0, err
	}
	held := []string{}
	for _, e := range entries {
		path := filepath.Join(dir, e.Name())
		if e.Type()&fs.ModeSymlink != 0 {
			return nil, 0, fmt.Errorf("%s is a symbolic link; a private key is not written wherever a link points: remove it", path)
		}
		if !slices.ContainsFunc(files, func(f File) bool { return f.Name == e.Name() }) {
			return nil, 0, fmt.Errorf("%s holds %s besides the files written here; they are replaced together by swapping the whole directory, so give them a directory of their own", dir, e.Name())
		}
		held = append(held, path)
	}
	return held, st.Mode().Perm(), nil
}

// writeFile creates a new file (O_EXCL: never an existing one), readable by
// its owner only until written and flushed to disk.
func writeFile(path string, data []byte, mode fs.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(mode)
	}
	if err == nil {
		err = f.Sync()
	}
	return errors.Join(err, f.Close())
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}
