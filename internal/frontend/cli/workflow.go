package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tuxtape/tuxtape/internal/frontend/termtext"
	"github.com/tuxtape/tuxtape/internal/model/patch"
	"github.com/tuxtape/tuxtape/internal/model/refusal"
	"github.com/tuxtape/tuxtape/internal/model/vulns"
	"github.com/tuxtape/tuxtape/internal/service"
)

// workflowQueries are the patch workflow's calls, local or on a server.
type workflowQueries interface {
	CreatePatch(ctx context.Context, o service.CreatePatchOptions) (service.PatchDetail, error)
	RevisePatchWith(ctx context.Context, o service.ReviseOptions) (service.PatchDetail, error)
	Patches(ctx context.Context, q service.PatchQuery) ([]patch.Patch, error)
	Patch(ctx context.Context, id string) (service.PatchDetail, error)
	ReviewPatch(ctx context.Context, o service.ReviewOptions) (service.PatchDetail, error)
	BuildPatchSet(ctx context.Context, kernel string, by service.Actor) (patch.Set, error)
	PatchSets(ctx context.Context, kernel string) ([]patch.Set, error)
}

var localActor = service.Actor{ID: service.LocalActor}

// workflowCmds are the deployable-patch subcommands of `tuxtape patch`.
func workflowCmds(g *Globals) []*cobra.Command {
	var cve, kernel, fix, fixesFrom, exercise string
	var allowBuild bool
	var createJSON bool
	create := &cobra.Command{
		Use:   "create --cve CVE --kernel NAME --fix FILE.diff | --fixes-from SOURCE [--json]",
		Short: "Make a deployable patch of a fix; a builder builds and vets it",
		Long: `create records the fix (a unified diff, e.g. the stable commit's git format-patch)
as revision 1 of a deployable patch for the CVE on the kernel, scores its risk
(functions and lines changed, locking and memory ordering, hot paths, new data,
init/exit code), and queues a build-and-vet job: a builder (tuxtape builder)
builds the livepatch and runs it through its life in a VM of the kernel. The
patch then waits for review (tuxtape patch review), or says why the generator
refused it: such a CVE needs a hand-written livepatch.

--fixes-from fetches the raw fix instead (on the server, with --server):
  git:REPOSITORY                     a kernel git repository with the stable tags:
                                     the .dyad's fix commit for the kernel's branch,
                                     else mainline's (marked: review carefully)
  debian:linux-source-6.1=6.1.187-1  a later Debian source package of the branch:
                                     the change to the CVE's program files since
                                     the kernel's own source
The revision records where the fix came from.

A fix that changes the build machinery (Makefiles, Kbuild, Kconfig, scripts/,
tools/) runs as code on the builder at build time: it is refused unless you
read it and give --allow-build-changes (automatic patching never does).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if cve == "" || kernel == "" || (fix == "") == (fixesFrom == "") {
				return usagef("patch create needs --cve, --kernel and one of --fix and --fixes-from")
			}
			o := service.CreatePatchOptions{CVE: strings.ToUpper(cve), Kernel: kernel, FixesFrom: fixesFrom, AllowBuildChanges: allowBuild, By: localActor}
			var err error
			if o.Exercise, err = readExercise(exercise); err != nil {
				return err
			}
			if fix != "" {
				diff, err := service.ReadRegularFile("--fix", fix, service.MaxPatchDiff)
				if err != nil {
					return err
				}
				o.Diff, o.Source = diff, filepath.Base(fix)
			}
			d, err := g.q.CreatePatch(cmd.Context(), o)
			if err != nil {
				return err
			}
			if createJSON {
				return writeJSON(g.Stdout, d)
			}
			fmt.Fprintf(g.Stdout, "created patch %s: %s on %s, revision 1 (%s); its build and vetting are queued\n", d.ID, d.CVE, d.Kernel, riskLine(d.Revisions[0].Risk))
			return nil
		},
	}
	f := create.Flags()
	f.StringVar(&cve, "cve", "", "the CVE the fix is for")
	f.StringVar(&kernel, "kernel", "", "the kernel (see tuxtape kernel list)")
	f.StringVar(&fix, "fix", "", "the fix: a unified diff")
	f.StringVar(&fixesFrom, "fixes-from", "", "fetch the fix from this fix source: git:REPO or debian:PACKAGE=VERSION")
	f.BoolVar(&allowBuild, "allow-build-changes", false, "take a fix that changes Makefiles, Kbuild, Kconfig, scripts/ or tools/ (it runs on the builder): say so only after reading it")
	f.BoolVar(&createJSON, "json", false, "print JSON")
	f.StringVar(&exercise, "exercise", "", "a shell script the VM vetting runs while the patch is enabled (sh -s patched) and after (sh -s after), after the kernel's own; the report says which patched functions ran")

	var listKernel, listCVE, listState string
	var listJSON bool
	list := &cobra.Command{
		Use:   "list [--kernel NAME] [--cve CVE] [--state S] [--json]",
		Short: "List deployable patches",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ps, err := g.q.Patches(cmd.Context(), service.PatchQuery{Kernel: listKernel, CVE: strings.ToUpper(listCVE), State: listState})
			if err != nil {
				return err
			}
			if listJSON {
				return writeJSON(g.Stdout, ps)
			}
			tw := tabwriter.NewWriter(g.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tCVE\tKERNEL\tREV\tSTATE\tAUTHOR\tUPDATED")
			for _, p := range ps {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", p.ID, p.CVE, termtext.Line(p.Kernel), p.Rev, p.State, termtext.Line(p.Author), p.Updated.Local().Format(time.RFC3339))
			}
			return tw.Flush()
		},
	}
	f = list.Flags()
	f.StringVar(&listKernel, "kernel", "", "only patches for this kernel")
	f.StringVar(&listCVE, "cve", "", "only patches for this CVE")
	f.StringVar(&listState, "state", "", "only patches in this state: building, vetted, refused, failed, approved or rejected")
	f.BoolVar(&listJSON, "json", false, "print JSON")

	var showJSON, showDiff bool
	show := &cobra.Command{
		Use:   "show ID [--diff] [--json]",
		Short: "Show a patch: revisions, risk, vetting, reviews, the approvals it still needs",
		Args:  exactArgs(1, "a patch ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := g.q.Patch(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if showJSON {
				return writeJSON(g.Stdout, d)
			}
			printPatch(g, d, showDiff)
			return nil
		},
	}
	show.Flags().BoolVar(&showJSON, "json", false, "print JSON")
	show.Flags().BoolVar(&showDiff, "diff", false, "print the newest revision's diff")

	var editFix string
	var editAllowBuild, editPrereqs bool
	var editExercise string
	edit := &cobra.Command{
		Use:   "edit ID [--fix FILE.diff]",
		Short: "Make a new revision of a patch: from --fix, or edited in $EDITOR",
		Long: `edit makes a new, immutable revision of the patch with you as its author, and
queues its build and vetting; approvals of earlier revisions do not carry over.
Without --fix the newest revision's diff opens in $EDITOR (default vi); saving
it unchanged makes no revision.

When a raw fix from a fix source does not compile for want of a name (a
helper, a struct member, a constant an earlier stable change added
elsewhere), the server looks in the same source for the changes defining it
and offers them with the revision (patch show lists them, --diff prints
them); they are never applied on their own. --with-prerequisites makes a
revision of the fix plus those changes, for you to review.`,
		Args: exactArgs(1, "a patch ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			var diff []byte
			source := "edit"
			script, err := readExercise(editExercise)
			if err != nil {
				return err
			}
			if editPrereqs || (script != "" && editFix == "") {
				if editFix != "" {
					return usagef("patch edit takes --fix or --with-prerequisites, not both")
				}
				d, err := g.q.RevisePatchWith(ctx, service.ReviseOptions{ID: args[0], WithPrerequisites: editPrereqs, Exercise: script, AllowBuildChanges: editAllowBuild, By: localActor})
				if err != nil {
					return err
				}
				fmt.Fprintf(g.Stdout, "patch %s: revision %d (%s) from %s; its build and vetting are queued\n", d.ID, d.Rev, riskLine(d.Revisions[len(d.Revisions)-1].Risk), termtext.Line(d.Revisions[len(d.Revisions)-1].Source))
				return nil
			}
			if editFix != "" {
				var err error
				if diff, err = service.ReadRegularFile("--fix", editFix, service.MaxPatchDiff); err != nil {
					return err
				}
				source = filepath.Base(editFix)
			} else {
				d, err := g.q.Patch(ctx, args[0])
				if err != nil {
					return err
				}
				old := d.Revisions[len(d.Revisions)-1].Diff
				if diff, err = editInEditor(ctx, g, old); err != nil {
					return err
				}
				if bytes.Equal(diff, old) {
					fmt.Fprintln(g.Stdout, "no change: no new revision")
					return nil
				}
			}
			d, err := g.q.RevisePatchWith(ctx, service.ReviseOptions{ID: args[0], Diff: diff, Source: source, Exercise: script, AllowBuildChanges: editAllowBuild, By: localActor})
			if err != nil {
				return err
			}
			fmt.Fprintf(g.Stdout, "patch %s: revision %d (%s); its build and vetting are queued\n", d.ID, d.Rev, riskLine(d.Revisions[len(d.Revisions)-1].Risk))
			return nil
		},
	}
	edit.Flags().StringVar(&editFix, "fix", "", "the new revision's diff (default: edit the newest in $EDITOR)")
	edit.Flags().BoolVar(&editAllowBuild, "allow-build-changes", false, "take a revision that changes the build machinery (see patch create --help)")
	edit.Flags().StringVar(&editExercise, "exercise", "", "a new vetting script for the revision (see patch create --help); alone, the fix stays as it is")
	edit.Flags().BoolVar(&editPrereqs, "with-prerequisites", false, "make the revision the newest one's fix plus the prerequisites its fix source offered (see patch show)")

	var approve, reject bool
	var comment string
	var rev int
	review := &cobra.Command{
		Use:   "review ID --approve|--reject -m TEXT",
		Short: "Approve or reject a patch's newest revision (reviewers)",
		Long: `review records your verdict on the patch's newest revision, with a comment, in
the audit log. Only a vetted revision can be approved. With the two-person rule
(tuxtape serve --require-approvals 2) the revision's author cannot approve it,
and two different reviewers must; one rejection rejects it.`,
		Args: exactArgs(1, "a patch ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if approve == reject {
				return usagef("patch review takes one of --approve and --reject")
			}
			v := patch.Approve
			if reject {
				v = patch.Reject
			}
			d, err := g.q.ReviewPatch(cmd.Context(), service.ReviewOptions{ID: args[0], Rev: rev, Verdict: v, Comment: comment, By: localActor})
			if err != nil {
				return err
			}
			fmt.Fprintf(g.Stdout, "patch %s revision %d: %s (%d of %d approvals)\n", d.ID, d.Rev, d.State, len(d.Approvals), d.Required)
			return nil
		},
	}
	f = review.Flags()
	f.BoolVar(&approve, "approve", false, "approve the revision")
	f.BoolVar(&reject, "reject", false, "reject the revision")
	f.StringVarP(&comment, "message", "m", "", "your comment (required)")
	f.IntVar(&rev, "rev", 0, "the revision you reviewed (default: the newest; refused if it is no longer the newest)")
	return []*cobra.Command{create, list, show, edit, review}
}

func riskLine(data []byte) string {
	var r struct {
		Total int
		Level string
	}
	if json.Unmarshal(data, &r) != nil {
		return "risk unknown"
	}
	return fmt.Sprintf("risk %s, %d", r.Level, r.Total)
}

// readExercise reads a vetting script file ("" for none).
func readExercise(path string) (string, error) {
	if path == "" {
		return "", nil
	}
	b, err := service.ReadRegularFile("--exercise", path, service.MaxExercise)
	return string(b), err
}

// printPrerequisitesOffered shows what the fix source offers a revision
// that does not compile, apart from the fix: nobody applied it.
func printPrerequisitesOffered(w io.Writer, id string, r patch.Revision, withDiff bool) {
	if len(r.Prerequisites) == 0 {
		return
	}
	var p service.Prerequisites
	if json.Unmarshal(r.Prerequisites, &p) != nil {
		return
	}
	switch {
	case p.Error != "":
		fmt.Fprintf(w, "  prerequisites: the lookup in %s failed: %s\n", termtext.Line(p.From), termtext.Line(p.Error))
	case len(p.Found) == 0:
		fmt.Fprintf(w, "  prerequisites: none found in %s\n", termtext.Line(p.From))
	default:
		fmt.Fprintf(w, "  prerequisites offered by %s (not applied; `tuxtape patch edit %s --with-prerequisites` makes a revision with them):\n", termtext.Line(p.From), id)
		for _, f := range p.Found {
			fmt.Fprintf(w, "    %s", termtext.Line(strings.Join(f.Files, ", ")))
			if f.Commit != "" {
				fmt.Fprintf(w, " (commit %s %s)", termtext.Line(vulns.ShortCommit(f.Commit)), termtext.Line(f.Subject))
			}
			fmt.Fprintln(w)
			for _, l := range strings.Split(f.Explanation, "\n") {
				fmt.Fprintf(w, "      %s\n", termtext.Line(l))
			}
			if withDiff {
				io.WriteString(w, termtext.Safe(string(f.Diff)))
			}
		}
	}
	for _, m := range p.Unresolved {
		fmt.Fprintf(w, "    not found: %s %s\n", termtext.Line(string(m.Kind)), termtext.Line(m.Name))
	}
}

func printPatch(g *Globals, d service.PatchDetail, withDiff bool) {
	w := g.Stdout
	fmt.Fprintf(w, "patch %s: %s on %s\nstate: %s (revision %d)\nauthor: %s\n", d.ID, d.CVE, termtext.Line(d.Kernel), d.State, d.Rev, termtext.Line(d.Author))
	fmt.Fprintf(w, "approvals: %d of %d", len(d.Approvals), d.Required)
	if len(d.Approvals) > 0 {
		fmt.Fprintf(w, " (%s)", strings.Join(d.Approvals, ", "))
	}
	fmt.Fprintln(w)
	for _, r := range d.Revisions {
		fmt.Fprintf(w, "\nrevision %d by %s, %s, from %s\n", r.Rev, termtext.Line(r.Author), r.Created.Local().Format(time.RFC3339), termtext.Line(r.Source))
		var risk struct {
			Total   int
			Level   string
			Reasons []struct{ Code, Detail string }
		}
		if json.Unmarshal(r.Risk, &risk) == nil {
			fmt.Fprintf(w, "  risk: %s (%d)\n", risk.Level, risk.Total)
			for _, reason := range risk.Reasons {
				fmt.Fprintf(w, "    %s: %s\n", reason.Code, termtext.Line(reason.Detail))
			}
		}
		if r.Exercise != "" {
			fmt.Fprintf(w, "  exercise: its own (%d lines)\n", strings.Count(strings.TrimRight(r.Exercise, "\n"), "\n")+1)
		}
		if r.Job != "" {
			fmt.Fprintf(w, "  job: %s\n", r.Job)
		}
		if r.Module != "" {
			fmt.Fprintf(w, "  module: sha256 %s\n", r.Module)
		}
		var vet struct {
			Enabled, Transitioned, Unloaded bool
			Functions, Problems             []string
			Ran                             []string
			NotRan                          []string `json:"not_ran"`
		}
		if len(r.Vet) > 0 && json.Unmarshal(r.Vet, &vet) == nil {
			fmt.Fprintf(w, "  vetted in a VM: enabled %v, transitioned %v, unloaded %v; functions %s\n", vet.Enabled, vet.Transitioned, vet.Unloaded,
				termtext.Line(strings.Join(vet.Functions, " ")))
			if len(vet.Ran)+len(vet.NotRan) > 0 {
				fmt.Fprintf(w, "  ran while enabled: %s; did not run: %s\n", orDash(termtext.Line(strings.Join(vet.Ran, " "))), orDash(termtext.Line(strings.Join(vet.NotRan, " "))))
			}
			for _, p := range vet.Problems {
				fmt.Fprintf(w, "    problem: %s\n", termtext.Line(p))
			}
		}
		if r.Refusal != "" {
			fmt.Fprintf(w, "  refused [%s]: %s (%s)\n", termtext.Line(r.RefusalCode), termtext.Line(r.Refusal), refusal.Code(r.RefusalCode).Action())
		}
		printPrerequisitesOffered(w, d.ID, r, withDiff)
		if r.Error != "" {
			fmt.Fprintf(w, "  error: %s\n", termtext.Line(r.Error))
		}
	}
	for _, r := range d.Reviews {
		fmt.Fprintf(w, "\n%s revision %d: %s, %s\n  %s\n", termtext.Line(r.Reviewer), r.Rev, r.Verdict, r.At.Local().Format(time.RFC3339), termtext.Line(r.Comment))
	}
	if withDiff && len(d.Revisions) > 0 {
		fmt.Fprintf(w, "\n%s", termtext.Safe(string(d.Revisions[len(d.Revisions)-1].Diff)))
	}
}

// editInEditor opens data in $EDITOR and returns what was saved.
func editInEditor(ctx context.Context, g *Globals, data []byte) ([]byte, error) {
	f, err := os.CreateTemp("", "tuxtape-patch-*.diff")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	editor := os.Getenv("EDITOR")
	if editor == "" {
		editor = "vi"
	}
	parts := strings.Fields(editor)
	cmd := exec.CommandContext(ctx, parts[0], append(parts[1:], f.Name())...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, g.Stdout, g.Stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("$EDITOR %s: %w (the revision was not made)", editor, err)
	}
	return service.ReadRegularFile("the edited diff", f.Name(), service.MaxPatchDiff)
}

func newPatchSetCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "patchset",
		Short: "Each kernel's cumulative livepatch, made of its approved patches",
		Long: `A patch set is one version of a kernel's cumulative (replace=true) livepatch: the
newest approved revision of every approved patch for the kernel, built and
vetted on a builder. Its version grows with each build; tuxtape archive publish
--patchset KERNEL:VERSION publishes it.`,
	}
	build := &cobra.Command{
		Use:   "build KERNEL",
		Short: "Queue the next patch set of a kernel",
		Args:  exactArgs(1, "a kernel name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.q.BuildPatchSet(cmd.Context(), args[0], localActor)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.Stdout, "queued patch set %s v%d (%s): %d patch(es), %s; job %s\n", s.Kernel, s.Version, s.Module, len(s.Patches), strings.Join(s.CVEs, " "), s.Job)
			return nil
		},
	}
	var asJSON bool
	list := &cobra.Command{
		Use:   "list [KERNEL] [--json]",
		Short: "List patch sets",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			kernel := ""
			if len(args) == 1 {
				kernel = args[0]
			}
			ss, err := g.q.PatchSets(cmd.Context(), kernel)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(g.Stdout, ss)
			}
			tw := tabwriter.NewWriter(g.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "KERNEL\tVERSION\tSTATE\tMODULE\tCVES\tJOB")
			for _, s := range ss {
				fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", termtext.Line(s.Kernel), s.Version, s.State, s.Module, strings.Join(s.CVEs, ","), orDash(s.Job))
			}
			return tw.Flush()
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.AddCommand(build, list)
	return cmd
}
