package dash

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/tuxtape/tuxtape/internal/frontend/termtext"
	"github.com/tuxtape/tuxtape/internal/model/kernel"
	"github.com/tuxtape/tuxtape/internal/service"
)

// Making a kernel config: the base kernel's config (or a defconfig of
// its source) in a private build directory, the kernel's own make
// menuconfig on it with the terminal handed over, and the saved result
// sent to the server as a new kernel of the same release and source.

// makeConfig is one config being made.
type makeConfig struct {
	id     int
	name   string // the new kernel's
	base   string // the kernel it starts from
	target string // a defconfig target, or "" for the base's config
	start  time.Time
	cancel context.CancelFunc // stops the fetch

	// Set once the source is there.
	k     *kernel.Kernel
	tree  string // the shared source tree: read only
	dir   string // the private build directory (O=)
	first []byte // the config menuconfig starts from
}

// Messages of making a config.
type (
	// treeMsg: the base kernel, its source tree and the build directory
	// with the starting config are ready (or not).
	treeMsg struct {
		mk  *makeConfig
		err error
	}
	// menuconfigMsg is what menuconfig saved.
	menuconfigMsg struct {
		mk     *makeConfig
		config []byte
		err    error
	}
	addedMsg struct {
		name string
		k    *kernel.Kernel
		err  error
		form bool // sent from the form
	}
)

func (treeMsg) answer()  {}
func (addedMsg) answer() {}

// defconfigRE is the make targets a config may start from.
var defconfigRE = regexp.MustCompile(`^([A-Za-z0-9_.-]*defconfig|tinyconfig|allnoconfig)$`)

// makeArch is the kernel's ARCH= for a Kernel.Arch.
func makeArch(arch string) string {
	switch arch {
	case "ppc64le":
		return "powerpc"
	case "s390x":
		return "s390"
	case "riscv64":
		return "riscv"
	case "loongarch64":
		return "loongarch"
	}
	return arch
}

// askConfig asks for the new kernel's name, then for what to start from.
func (p *kernelsPage) askConfig(m *Model, base string) tea.Cmd {
	if m.opt.Tree == nil {
		p.notice = "this dashboard has no kernel source cache: run it with tuxtape dash"
		return nil
	}
	if p.mk != nil {
		p.notice = "a config is being made already"
		return nil
	}
	return m.ask("new kernel (a config made from "+base+"), its name: ", "a kernel record's name, e.g. "+base+"-debug", base+"-custom", 64,
		func(m *Model, name string) tea.Cmd {
			name = strings.TrimSpace(name)
			if name == "" {
				return nil
			}
			return m.ask("start from: enter for "+base+"'s config, or a defconfig target: ", "defconfig, x86_64_defconfig, tinyconfig", "", 64,
				func(m *Model, target string) tea.Cmd {
					target = strings.TrimSpace(target)
					if target != "" && !defconfigRE.MatchString(target) {
						p.err = fmt.Errorf("start from %q: want a defconfig target (defconfig, x86_64_defconfig, tinyconfig, allnoconfig)", termtext.Line(target))
						return nil
					}
					p.mkSeq++
					return p.startConfig(m, &makeConfig{id: p.mkSeq, name: name, base: base, target: target, start: m.now()})
				})
		})
}

// startConfig fetches the base kernel and its source (a minute or more
// the first time: the spinner and the status line say so) and prepares
// the build directory.
func (p *kernelsPage) startConfig(m *Model, mk *makeConfig) tea.Cmd {
	parent, cancel := context.WithCancel(m.ctx)
	mk.cancel = cancel
	p.mk, p.err, p.notice = mk, nil, ""
	src, tree := m.src, m.opt.Tree
	// The source may take long: only the server's answer has the
	// query's deadline.
	m.loading++
	run := func() tea.Msg {
		c := *mk // the page reads mk meanwhile
		ctx, cancel := context.WithTimeout(parent, loadTimeout)
		k, err := src.Kernel(ctx, c.base)
		cancel()
		if err != nil {
			return treeMsg{&c, fmt.Errorf("show kernel %s: %w", c.base, err)}
		}
		c.k = k.Kernel
		if c.tree, err = tree(parent, c.k); err != nil {
			return treeMsg{&c, fmt.Errorf("the source of %s: %w", c.base, err)}
		}
		return treeMsg{&c, c.prepare(parent)}
	}
	if m.spinning {
		return run
	}
	m.spinning = true
	return tea.Batch(run, m.spin.Tick)
}

