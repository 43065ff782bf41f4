package cli

import (
	"os"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/tuxtape/tuxtape/internal/build/kernelsrc"
	"github.com/tuxtape/tuxtape/internal/frontend/api"
	"github.com/tuxtape/tuxtape/internal/frontend/dash"
	"github.com/tuxtape/tuxtape/internal/service"
)

// dashSource is what the dashboard reads, checked here against the
// server's client: api.Remote must keep offering it.
var _ dash.Source = api.Remote{}

func newDashCmd(g *Globals) *cobra.Command {
	var o dash.Options
	var profile string
	cmd := &cobra.Command{
		Use:   "dash [--kernel NAME] [--profile real|static|none] [--events-after SEQ]",
		Short: "The terminal dashboard: CVE queue, CVEs, fleet, kernels, events, patches, reviews, patch sets",
		Long: `dash shows a server's CVE queue by priority for a kernel, each CVE's page with
its verdict and evidence, the fleet, the kernels, the live event stream, a
deployable patch (made from a fix file; its build-and-vet log followed live;
edited in $EDITOR), the patches waiting for review (approve or reject with a
comment) and the kernel's patch sets with each ring's health, in the terminal.
It needs --server (TUXTAPE_SERVER) and a token; everything it shows is the
server's, asked again when the event stream says it changed.

The kernels page adds a kernel (n: a form; a config file named there is read
on this machine and sent), makes a new kernel's config (c: the base kernel's
config or a defconfig target, the kernel's own make menuconfig run here on a
source tree of the cache, with its output in a private directory; the saved
config goes to the server as a new kernel of the base's release and source),
says where a file of a kernel's build goes (/ on a kernel) and lists its build
jobs (b; enter follows a job's log).

Keys: 1-8 or tab/shift-tab change pages, enter opens, esc goes back, / searches
the queue, K, t, s and a cycle its kernel, tier, status and "needs action", ?
shows every key, q quits. The mouse selects rows and tabs and scrolls. Every
page has a CLI equivalent: cve list|show, fleet list|show|health, kernel
list|show|add|profile, job list|log, events --follow, patch
create|show|edit|review, patchset build|list.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if g.client == nil {
				return usageError{api.ErrNoServer}
			}
			o.Profile = service.ProfileChoice(profile)
			if err := o.Profile.Valid(); err != nil {
				return usageError{err}
			}
			if !term.IsTerminal(int(os.Stdin.Fd())) || !term.IsTerminal(int(os.Stdout.Fd())) {
				return usagef("dash needs a terminal on standard input and output; for scripts, use cve list, fleet list and events --follow")
			}
			// menuconfig runs on this machine, on a source tree of its
			// cache (the one the kernel commands unpack); the server
			// gets the saved config.
			o.Tree = kernelsrc.Sources{CacheDir: g.cfg.CacheDir}.Tree
			return dash.Run(cmd.Context(), api.Remote{C: g.client}, o, os.Stdin, os.Stdout)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Kernel, "kernel", "", "the queue's kernel at start (default: the first registered)")
	f.StringVar(&profile, "profile", "", "build profile for verdicts: real, static or none (default: real if stored, else static)")
	f.Int64Var(&o.EventsAfter, "events-after", -1, "start the event feed after this sequence number (-1: from now on, 0: from the first)")
	return cmd
}
