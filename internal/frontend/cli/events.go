package cli

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/tuxtape/tuxtape/internal/frontend/termtext"
	"github.com/tuxtape/tuxtape/internal/model/event"
	"github.com/tuxtape/tuxtape/internal/service"
)

func newEventsCmd(g *Globals) *cobra.Command {
	var o service.WatchOptions
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "events [--after SEQ] [--kind KIND]... [--follow] [--json]",
		Short: "Print the event stream: sync runs, kernel changes, machines' reports",
		Long: `events prints what happened, in the order the database committed it, one line
per event: its sequence number, time, kind, subject, actor and detail. Kinds are
sync.started, sync.finished, sync.failed, kernel.added, kernel.removed and
fleet.<event> (fleet.applied, fleet.rolled_back, …); --kind takes a kind or an
area ending in a dot (sync., fleet.), and may be repeated.

--after SEQ starts after that event (0, the default, from the first; -1 from
now on); --follow keeps printing new events until interrupted — on a server,
those of every replica. --json prints one JSON object per line.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			enc := json.NewEncoder(g.Stdout)
			return g.q.Watch(cmd.Context(), o, func(e event.Event) error {
				if asJSON {
					return enc.Encode(e)
				}
				_, err := fmt.Fprintf(g.Stdout, "%d\t%s\t%s\t%s\t%s\t%s\n", e.Seq, e.At.Local().Format(time.RFC3339), e.Kind,
					termtext.Line(e.Subject), orDash(termtext.Line(e.Actor)), termtext.Line(e.Detail))
				return err
			})
		},
	}
	f := cmd.Flags()
	f.Int64Var(&o.After, "after", 0, "start after this sequence number (-1: only new events)")
	f.StringArrayVar(&o.Kinds, "kind", nil, "only events of this kind, or area ending in '.' (repeatable)")
	f.BoolVar(&o.Follow, "follow", false, "keep printing new events until interrupted")
	f.BoolVar(&asJSON, "json", false, "print one JSON object per line")
	return cmd
}
