package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"time"

	"github.com/spf13/cobra"

	"github.com/tuxtape/tuxtape/internal/frontend/progress"
	"github.com/tuxtape/tuxtape/internal/frontend/termtext"
	"github.com/tuxtape/tuxtape/internal/model/vulns"
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
finishes the job. Malformed records are reported with the reason; one that
was stored before keeps its last good version until the repository fixes it,
in full and incremental runs alike. ` + "`tuxtape sync status`" + ` lists them.

Only one sync runs on a data directory at a time: a second one fails at once
with "another sync is running (pid N)" (--no-fetch runs, which only read the
mirror, may run together).

--announce FILE ingests linux-cve-announce mails (mbox) from a regular file
or - (stdin) instead: CVEs the
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
	cmd.AddCommand(newSyncStatusCmd(g))
	return cmd
}

func newSyncStatusCmd(g *Globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status [--json]",
		Short: "Show the last synced commit, the records and the malformed ones",
		Long: `status shows the commit the database was last synced to, when, how many
records it holds by status, what the last sync from this data directory did,
and the malformed records syncs reported, with the reason for each.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := g.q.SyncStatus(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(g.Stdout, st)
			}
			printSyncStatus(g.Stdout, st)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the status as JSON")
	return cmd
}

func printSyncStatus(w io.Writer, st service.SyncStatus) {
	if st.Commit == "" {
		fmt.Fprintln(w, "never synced (run `tuxtape sync`)")
	} else {
		fmt.Fprintf(w, "commit:   %s\n", st.Commit)
		fmt.Fprintf(w, "source:   %s\n", termtext.Line(st.Source))
		fmt.Fprintf(w, "synced:   %s\n", st.SyncedAt.Local().Format(time.DateTime+" MST"))
	}
	if r := st.LastRun; r != nil {
		fmt.Fprintf(w, "last run: %s, %d records read, %d added, %d updated, %d newly rejected, %d deleted, %d malformed (%d kept at their last good version)\n",
			r.Mode, r.Records, r.Added, r.Updated, r.Rejected, r.Deleted, r.Malformed, r.Kept)
	}
	statuses := make([]string, 0, len(st.Records))
	for s := range st.Records {
		statuses = append(statuses, string(s))
	}
	sort.Strings(statuses)
	fmt.Fprint(w, "records: ")
	for _, s := range statuses {
		fmt.Fprintf(w, " %d %s", st.Records[vulns.Status(s)], termtext.Line(s))
	}
	if len(statuses) == 0 {
		fmt.Fprint(w, " none")
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "problems: %d\n", len(st.Problems))
	for _, p := range st.Problems {
		fmt.Fprintf(w, "  %s (%s): %s\n", termtext.Line(p.ID), termtext.Line(p.File), termtext.Line(p.Reason))
	}
}

func runSync(ctx context.Context, g *Globals, o SyncOptions) error {
	if o.Announce != "" {
		if err := g.local("sync --announce"); err != nil {
			return err
		}
		in := os.Stdin
		if o.Announce != "-" {
			f, err := openMbox(o.Announce)
			if err != nil {
				return err
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
			fmt.Fprintf(g.Stderr, "malformed: %s: %s\n", termtext.Line(p.ID), termtext.Line(p.Reason))
		}
		return nil
	}
	bar := progress.New(g.Stderr, "sync: records", g.Quiet || o.JSON)
	// Through --server the sync runs on the server's machine, from its own
	// source; the answer comes when it is done.
	sum, err := g.q.Sync(ctx, service.SyncOptions{Source: o.Source, Rev: o.Rev, NoFetch: o.NoFetch, Full: o.Full, Progress: bar.Update})
	bar.Done()
	if err != nil {
		return err
	}
	if o.JSON {
		return writeJSON(g.Stdout, sum)
	}
	fmt.Fprintf(g.Stdout, "%s sync to %s: %d records read, %d added, %d updated, %d newly rejected, %d deleted, %d malformed (%.1fs)\n",
		sum.Mode, vulns.ShortCommit(sum.Commit), sum.Records, sum.Added, sum.Updated, sum.Rejected, sum.Deleted, sum.Malformed, sum.Duration.Seconds())
	for _, p := range sum.Problems {
		fmt.Fprintf(g.Stderr, "malformed: %s (%s): %s\n", termtext.Line(p.ID), termtext.Line(p.File), termtext.Line(p.Reason))
	}
	return nil
}

// openMbox opens an announcement file. It must be a regular file: a
// directory opens, reads as an error and would pass for one malformed
// mail; a pipe goes through - (stdin).
func openMbox(path string) (*os.File, error) {
	// Stat before opening: opening a FIFO would wait for a writer.
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("open announcements: %w", err)
	}
	if !fi.Mode().IsRegular() {
		kind := "not a regular file"
		if fi.IsDir() {
			kind = "a directory"
		}
		return nil, fmt.Errorf("open announcements %s: %s, want an mbox file or - for stdin", termtext.Line(path), kind)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open announcements: %w", err)
	}
	return f, nil
}
