// Command tuxtape is TuxTape's server-side command line.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/tuxtape/tuxtape/internal/frontend/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
