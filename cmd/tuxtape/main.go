// Command tuxtape is TuxTape's server-side command line.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/tuxtape/tuxtape/internal/frontend/cli"
)

func main() {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		// The first signal asks the running command to stop cleanly; a
		// second one ends the process at once, whatever it is doing (some
		// steps, such as a sync's database write, do not look at ctx).
		<-sigs
		cancel()
		<-sigs
		fmt.Fprintln(os.Stderr, "tuxtape: interrupted again: exiting now")
		os.Exit(cli.ExitCanceled)
	}()
	code := cli.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	os.Exit(code)
}
