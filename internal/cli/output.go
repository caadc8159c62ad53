package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/identitycheck"
)

// Output formats of check, as linkerd check's.
const (
	outputTable = "table"
	outputShort = "short"
	outputJSON  = "json"
)

// category is the heading of this extension's checks in linkerd check.
const category = Name

// checkOutput is linkerd check's -o json document (pkg/healthcheck in
// linkerd2), which linkerd check parses from each extension's stdout.
type checkOutput struct {
	Success    bool             `json:"success"`
	Categories []*checkCategory `json:"categories"`
}

type checkCategory struct {
	Name   string       `json:"categoryName"`
	Checks []*checkJSON `json:"checks"`
}

type checkJSON struct {
	Description string `json:"description"`
	Hint        string `json:"hint,omitempty"`
	Error       string `json:"error,omitempty"`
	Result      string `json:"result"` // success, warning or error
}

var jsonResult = map[identitycheck.Status]string{identitycheck.Pass: "success", identitycheck.Warn: "warning", identitycheck.Fail: "error"}

func printResults(w io.Writer, format string, results []identitycheck.Result) error {
	success := !identitycheck.Failed(results)
	if format == outputJSON {
		out := checkOutput{Success: success, Categories: []*checkCategory{}}
		if len(results) > 0 {
			cat := &checkCategory{Name: category}
			for _, r := range results {
				cat.Checks = append(cat.Checks, &checkJSON{Description: r.Name, Error: r.Detail, Result: jsonResult[r.Status]})
			}
			out.Categories = append(out.Categories, cat)
		}
		b, err := json.MarshalIndent(out, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}

	var b strings.Builder
	shown := 0
	for _, r := range results {
		if format == outputShort && r.Status == identitycheck.Pass {
			continue
		}
		if shown == 0 {
			fmt.Fprintf(&b, "%s\n%s\n", category, strings.Repeat("-", len(category)))
		}
		shown++
		fmt.Fprintf(&b, "%s %s\n", r.Status.Mark(), r.Name)
		if r.Detail != "" {
			fmt.Fprintf(&b, "    %s\n", r.Detail)
		}
	}
	if shown > 0 {
		b.WriteString("\n")
	}
	summary := identitycheck.Fail
	if success {
		summary = identitycheck.Pass
	}
	fmt.Fprintf(&b, "Status check results are %s\n", summary.Mark())
	_, err := io.WriteString(w, b.String())
	return err
}
