package cli

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"
)

// extensionMetadata is what `linkerd check` asks every linkerd-* on PATH
// for (linkerd2's healthcheck.ExtensionMetadataOutput): an extension that
// answers with its own executable name and checks "always" is checked by
// every `linkerd check`, whether or not it has a namespace in the cluster.
type extensionMetadata struct {
	Name   string `json:"name"`
	Checks string `json:"checks"`
}

func newExtensionMetadata(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:    "_extension-metadata",
		Short:  "Describe this Linkerd extension to linkerd check",
		Hidden: true,
		Args:   noArgs,
		RunE: func(*cobra.Command, []string) error {
			b, err := json.Marshal(extensionMetadata{Name: Name, Checks: "always"})
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(g.stdout, "%s\n", b)
			return err
		},
	}
}
