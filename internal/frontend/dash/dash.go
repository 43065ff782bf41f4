// Package dash is `tuxtape dash`, the terminal dashboard: the CVE queue by
// priority for a kernel, a CVE's page with its raw fixes, the fleet, the
// kernels (adding one, making a new one's config with the kernel's own
// make menuconfig, where a file of a build goes, a kernel's build jobs),
// the live event stream, and the patch workflow (a deployable patch with
// its build log, the review queue, each kernel's patch sets with their
// fleet health), all read from a server. It keeps no state of its own
// beyond what is on screen: every page is a query, and the event stream
// says when to ask again.
//
// It is written against Bubble Tea v2 (charm.land/bubbletea/v2), Bubbles v2
// and Lip Gloss v2 rather than v1 (github.com/charmbracelet/…): v2's
// renderer detects the terminal's colour profile itself and downsamples
// every style to it (no colour at all on TERM=dumb or NO_COLOR), its
// declarative View sets the alternate screen without global program
// options, and v1 is in maintenance while the Bubbles widgets we use
// (table, viewport, textinput, spinner, help) get their fixes on v2.
package dash

import (
	"context"
	"fmt"
	"io"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/tuxtape/tuxtape/internal/model/event"
	"github.com/tuxtape/tuxtape/internal/model/fleet"
	"github.com/tuxtape/tuxtape/internal/model/job"
	"github.com/tuxtape/tuxtape/internal/model/kernel"
	"github.com/tuxtape/tuxtape/internal/model/patch"
	"github.com/tuxtape/tuxtape/internal/model/profile"
	"github.com/tuxtape/tuxtape/internal/server/store"
	"github.com/tuxtape/tuxtape/internal/service"
)

// Source is what the dashboard reads: the server's use cases, as
// api.Remote offers them (and *service.Service, for a local one).
type Source interface {
	ListCVEs(ctx context.Context, q service.CVEQuery) (*service.CVEList, error)
	ShowCVE(ctx context.Context, id string, o service.ShowOptions) (*service.CVE, error)
	Kernels(ctx context.Context) ([]service.KernelView, error)
	Kernel(ctx context.Context, name string) (service.KernelView, error)
	// The kernels page's: a new kernel (from the form, or a config made
	// with menuconfig), a kernel's build profile and its jobs.
	AddKernel(ctx context.Context, o service.AddKernelOptions) (*kernel.Kernel, error)
	Profile(ctx context.Context, name string, o service.ProfileOptions) (*profile.Profile, error)
	Jobs(ctx context.Context, q service.JobQuery) ([]job.Job, error)
	ListMachines(ctx context.Context, q service.MachineQuery) ([]fleet.Machine, error)
	Machine(ctx context.Context, id string, events int) (service.MachineDetail, error)
	Watch(ctx context.Context, o service.WatchOptions, fn func(event.Event) error) error

	// The patch workflow: deployable patches, their reviews, the
	// kernels' patch sets, the jobs that build them and the fleet's
	// health of a set's module.
	CreatePatch(ctx context.Context, o service.CreatePatchOptions) (service.PatchDetail, error)
	RevisePatch(ctx context.Context, id string, diff []byte, source string, by service.Actor) (service.PatchDetail, error)
	Patches(ctx context.Context, q service.PatchQuery) ([]patch.Patch, error)
	Patch(ctx context.Context, id string) (service.PatchDetail, error)
	ReviewPatch(ctx context.Context, o service.ReviewOptions) (service.PatchDetail, error)
	BuildPatchSet(ctx context.Context, kernel string, by service.Actor) (patch.Set, error)
	PatchSets(ctx context.Context, kernel string) ([]patch.Set, error)
	Job(ctx context.Context, id string) (service.JobDetail, error)
	JobLog(ctx context.Context, id string, o service.JobLogOptions, fn func(store.JobLogLine) error) error
	FleetHealth(ctx context.Context, patch string) ([]service.RingHealth, error)
}

// Options set the dashboard up.
type Options struct {
	// Kernel is the queue's kernel at start ("": the first registered).
	Kernel string
	// Profile is the build profile verdicts use (auto: real, else static).
	Profile service.ProfileChoice
	// EventsAfter is where the event feed starts: -1 from now on, 0 from
	// the first event, or a sequence number.
	EventsAfter int64
	// Tree is a pristine, unpacked copy of a kernel's source on this
	// machine (kernelsrc.Sources.Tree): make menuconfig runs on it, with
	// its output in a directory of its own. Nil: the kernels page cannot
	// make configs.
	Tree func(ctx context.Context, k *kernel.Kernel) (string, error)
	// Now and Location make times on screen reproducible in tests.
	Now      func() time.Time
	Location *time.Location
}

// Run shows the dashboard on the terminal until the user quits or ctx is
// cancelled.
func Run(ctx context.Context, src Source, o Options, in io.Reader, out io.Writer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	feed := make(chan tea.Msg, 64)
	go follow(ctx, src, o.EventsAfter, retryAfter, feed)
	m := New(ctx, src, o)
	m.feed = feed
	p := tea.NewProgram(m, tea.WithContext(ctx), tea.WithInput(in), tea.WithOutput(out))
	// A config being made when the user quits leaves no directory.
	defer m.kern.cleanConfig()
	if _, err := p.Run(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("run the dashboard: %w", err)
	}
	return nil
}
