// Command tuxtape-agent keeps a host's kernel livepatched from a signed
// TuxTape archive; see internal/agent/cli.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/tuxtape/tuxtape/internal/agent/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
