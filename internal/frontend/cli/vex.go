package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/tuxtape/tuxtape/internal/analysis/openvex"
	"github.com/tuxtape/tuxtape/internal/model/vulns"
	"github.com/tuxtape/tuxtape/internal/server/store"
)

// VEXOptions are the flags of `tuxtape vex`.
type VEXOptions struct {
	Kernel  string
	Out     string
	Author  string
	Profile string
}

func newVEXCmd(g *Globals) *cobra.Command {
	var o VEXOptions
	cmd := &cobra.Command{
		Use:   "vex --kernel NAME [-o FILE]",
		Short: "Write an OpenVEX document of every CVE's status for a kernel",
		Long: `vex judges every published CVE against the kernel and writes an OpenVEX
document: "affected" (with where the code is built), "fixed" (the version or a
declared backport has the fix), "not_affected" with the justification
vulnerable_code_not_present (never in this version, or not compiled into this
configuration), or "under_investigation" when the data cannot decide.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runVEX(cmd.Context(), g, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Kernel, "kernel", "", "the kernel (required)")
	f.StringVarP(&o.Out, "output", "o", "", "write to this file instead of standard output")
	f.StringVar(&o.Author, "author", openvex.Author, "the document's author")
	f.StringVar(&o.Profile, "profile", "", "build profile to use: real, static or none (default: real if built, else static)")
	return cmd
}

func runVEX(ctx context.Context, g *Globals, o VEXOptions) error {
	if o.Kernel == "" {
		return usagef("vex needs --kernel NAME")
	}
	st, err := g.openStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	k, _, gg, err := g.kernelGauge(ctx, st, o.Kernel, ProfileFlag(o.Profile))
	if err != nil {
		return err
	}
	recs, err := st.CVEs(ctx, store.Filter{Status: vulns.StatusPublished})
	if err != nil {
		return err
	}
	doc, err := openvex.Document(k, judgeAll(gg, recs), openvex.Options{Author: o.Author})
	if err != nil {
		return err
	}
	if o.Out == "" {
		return openvex.Write(g.Stdout, doc)
	}
	// Write beside the target and rename, so a failed run leaves no half file.
	tmp, err := os.CreateTemp(filepath.Dir(o.Out), ".vex-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", o.Out, err)
	}
	defer os.Remove(tmp.Name())
	if err := openvex.Write(tmp, doc); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", o.Out, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", o.Out, err)
	}
	if err := os.Rename(tmp.Name(), o.Out); err != nil {
		return fmt.Errorf("write %s: %w", o.Out, err)
	}
	fmt.Fprintf(g.Stderr, "wrote %d statements for %s to %s\n", len(doc.Statements), k.Name, o.Out)
	return nil
}
