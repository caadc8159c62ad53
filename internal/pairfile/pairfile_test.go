package pairfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func pair(cert, key string) []File {
	return []File{{Name: "ca.crt", Data: []byte(cert), Mode: 0o644}, {Name: "ca.key", Data: []byte(key), Mode: 0o600}}
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestWriteNewAndReplace: a new pair lands whole with its modes; replacing
// it needs replace, swaps in both files, and leaves no temporary behind.
func TestWriteNewAndReplace(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "pki")
	if err := Write(dir, pair("cert-1", "key-1"), false); err != nil {
		t.Fatal(err)
	}
	for name, mode := range map[string]fs.FileMode{"ca.crt": 0o644, "ca.key": 0o600} {
		if st, err := os.Stat(filepath.Join(dir, name)); err != nil || st.Mode().Perm() != mode {
			t.Errorf("%s: %v, mode %v, want %v", name, err, st.Mode().Perm(), mode)
		}
	}
	var exists *ExistsError
	if err := Write(dir, pair("cert-2", "key-2"), false); !errors.As(err, &exists) {
		t.Fatalf("writing over a pair without replace: %v", err)
	}
	if read(t, filepath.Join(dir, "ca.key")) != "key-1" {
		t.Fatal("a refused write changed the key")
	}
	// An old key file with a loose mode does not pass it on.
	if err := os.Chmod(filepath.Join(dir, "ca.key"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Write(dir, pair("cert-2", "key-2"), true); err != nil {
		t.Fatal(err)
	}
	if read(t, filepath.Join(dir, "ca.crt")) != "cert-2" || read(t, filepath.Join(dir, "ca.key")) != "key-2" {
		t.Error("the pair was not replaced")
	}
	if st, _ := os.Stat(filepath.Join(dir, "ca.key")); st.Mode().Perm() != 0o600 {
		t.Errorf("replaced key has mode %v", st.Mode().Perm())
	}
	if entries, _ := os.ReadDir(parent); len(entries) != 1 {
		t.Errorf("left behind in %s: %v", parent, entries)
	}
}

// TestWriteIntoAnEmptyDirectory: an existing empty directory takes the pair.
func TestWriteIntoAnEmptyDirectory(t *testing.T) {
	dir := t.TempDir()
	if err := Write(dir, pair("c", "k"), false); err != nil {
		t.Fatal(err)
	}
	if read(t, filepath.Join(dir, "ca.key")) != "k" {
		t.Error("no key")
	}
}

// TestWriteRefusesSymlinksAndForeignFiles: no key is written through a
// link, and a directory holding other files is not swapped away.
func TestWriteRefusesSymlinksAndForeignFiles(t *testing.T) {
	parent := t.TempDir()
	target := filepath.Join(parent, "elsewhere")
	if err := os.Mkdir(target, 0o700); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(parent, "link")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if err := Write(link, pair("c", "k"), true); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("through a linked directory: %v", err)
	}

	dir := filepath.Join(parent, "pki")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(target, "stolen"), filepath.Join(dir, "ca.key")); err != nil {
		t.Fatal(err)
	}
	if err := Write(dir, pair("c", "k"), true); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("over a linked ca.key: %v", err)
	}
	if _, err := os.Stat(filepath.Join(target, "stolen")); !errors.Is(err, fs.ErrNotExist) {
		t.Error("the key was written where the link points")
	}

	other := filepath.Join(parent, "repo")
	if err := os.Mkdir(other, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(other, "README"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Write(other, pair("c", "k"), true); err == nil || !strings.Contains(err.Error(), "holds README besides") {
		t.Errorf("a directory with other files: %v", err)
	}
	if read(t, filepath.Join(other, "README")) != "mine" {
		t.Error("another file was lost")
	}
}

// TestWriteFailureKeepsTheOldPair: when the new pair cannot be written (a
// file name that cannot be created stands in for a full disk or a crash),
// the old pair stays whole.
func TestWriteFailureKeepsTheOldPair(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	if err := Write(dir, pair("cert-1", "key-1"), false); err != nil {
		t.Fatal(err)
	}
	broken := append(pair("cert-2", "key-2"), File{Name: "no/such/dir", Data: []byte("x"), Mode: 0o600})
	if err := Write(dir, broken, true); err == nil {
		t.Fatal("a failed write reported success")
	}
	if read(t, filepath.Join(dir, "ca.crt")) != "cert-1" || read(t, filepath.Join(dir, "ca.key")) != "key-1" {
		t.Error("a failed write left a half pair")
	}
}
