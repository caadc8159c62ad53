package cli

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"
)

// manifestFormat is -o for commands that print a manifest instead of
// writing to the cluster, for GitOps (SealedSecrets, SOPS, Argo CD, Flux).
type manifestFormat string

func (f *manifestFormat) bind(flags *pflag.FlagSet) {
	flags.StringVarP((*string)(f), "output", "o", "yaml", "Manifest format: yaml or json")
}

func (f manifestFormat) validate() error {
	if f != "yaml" && f != "json" {
		return usageErrorf("--output %q: use yaml or json", string(f))
	}
	return nil
}

// print writes obj, whose TypeMeta is set, as one YAML document or as
// indented JSON.
func (f manifestFormat) print(w io.Writer, obj runtime.Object) error {
	var out []byte
	var err error
	if f == "json" {
		out, err = json.MarshalIndent(obj, "", "  ")
		out = append(out, '\n')
	} else {
		out, err = yaml.Marshal(obj)
		out = append([]byte("---\n"), out...)
	}
	if err != nil {
		return fmt.Errorf("encoding the manifest: %w", err)
	}
	_, err = w.Write(out)
	return err
}
