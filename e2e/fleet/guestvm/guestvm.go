// Package guestvm boots a fleet machine for the end-to-end test and the
// demo: Debian's cloud kernel in QEMU (software emulation) with the real
// tuxtape-agent, its settings, the archive's trusted root and the server's
// CA in the initramfs, a state disk that survives reboots, and user-mode
// networking, where the guest reaches the host's loopback as 10.0.2.2.
package guestvm

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/tuxtape/tuxtape/internal/build/debpkg"
	"github.com/tuxtape/tuxtape/internal/build/vmtest"
)

// The fleet kernel: Debian bookworm's cloud kernel.
const (
	Release = "6.1.0-50-cloud-amd64"
	Version = "6.1.176-1"
)

// HostAddr is the host as the guest sees it with -netdev user.
const HostAddr = "10.0.2.2"

// Paths in the guest.
const (
	AgentPath    = "/usr/bin/tuxtape-agent"
	SettingsPath = "/etc/tuxtape/agent.toml"
	RootPath     = "/etc/tuxtape/root.json"
	CAPath       = "/etc/tuxtape/ca.pem"
	StateDir     = "/var/lib/tuxtape-agent"
)

// Kernel is the extracted image package: what QEMU boots, and the modules
// the guest may load.
type Kernel struct {
	Vmlinuz    string
	ModulesDir string
}

// DebianKernel fetches (once; cached) and extracts the fleet kernel's image
// package. seedDirs are searched for the .deb before apt is asked.
func DebianKernel(ctx context.Context, seedDirs []string) (Kernel, error) {
	k, err := debpkg.NewKernel(debpkg.Options{SeedDirs: seedDirs}, Release, Version)
	if err != nil {
		return Kernel{}, fmt.Errorf("fleet kernel: %w", err)
	}
	img, err := k.Image(ctx)
	if err != nil {
		return Kernel{}, fmt.Errorf("fleet kernel %s: %w", Release, err)
	}
	return Kernel{Vmlinuz: img.Vmlinuz, ModulesDir: img.ModulesDir}, nil
}

// NewStateDisk makes an empty ext4 image of size bytes at path: the
// agent's state directory, kept across boots.
func NewStateDisk(ctx context.Context, path string, size int64) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("state disk: %w", err)
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return fmt.Errorf("state disk: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("state disk: %w", err)
	}
	if out, err := exec.CommandContext(ctx, "mkfs.ext4", "-q", "-F", path).CombinedOutput(); err != nil {
		return fmt.Errorf("state disk: mkfs.ext4 %s: %w: %s", path, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Settings are the agent's settings file's values.
type Settings struct {
	ArchiveURL     string // http://HOST:PORT, the archive's public directory
	Server         string // HOST:PORT of tuxtape serve, as the guest reaches it
	Token          string // the agent token, bound to MachineID
	MachineID      string
	Ring           string
	RollbackWindow time.Duration
	TransitionWait time.Duration
	SignalWait     time.Duration
}

// TOML renders s as agent.toml, with the guest's paths of the root and CA.
func (s Settings) TOML() string {
	var b strings.Builder
	fmt.Fprintf(&b, "metadata_url = %q\n", strings.TrimSuffix(s.ArchiveURL, "/")+"/metadata/")
	fmt.Fprintf(&b, "targets_url = %q\n", strings.TrimSuffix(s.ArchiveURL, "/")+"/targets/")
	fmt.Fprintf(&b, "root = %q\n", RootPath)
	fmt.Fprintf(&b, "ca = %q\n", CAPath)
	fmt.Fprintf(&b, "state_dir = %q\n", StateDir)
	fmt.Fprintf(&b, "server = %q\n", s.Server)
	fmt.Fprintf(&b, "token = %q\n", s.Token)
	fmt.Fprintf(&b, "machine_id = %q\n", s.MachineID)
	if s.Ring != "" {
		fmt.Fprintf(&b, "ring = %q\n", s.Ring)
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"rollback_window", s.RollbackWindow}, {"transition_wait", s.TransitionWait}, {"signal_wait", s.SignalWait}} {
		if d.v > 0 {
			fmt.Fprintf(&b, "%s = %q\n", d.key, d.v.String())
		}
	}
	return b.String()
}

// Config is one boot of the machine.
type Config struct {
	Kernel   Kernel
	Agent    string // the tuxtape-agent binary (static)
	Settings string // agent.toml's text
	Root     string // the archive's trusted root.json
	CA       string // the CA the server's certificate chains to
	Disk     string // the state disk (NewStateDisk)
	// Modules are loaded before the script, after the network and disk
	// drivers: the modules the livepatches target (isofs).
	Modules []string
	// Script runs after Prelude (busybox ash); it prints "key: value"
	// lines for Values.
	Script  string
	Timeout time.Duration
	// Console receives the serial console as it arrives.
	Console io.Writer
}

// Prelude brings up the network and mounts the state disk; it defines
// waitfor COND TENTHS (wait up to TENTHS tenths of a second for the shell
// condition) and A, the agent.
const Prelude = `A=` + AgentPath + `
S=` + StateDir + `
mkdir -p $S
mount -t ext4 /dev/vda $S && echo "mount: ok" || { echo "mount: failed"; exit 1; }
ip link set lo up
ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0
ip route add default via ` + HostAddr + `
waitfor() { i=0; while ! eval "$1" && [ $i -lt $2 ]; do sleep 0.1; i=$((i+1)); done; }
# lp NAME: the livepatch's enabled and transition flags ("10": enabled, settled).
lp() { echo "$(cat /sys/kernel/livepatch/$1/enabled 2>/dev/null)$(cat /sys/kernel/livepatch/$1/transition 2>/dev/null)"; }
`

// Boot runs cfg.Script in the machine and returns what came out.
func Boot(ctx context.Context, cfg Config) (*vmtest.Result, error) {
	for _, f := range []string{cfg.Agent, cfg.Root, cfg.CA, cfg.Disk} {
		if _, err := os.Stat(f); err != nil {
			return nil, fmt.Errorf("boot the fleet machine: %w", err)
		}
	}
	disk, err := filepath.Abs(cfg.Disk)
	if err != nil {
		return nil, fmt.Errorf("boot the fleet machine: %w", err)
	}
	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = 10 * time.Minute
	}
	res, err := vmtest.Boot(ctx, vmtest.Config{
		Kernel:     cfg.Kernel.Vmlinuz,
		ModulesDir: cfg.Kernel.ModulesDir,
		Modules:    append([]string{"virtio_pci", "virtio_net", "virtio_blk"}, cfg.Modules...),
		Files: []vmtest.File{
			{Path: AgentPath, Source: cfg.Agent, Mode: 0o755},
			{Path: SettingsPath, Data: []byte(cfg.Settings), Mode: 0o600},
			{Path: RootPath, Source: cfg.Root},
			{Path: CAPath, Source: cfg.CA},
		},
		QEMUArgs: []string{
			"-nic", "user,model=virtio-net-pci",
			"-drive", "file=" + disk + ",format=raw,if=virtio",
		},
		Script:   Prelude + cfg.Script,
		MemoryMB: 512,
		Timeout:  timeout,
		Console:  cfg.Console,
	})
	if err != nil {
		return res, fmt.Errorf("boot the fleet machine: %w", err)
	}
	return res, nil
}

// Values reads the "key: value" lines a guest script printed (the last
// one of a key wins).
func Values(out string) map[string]string {
	kv := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(line, ": "); ok && k != "" && !strings.ContainsAny(k, " =[") {
			kv[k] = strings.TrimSpace(v)
		}
	}
	return kv
}
