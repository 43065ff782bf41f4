package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tuxtape/tuxtape/internal/frontend/termtext"
	"github.com/tuxtape/tuxtape/internal/model/fleet"
	"github.com/tuxtape/tuxtape/internal/service"
)

func newFleetCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "fleet",
		Short: "Look at the machines agents report from: kernels, livepatches, events",
		Long: `Agents heartbeat their machine's state (kernel, loaded livepatches, patch
level, CVEs fixed) and report events (applied, apply_failed, rolled_back,
bug_detected). A machine not heard from for ` + fmt.Sprint(int(fleet.StaleAfter.Minutes())) + ` minutes shows as stale.`,
	}
	var kernel, state string
	var listJSON bool
	list := &cobra.Command{
		Use:   "list [--kernel RELEASE] [--state STATE] [--json]",
		Short: "List machines by ID",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ms, err := g.q.ListMachines(cmd.Context(), service.MachineQuery{Kernel: kernel, State: fleet.State(state)})
			if err != nil {
				return err
			}
			if listJSON {
				return writeJSON(g.Stdout, ms)
			}
			tw := tabwriter.NewWriter(g.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tHOSTNAME\tKERNEL\tSTATE\tLEVEL\tPATCHES\tCVES\tLAST SEEN")
			for _, m := range ms {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\n", m.ID, termtext.Line(m.Hostname), termtext.Line(m.Kernel), m.State,
					orDash(termtext.Line(m.Livepatch.Level)), len(m.Livepatch.Patches), len(m.Livepatch.CVEs), m.LastSeen.Format(time.RFC3339))
			}
			return tw.Flush()
		},
	}
	f := list.Flags()
	f.StringVar(&kernel, "kernel", "", "only machines running this kernel release (uname -r)")
	f.StringVar(&state, "state", "", "only machines in this state: ok, patching, failed, rolled_back or stale")
	f.BoolVar(&listJSON, "json", false, "print JSON")

	var events int
	var showJSON bool
	show := &cobra.Command{
		Use:   "show ID [--events N] [--json]",
		Short: "Show a machine, its livepatches and its recent events",
		Args:  exactArgs(1, "a machine ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := g.q.Machine(cmd.Context(), args[0], events)
			if err != nil {
				return err
			}
			if showJSON {
				return writeJSON(g.Stdout, d)
			}
			printMachine(g, &d)
			return nil
		},
	}
	show.Flags().IntVar(&events, "events", service.DefaultEvents, fmt.Sprintf("show this many recent events (at most %d)", service.MaxEvents))
	show.Flags().BoolVar(&showJSON, "json", false, "print JSON")
	var healthPatch string
	var healthJSON bool
	health := &cobra.Command{
		Use:   "health --patch MODULE [--json]",
		Short: "How a livepatch fares, ring by ring: machines applied, failing, and halts",
		Long: `health counts, per ring, the machines that applied the livepatch module and the
machines that reported it failing (apply_failed, rolled_back, bug_detected).
When failures in a ring reach the server's threshold (serve --halt-after N,
default 1) its promotion out of that ring is halted: tuxtape archive promote
refuses it, and the event stream says ring.halted.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			hs, err := g.q.FleetHealth(cmd.Context(), healthPatch)
			if err != nil {
				return err
			}
			if healthJSON {
				return writeJSON(g.Stdout, hs)
			}
			tw := tabwriter.NewWriter(g.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "RING\tAPPLIED\tFAILED\tPROMOTION")
			for _, h := range hs {
				state := "open"
				if h.Halted {
					state = "HALTED"
				}
				fmt.Fprintf(tw, "%s\t%d\t%d\t%s\n", orDash(termtext.Line(h.Ring)), h.Applied, h.Failed, state)
			}
			return tw.Flush()
		},
	}
	health.Flags().StringVar(&healthPatch, "patch", "", "the livepatch module's name (as /sys/kernel/livepatch shows it)")
	health.Flags().BoolVar(&healthJSON, "json", false, "print JSON")
	cmd.AddCommand(list, show, health)
	return cmd
}

// printMachine prints a machine for people; everything the agent sent is
// escaped, since a hostname or a kernel log line could drive the terminal.
func printMachine(g *Globals, d *service.MachineDetail) {
	w := g.Stdout
	m := &d.Machine
	fmt.Fprintf(w, "%s\n", m.ID)
	fmt.Fprintf(w, "  hostname:      %s\n", termtext.Line(m.Hostname))
	fmt.Fprintf(w, "  kernel:        %s\n", termtext.Line(m.Kernel))
	fmt.Fprintf(w, "  state:         %s (last seen %s)\n", m.State, m.LastSeen.Format(time.RFC3339))
	fmt.Fprintf(w, "  agent:         %s\n", orDash(termtext.Line(m.AgentVersion)))
	fmt.Fprintf(w, "  ring:          %s\n", orDash(termtext.Line(m.Ring)))
	fmt.Fprintf(w, "  patch level:   %s\n", orDash(termtext.Line(m.Livepatch.Level)))
	fmt.Fprintf(w, "  patches:       %d\n", len(m.Livepatch.Patches))
	for _, p := range m.Livepatch.Patches {
		var flags []string
		if p.Enabled {
			flags = append(flags, "enabled")
		} else {
			flags = append(flags, "disabled")
		}
		if p.Transition {
			flags = append(flags, "in transition")
		}
		fmt.Fprintf(w, "    %s %s (%s)\n", termtext.Line(p.Name), orDash(termtext.Line(p.Version)), strings.Join(flags, ", "))
	}
	fmt.Fprintf(w, "  CVEs fixed:    %d", len(m.Livepatch.CVEs))
	if n := len(m.Livepatch.CVEs); n > 0 {
		shown := m.Livepatch.CVEs[:min(n, 10)]
		fmt.Fprintf(w, " (%s", strings.Join(shown, " "))
		if n > len(shown) {
			fmt.Fprintf(w, " and %d more", n-len(shown))
		}
		fmt.Fprint(w, ")")
	}
	fmt.Fprintln(w)
	if len(d.Events) == 0 {
		return
	}
	fmt.Fprintf(w, "  events (newest first):\n")
	for _, e := range d.Events {
		fmt.Fprintf(w, "    %s  %s", e.At.Format(time.RFC3339), e.Kind)
		if e.Patch != "" {
			fmt.Fprintf(w, "  %s", termtext.Line(e.Patch))
		}
		if e.Detail != "" {
			fmt.Fprintf(w, ": %s", termtext.Line(e.Detail))
		}
		fmt.Fprintln(w)
		for _, l := range e.Log {
			fmt.Fprintf(w, "      | %s\n", termtext.Line(l))
		}
	}
}
