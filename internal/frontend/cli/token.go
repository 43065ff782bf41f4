package cli

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tuxtape/tuxtape/internal/model/authz"
	"github.com/tuxtape/tuxtape/internal/service"
)

func newTokenCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Manage the bearer tokens the server accepts",
		Long: `A token lets its holder call the server with one role: admin (everything,
tokens and audit included), reviewer (read; review and approve patches),
builder (take build jobs), agent (report for its own machine). Run locally
against the database, these commands make the first admin token.`,
	}
	var role, machine, expires string
	var asJSON bool
	create := &cobra.Command{
		Use:   "create --role ROLE [--machine ID] [--expires DURATION]",
		Short: "Make a token and print its secret (shown this once)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := authz.ParseRole(role)
			if err != nil {
				return usageError{err}
			}
			var ttl time.Duration
			if expires != "" {
				if ttl, err = parseDuration(expires); err != nil || ttl <= 0 {
					return usagef("--expires %q: want a duration like 720h or 30d", expires)
				}
			}
			t, secret, err := g.q.CreateToken(cmd.Context(), service.CreateTokenOptions{Role: r, Machine: machine, Expires: ttl})
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(g.Stdout, struct {
					authz.Token
					Secret string `json:"secret"`
				}{t, secret})
			}
			fmt.Fprintln(g.Stdout, secret)
			fmt.Fprintf(g.Stderr, "token %s (%s) created; its secret is printed above and is not stored: keep it now\n", t.ID, t.Role)
			return nil
		},
	}
	f := create.Flags()
	f.StringVar(&role, "role", "", "admin, reviewer, builder or agent (required)")
	f.StringVar(&machine, "machine", "", "agent tokens: the machine ID it may report for (required for agents)")
	f.StringVar(&expires, "expires", "", "expire after this long (e.g. 720h, 30d; default never)")
	f.BoolVar(&asJSON, "json", false, "print the token and its secret as JSON")

	var listJSON bool
	list := &cobra.Command{
		Use:   "list [--json]",
		Short: "List tokens (never their secrets)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ts, err := g.q.Tokens(cmd.Context())
			if err != nil {
				return err
			}
			if listJSON {
				if ts == nil {
					ts = []authz.Token{}
				}
				return writeJSON(g.Stdout, ts)
			}
			tw := tabwriter.NewWriter(g.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tROLE\tMACHINE\tCREATED\tEXPIRES\tSTATE")
			now := time.Now()
			for _, t := range ts {
				state := "active"
				switch {
				case !t.Revoked.IsZero():
					state = "revoked " + t.Revoked.Format(time.RFC3339)
				case !t.Expires.IsZero() && !now.Before(t.Expires):
					state = "expired"
				}
				exp := "never"
				if !t.Expires.IsZero() {
					exp = t.Expires.Format(time.RFC3339)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Role, orDash(t.Machine), t.Created.Format(time.RFC3339), exp, state)
			}
			return tw.Flush()
		},
	}
	list.Flags().BoolVar(&listJSON, "json", false, "print JSON")
	revoke := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a token: its secret stops working at once",
		Args:  exactArgs(1, "a token ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := g.q.RevokeToken(cmd.Context(), args[0], service.Actor{}); err != nil {
				return err
			}
			fmt.Fprintf(g.Stdout, "revoked token %s\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(create, list, revoke)
	return cmd
}

func newAuditCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "Read the audit log: who changed tokens and kernels, when, from where"}
	var limit int
	var asJSON bool
	list := &cobra.Command{
		Use:   "list [--limit N] [--json]",
		Short: "List audit entries, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			es, err := g.q.Audit(cmd.Context(), limit)
			if err != nil {
				return err
			}
			if asJSON {
				if es == nil {
					es = []authz.AuditEntry{}
				}
				return writeJSON(g.Stdout, es)
			}
			tw := tabwriter.NewWriter(g.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "TIME\tACTOR\tACTION\tTARGET\tFROM\tDETAIL")
			for _, e := range es {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", e.At.Format(time.RFC3339), e.Actor, e.Action, orDash(e.Target), orDash(e.From), e.Detail)
			}
			return tw.Flush()
		},
	}
	list.Flags().IntVar(&limit, "limit", 50, "at most this many entries (0: all)")
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.AddCommand(list)
	return cmd
}
