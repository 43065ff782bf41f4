// Command demovm boots the demo's fleet machine: Debian's cloud kernel in
// QEMU with tuxtape-agent, which polls the archive and reports to the
// server until the livepatch named by --module is applied and settled,
// then prints `tuxtape-agent status` from inside the guest. make demo runs
// it (scripts/demo); shell alone cannot drive the VM.
//
//	go run ./e2e/fleet/cmd/demovm --agent bin/tuxtape-agent --root ROOT.json --ca CA.pem \
//	    --archive-port 8787 --server-port 7878 --module tt_cloud_1 (token in TUXTAPE_AGENT_TOKEN)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tuxtape/tuxtape/e2e/fleet/guestvm"
	"github.com/tuxtape/tuxtape/internal/build/cmdout"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "demovm:", err)
		os.Exit(1)
	}
}

func run() error {
	agent := flag.String("agent", "bin/tuxtape-agent", "the tuxtape-agent binary (static)")
	root := flag.String("root", "", "the archive's trusted root.json")
	ca := flag.String("ca", "", "the CA of the server's certificate")
	archivePort := flag.Int("archive-port", 0, "the port of tuxtape archive serve on the host's loopback")
	serverPort := flag.Int("server-port", 0, "the port of tuxtape serve on the host's loopback")
	machine := flag.String("machine-id", "demo-vm-1", "the machine ID the agent token is bound to")
	module := flag.String("module", "", "the livepatch to wait for (e.g. tt_cloud_1)")
	targets := flag.String("with-module", "isofs", "kernel modules to load first, comma-separated (the patch's targets)")
	ring := flag.String("ring", "canary", "the agent's ring")
	linger := flag.Duration("linger", 6*time.Second, "how long the agent keeps running once the patch is applied (heartbeats)")
	timeout := flag.Duration("timeout", 10*time.Minute, "the whole run's limit")
	flag.Parse()
	token := os.Getenv("TUXTAPE_AGENT_TOKEN")
	switch {
	case *root == "" || *ca == "" || *archivePort == 0 || *serverPort == 0 || *module == "":
		return errors.New("--root, --ca, --archive-port, --server-port and --module are required")
	case token == "":
		return errors.New("set TUXTAPE_AGENT_TOKEN to the agent token")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var seeds []string
	if v := os.Getenv("TUXTAPE_DEB_DIRS"); v != "" {
		seeds = filepath.SplitList(v)
	}
	kernel, err := guestvm.DebianKernel(ctx, seeds)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "tuxtape-demovm-")
	if err != nil {
		return fmt.Errorf("demovm: %w", err)
	}
	defer os.RemoveAll(dir)
	disk := filepath.Join(dir, "state.img")
	if err := guestvm.NewStateDisk(ctx, disk, 64<<20); err != nil {
		return err
	}
	settings := guestvm.Settings{
		ArchiveURL: "http://" + guestvm.HostAddr + ":" + strconv.Itoa(*archivePort),
		Server:     guestvm.HostAddr + ":" + strconv.Itoa(*serverPort),
		Token:      token, MachineID: *machine, Ring: *ring,
		RollbackWindow: 10 * time.Second,
	}.TOML()
	var mods []string
	if *targets != "" {
		mods = strings.Split(*targets, ",")
	}
	start := time.Now()
	res, err := guestvm.Boot(ctx, guestvm.Config{
		Kernel: kernel, Agent: *agent, Settings: settings, Root: *root, CA: *ca, Disk: disk,
		Modules: mods, Script: script(*module, *linger, *machine), Timeout: *timeout,
	})
	if err != nil {
		if res != nil {
			fmt.Fprintln(os.Stderr, cmdout.Tail(res.Console, 60))
		}
		return err
	}
	fmt.Print(res.Output)
	kv := guestvm.Values(res.Output)
	fmt.Printf("(guest: booted in %v, ran %v)\n", res.BootTime.Round(100*time.Millisecond), time.Since(start).Round(100*time.Millisecond))
	if kv["patch"] != "10" {
		return fmt.Errorf("%s was not applied in the guest (enabled+transition %q)", *module, kv["patch"])
	}
	return nil
}

// script runs the agent daemon until module is enabled and settled, then
// shows the agent's status and the kernel's livepatch sysfs.
func script(module string, linger time.Duration, hostname string) string {
	return fmt.Sprintf(`
hostname %[3]s
echo "guest: $(uname -r), agent $($A version 2>&1)"
$A run --interval 3s --heartbeat 2s >/tmp/agent.log 2>&1 & rpid=$!
waitfor '[ "$(lp %[1]s)" = 10 ]' 3000
echo "patch: $(lp %[1]s)"
sleep %[2]d
echo
echo "\$ tuxtape-agent status     (inside the VM)"
$A status; echo "(exit code $?: 0 is up to date)"
echo
echo "\$ ls /sys/kernel/livepatch/%[1]s"
ls /sys/kernel/livepatch/%[1]s | tr '\n' ' '; echo
echo "isofs patched: $(cat /sys/kernel/livepatch/%[1]s/isofs/patched 2>/dev/null)"
kill -TERM $rpid; wait $rpid
echo
echo "agent log (last lines):"
tail -n 6 /tmp/agent.log | sed 's/^/  /'
sync; umount $S
`, module, int(linger.Seconds()), hostname)
}
