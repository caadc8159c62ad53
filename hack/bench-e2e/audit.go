package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// signedTwice reads the issuer's audit lines: how many requests it signed,
// how many of them again to the same certificate (idempotent, harmless but
// work), and how many to a different one, which must never happen.
func signedTwice(dir string) (requests, again, different int, err error) {
	logs, err := filepath.Glob(filepath.Join(dir, "issuer*.log"))
	if err != nil {
		return 0, 0, 0, err
	}
	if len(logs) == 0 {
		return 0, 0, 0, fmt.Errorf("no issuer log in %s", dir)
	}
	seen := map[string]map[string]int{}
	for _, path := range logs {
		f, err := os.Open(path)
		if err != nil {
			return 0, 0, 0, err
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var line struct{ Msg, Request, SHA256 string }
			if json.Unmarshal(sc.Bytes(), &line) != nil || line.Msg != "signed" || line.SHA256 == "" {
				continue
			}
			if seen[line.Request] == nil {
				seen[line.Request] = map[string]int{}
			}
			seen[line.Request][line.SHA256]++
		}
		err = sc.Err()
		f.Close()
		if err != nil {
			return 0, 0, 0, err
		}
	}
	for _, certs := range seen {
		if len(certs) > 1 {
			different++
		}
		for _, n := range certs {
			if n > 1 {
				again++
			}
		}
	}
	return len(seen), again, different, nil
}
