package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/tuxtape/tuxtape/internal/analysis/openvex"
	"github.com/tuxtape/tuxtape/internal/atomicfile"
	"github.com/tuxtape/tuxtape/internal/service"
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
	f.StringVarP(&o.Out, "output", "o", "", "write to this file instead of standard output (- for standard output); only a regular file is replaced")
	f.StringVar(&o.Author, "author", openvex.Author, "the document's author")
	f.StringVar(&o.Profile, "profile", "", "build profile to use: real, static or none (default: real if built, else static)")
	return cmd
}

func runVEX(ctx context.Context, g *Globals, o VEXOptions) error {
	doc, err := g.q.VEX(ctx, service.VEXOptions{Kernel: o.Kernel, Author: o.Author, Profile: service.ProfileChoice(o.Profile)})
	if err != nil {
		return err
	}
	if o.Out == "" || o.Out == "-" {
		return openvex.Write(g.Stdout, doc)
	}
	// Replaces only a regular file, through a fresh temp file beside it:
	// a failed run leaves no half file, and a link or device at the path
	// is refused, not written through.
	if err := atomicfile.Write(o.Out, 0o644, func(w io.Writer) error { return openvex.Write(w, doc) }); err != nil {
		return fmt.Errorf("write %s: %w", o.Out, err)
	}
	fmt.Fprintf(g.Stderr, "wrote %d statements for %s to %s\n", len(doc.Statements), o.Kernel, o.Out)
	return nil
}