// prepare makes the private build directory and its starting config:
// the base's, or the defconfig target's made there.
func (mk *makeConfig) prepare(ctx context.Context) error {
	dir, err := os.MkdirTemp("", "tuxtape-menuconfig-*")
	if err != nil {
		return fmt.Errorf("make a build directory: %w", err)
	}
	mk.dir = dir
	config := filepath.Join(dir, ".config")
	if mk.target == "" {
		if len(mk.k.Config) == 0 {
			return fmt.Errorf("kernel %s has no config stored: start from a defconfig target", mk.base)
		}
		if err := os.WriteFile(config, mk.k.Config, 0o600); err != nil {
			return fmt.Errorf("write the base config: %w", err)
		}
	} else {
		cmd := mk.make(ctx, mk.target)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("make %s: %w: %s", mk.target, err, lastLine(out.String()))
		}
	}
	b, err := os.ReadFile(config)
	if err != nil {
		return fmt.Errorf("read the starting config: %w", err)
	}
	mk.first = b
	return nil
}

// make is the kernel's make on target, its output and config in the
// private directory: the shared source tree is never written.
func (mk *makeConfig) make(ctx context.Context, target string) *exec.Cmd {
	return exec.CommandContext(ctx, "make", "-C", mk.tree, "O="+mk.dir, "ARCH="+makeArch(mk.k.Arch),
		"KCONFIG_CONFIG="+filepath.Join(mk.dir, ".config"), target)
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// gotTree hands the terminal to menuconfig once the directory is ready.
func (p *kernelsPage) gotTree(msg treeMsg, m *Model) tea.Cmd {
	if p.mk == nil || msg.mk.id != p.mk.id {
		if msg.mk.dir != "" {
			os.RemoveAll(msg.mk.dir)
		}
		return nil
	}
	p.mk = msg.mk
	if msg.err != nil {
		p.cleanConfig()
		p.err = msg.err
		return nil
	}
	mk := msg.mk
	// menuconfig's own output (building its program) shows above its
	// screen; the dashboard comes back when it exits.
	return tea.ExecProcess(mk.make(context.Background(), "menuconfig"), afterMenuconfig(mk))
}

// afterMenuconfig reads what menuconfig saved.
func afterMenuconfig(mk *makeConfig) tea.ExecCallback {
	return func(err error) tea.Msg {
		if err != nil {
			return menuconfigMsg{mk: mk, err: fmt.Errorf("make menuconfig: %w (nothing saved)", err)}
		}
		b, err := service.ReadRegularFile("the new config", filepath.Join(mk.dir, ".config"), service.MaxKernelConfig)
		return menuconfigMsg{mk: mk, config: b, err: err}
	}
}

// gotMenuconfig sends a changed config to the server as the new kernel:
// the base's release, version, architecture and source, and the fixes
// it declares (its changelog's are not read again).
func (p *kernelsPage) gotMenuconfig(msg menuconfigMsg, m *Model) tea.Cmd {
	if p.mk == nil || msg.mk.id != p.mk.id {
		return nil
	}
	mk := msg.mk
	p.cleanConfig()
	switch {
	case msg.err != nil:
		p.err = msg.err
		return nil
	case bytes.Equal(msg.config, mk.first):
		p.err, p.notice = nil, "no change: no kernel made"
		return nil
	}
	k := mk.k
	o := service.AddKernelOptions{Name: mk.name, Release: k.Release, Version: k.Version, Arch: k.Arch, Ref: k.Source.Ref,
		Source: k.Source.Spec, Config: msg.config, Patches: k.Source.Patches, NoChangelog: true}
	if k.Source.Kind == kernel.SourceDebian {
		o.Source = "debian:" + k.Source.Spec
	}
	if len(k.FixedCVEs)+len(k.FixedCommits) > 0 {
		fixes := strings.Join(append(append([]string{}, k.FixedCVEs...), k.FixedCommits...), "\n") + "\n"
		o.Fixed = []service.NamedData{{Name: mk.base + "'s fixes", Data: []byte(fixes)}}
	}
	p.notice = "saving kernel " + mk.name + "…"
	return p.add(m, o, false)
}

// add sends a new kernel to the server.
func (p *kernelsPage) add(m *Model, o service.AddKernelOptions, form bool) tea.Cmd {
	src := m.src
	return m.queryWithin(slowTimeout, func(ctx context.Context) tea.Msg {
		k, err := src.AddKernel(ctx, o)
		if err != nil {
			err = fmt.Errorf("add kernel %s: %w", o.Name, err)
		}
		return addedMsg{o.Name, k, err, form}
	})
}

// cleanConfig stops a fetch and removes the private build directory.
func (p *kernelsPage) cleanConfig() {
	if p.mk != nil {
		if p.mk.cancel != nil {
			p.mk.cancel()
		}
		if p.mk.dir != "" {
			os.RemoveAll(p.mk.dir)
		}
	}
	p.mk = nil
}

// configStatus is the status line while a config is being made.
func (p *kernelsPage) configStatus(m *Model) string {
	mk := p.mk
	if mk.tree == "" {
		return fmt.Sprintf("new kernel %s: %s's source… %s (cold: minutes · esc cancels)",
			termtext.Line(mk.name), termtext.Line(mk.base), m.now().Sub(mk.start).Truncate(time.Second))
	}
	return "new kernel " + termtext.Line(mk.name) + ": make menuconfig"
}
