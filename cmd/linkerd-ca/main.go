// Command linkerd-ca creates trust anchors fit for Linkerd and checks
// identity issuer Secrets the way `linkerd check` does.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
