package cli

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/tuxtape/tuxtape/internal/frontend/progress"
	"github.com/tuxtape/tuxtape/internal/server/cvesync"
	"github.com/tuxtape/tuxtape/internal/service"
)

// SyncOptions are the flags of `tuxtape sync`.
type SyncOptions struct {
	Source   string
	Rev      string
	Full     bool
	NoFetch  bool
	Announce string
	JSON     bool
}

func newSyncCmd(g *Globals) *cobra.Command {
	var o SyncOptions
	cmd := &cobra.Command{
		Use:   "sync [--source URL-or-path] [--rev REV]",
		Short: "Mirror the kernel CNA's CVE repository into the database",
		Long: `sync keeps a mirror of the kernel CNA's vulns repository in the data directory,
fetches it, and brings the database to --rev (default: the source's HEAD).

The first run reads every record; later runs read only the records that git
diff names between the last synced commit and the new one. A run commits in
one transaction: if it is killed, the database is as before and a rerun
finishes the job. Malformed records are reported with the reason and skipped.

--announce FILE ingests linux-cve-announce mails (mbox) instead: CVEs the
repository does not have yet appear as "announced" until a sync brings in
their repository record.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runSync(cmd.Context(), g, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Source, "source", "", "repository URL, path or git bundle (env TUXTAPE_SOURCE; default "+cvesync.DefaultSource+")")
	f.StringVar(&o.Rev, "rev", "", "commit, tag or branch to sync to (default the source's HEAD)")
	f.BoolVar(&o.Full, "full", false, "re-read every record instead of the changes since the last sync")
	f.BoolVar(&o.NoFetch, "no-fetch", false, "use the mirror as it is, without fetching")
	f.StringVar(&o.Announce, "announce", "", "ingest linux-cve-announce mails from this mbox file (- for stdin)")
	f.BoolVar(&o.JSON, "json", false, "print the summary as JSON")
	return cmd
}

func runSync(ctx context.Context, g *Globals, o SyncOptions) error {
	if o.Announce != "" {
		in := os.Stdin
		if o.Announce != "-" {
			f, err := os.Open(o.Announce)
			if err != nil {
				return fmt.Errorf("open announcements: %w", err)
			}
			defer f.Close()
			in = f
		}
		sum, err := g.svc.Announce(ctx, in)
		if err != nil {
			return err
		}
		if o.JSON {
			return writeJSON(g.Stdout, sum)
		}
		fmt.Fprintf(g.Stdout, "%d messages: %d new announced CVEs, %d updated, %d already in the repository, %d malformed\n",
			sum.Messages, sum.Added, sum.Updated, sum.Known, sum.Malformed)
		for _, p := range sum.Problems {
			fmt.Fprintf(g.Stderr, "malformed: %s: %s\n", p.ID, p.Reason)
		}
		return nil
	}
	bar := progress.New(g.Stderr, "sync: records", g.Quiet || o.JSON)
	sum, err := g.svc.Sync(ctx, service.SyncOptions{Source: o.Source, Rev: o.Rev, NoFetch: o.NoFetch, Full: o.Full, Progress: bar.Update})
	bar.Done()
	if err != nil {
		return err
	}
	if o.JSON {
		return writeJSON(g.Stdout, sum)
	}
	short := sum.Commit
	if len(short) > 12 {
		short = short[:12]
	}
	fmt.Fprintf(g.Stdout, "%s sync to %s: %d records read, %d added, %d updated, %d newly rejected, %d deleted, %d malformed (%.1fs)\n",
		sum.Mode, short, sum.Records, sum.Added, sum.Updated, sum.Rejected, sum.Deleted, sum.Malformed, sum.Duration.Seconds())
	for _, p := range sum.Problems {
		fmt.Fprintf(g.Stderr, "malformed: %s (%s): %s\n", p.ID, p.File, p.Reason)
	}
	return nil
}
