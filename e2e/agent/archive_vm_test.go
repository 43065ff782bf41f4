package agent_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/tuxtape/tuxtape/internal/archive/repo"
	"github.com/tuxtape/tuxtape/internal/build/cmdout"
	"github.com/tuxtape/tuxtape/internal/build/vmtest"
	"github.com/tuxtape/tuxtape/internal/pki"
	pb "github.com/tuxtape/tuxtape/proto/tuxtape/v1"
)

const agentToken = "tt1.e2e.0123456789abcdef"

// fleetServer records what agents send, and checks their token.
type fleetServer struct {
	pb.UnimplementedFleetServiceServer
	mu     sync.Mutex
	beats  []*pb.HeartbeatRequest
	events []*pb.Event
	badTok int
}

func (s *fleetServer) authorized(ctx context.Context) bool {
	md, _ := metadata.FromIncomingContext(ctx)
	ok := len(md.Get("authorization")) == 1 && md.Get("authorization")[0] == "Bearer "+agentToken
	if !ok {
		s.mu.Lock()
		s.badTok++
		s.mu.Unlock()
	}
	return ok
}

func (s *fleetServer) Heartbeat(ctx context.Context, r *pb.HeartbeatRequest) (*pb.HeartbeatResponse, error) {
	if s.authorized(ctx) {
		s.mu.Lock()
		s.beats = append(s.beats, r)
		s.mu.Unlock()
	}
	return &pb.HeartbeatResponse{At: timestamppb.Now()}, nil
}

func (s *fleetServer) Report(ctx context.Context, r *pb.ReportRequest) (*pb.ReportResponse, error) {
	if s.authorized(ctx) {
		s.mu.Lock()
		s.events = append(s.events, r.Events...)
		s.mu.Unlock()
	}
	return &pb.ReportResponse{Stored: int32(len(r.Events))}, nil
}

// startFleet serves FleetService with TLS on loopback; the guest reaches
// it as 10.0.2.2.
func startFleet(t *testing.T) (*fleetServer, int, string) {
	t.Helper()
	dir := t.TempDir()
	files, err := pki.Init(pki.Options{Dir: dir, Hosts: []string{"10.0.2.2", "127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := pki.ServerConfig(files.Server, files.ServerKey, "")
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(grpc.Creds(credentials.NewTLS(cfg)))
	fs := &fleetServer{}
	pb.RegisterFleetServiceServer(gs, fs)
	go gs.Serve(lis)
	t.Cleanup(gs.Stop)
	return fs, lis.Addr().(*net.TCPAddr).Port, files.CA
}

// serveArchive serves the archive's public directory on loopback.
func serveArchive(t *testing.T, dir string) int {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.FileServer(http.Dir(dir))}
	go srv.Serve(lis)
	t.Cleanup(func() { srv.Close() })
	return lis.Addr().(*net.TCPAddr).Port
}

const netUp = `ip link set lo up
ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0
ip route add default via 10.0.2.2
`

const mountState = `A=/usr/bin/tuxtape-agent
S=/var/lib/tuxtape-agent
mkdir -p $S
mount -t ext4 /dev/vda $S && echo "mount: ok" || { echo "mount: failed"; exit 1; }
hwm() { grep VmHWM /proc/$1/status | tr -s ' ' | cut -d' ' -f2; }
waitfor() { i=0; while ! eval "$1" && [ $i -lt $2 ]; do sleep 0.1; i=$((i+1)); done; }
`

// firstBoot: poll the archive (v1, good), then a canary poll that takes
// v2 (bad: its cmdline_proc_show WARNs) and must roll it back to v1 from
// the cache; then the daemon for a few polls, stopped with SIGTERM.
const firstBoot = mountState + netUp + `
$A poll; echo "poll-1: $?"
echo "cmdline-1: $(cat /proc/cmdline)"
$A status >/dev/null; echo "status-1: $?"
$A poll --ring canary --rollback-window 30s & pid=$!
# The patch's directory shows up (enabled 0) before its init enables it.
waitfor '[ "$(cat /sys/kernel/livepatch/tt_cmd_v2/enabled 2>/dev/null)$(cat /sys/kernel/livepatch/tt_cmd_v2/transition 2>/dev/null)" = 10 ]' 1200
echo "v2-enabled: $(cat /sys/kernel/livepatch/tt_cmd_v2/enabled 2>/dev/null)"
echo "rss-poll-kb: $(hwm $pid)"
t0=$(date +%s)
cat /proc/cmdline > /tmp/bad
waitfor '[ ! -d /sys/kernel/livepatch/tt_cmd_v2 ] && ! grep -q "^tt_cmd_v2 " /proc/modules' 300
t1=$(date +%s)
echo "rollback-seconds: $((t1-t0))"
echo "bad-cmdline: $(cat /tmp/bad)"
wait $pid; echo "poll-2: $?"
echo "cmdline-3: $(cat /proc/cmdline)"
echo "loaded-3: $(ls /sys/kernel/livepatch | tr '\n' ' ')"
$A status --json > /tmp/st.json; echo "status-3: $?"
echo "status-json: $(tr -d '\n' < /tmp/st.json)"
$A run --interval 2s & rpid=$!
sleep 12
echo "rss-run-kb: $(hwm $rpid)"
kill -TERM $rpid; wait $rpid; echo "run-exit: $?"
echo "modules-1: $(grep -c '^tt_cmd' /proc/modules)"
sync; umount $S; echo "umount: $?"
`

// secondBoot: no network; the boot-time pass re-applies the last good
// version from the cache on the state disk; the bad one stays bad.
const secondBoot = mountState + `
echo "loaded-before: $(ls /sys/kernel/livepatch | wc -l)"
$A poll --boot; echo "boot-poll: $?"
echo "cmdline-boot: $(cat /proc/cmdline)"
echo "loaded-boot: $(ls /sys/kernel/livepatch | tr '\n' ' ')"
$A status; echo "status-boot: $?"
echo "state: $(tr -d '\n' < $S/state.json)"
echo "queued: $(grep -o '"kind":"[a-z_]*"' $S/outbox.json | tr '\n' ' ')"
sync; umount $S
`

func TestAgentArchiveVM(t *testing.T) {
	k := debianKernel(t)
	agent := buildAgent(t)
	good := buildPatch(t, k, "tt_cmd_v1", "cmdline.patch")
	bad := buildPatch(t, k, "tt_cmd_v2", "cmdline-warn.patch")
	ctx := context.Background()

	// The archive: v1 to every ring, v2 to canary only.
	arch := filepath.Join(t.TempDir(), "archive")
	r, err := repo.Init(ctx, arch, repo.InitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []repo.PublishOptions{
		{Module: good, Kernel: release, PatchSet: "cmdline", CVEs: []string{"CVE-2026-0001"}, Ring: "stable"},
		{Module: bad, Kernel: release, PatchSet: "cmdline", CVEs: []string{"CVE-2026-0001", "CVE-2026-0002"}, Ring: "canary"},
	} {
		rel, err := r.Publish(ctx, p)
		if err != nil {
			t.Fatalf("publish %s: %v", p.Module, err)
		}
		t.Logf("published %s version %d (%s) to %v", rel.Module, rel.Version, rel.Target, rel.Rings)
	}
	httpPort := serveArchive(t, r.PublicDir())
	fleet, grpcPort, ca := startFleet(t)
	settings := fmt.Sprintf(`metadata_url = "http://10.0.2.2:%[1]d/metadata/"
targets_url = "http://10.0.2.2:%[1]d/targets/"
root = "/etc/tuxtape/root.json"
ring = "stable"
server = "10.0.2.2:%[2]d"
token = %[3]q
ca = "/etc/tuxtape/ca.pem"
machine_id = "vm-agent-1"
rollback_window = "5s"
transition_wait = "30s"
signal_wait = "30s"
`, httpPort, grpcPort, agentToken)

	disk := filepath.Join(t.TempDir(), "state.img")
	if err := os.WriteFile(disk, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(disk, 64<<20); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", disk).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v\n%s", err, out)
	}
	boot := func(name, script string) map[string]string {
		t.Helper()
		res, err := vmtest.Boot(ctx, vmtest.Config{
			Kernel:     k.Vmlinuz,
			ModulesDir: k.ModulesDir,
			Modules:    []string{"virtio_pci", "virtio_net", "virtio_blk"},
			Files: []vmtest.File{
				{Path: "/usr/bin/tuxtape-agent", Source: agent, Mode: 0o755},
				{Path: "/etc/tuxtape/agent.toml", Data: []byte(settings)},
				{Path: "/etc/tuxtape/root.json", Source: filepath.Join(r.PublicDir(), "metadata", "1.root.json")},
				{Path: "/etc/tuxtape/ca.pem", Source: ca},
			},
			QEMUArgs: []string{
				"-nic", "user,model=virtio-net-pci",
				"-drive", "file=" + disk + ",format=raw,if=virtio",
			},
			Script:   script,
			MemoryMB: 512,
			Timeout:  8 * time.Minute,
		})
		if err != nil {
			if res != nil {
				t.Log(cmdout.Tail(res.Console, 100))
			}
			t.Fatalf("%s: %v", name, err)
		}
		t.Logf("%s: guest output:\n%s", name, res.Output)
		if !strings.Contains(res.Dmesg, "tt_cmd_v1") {
			t.Errorf("%s: dmesg never names tt_cmd_v1:\n%s", name, cmdout.Tail(res.Dmesg, 40))
		}
		return values(res.Output)
	}

	kv := boot("first boot", firstBoot)
	for key, want := range map[string]string{
		"mount": "ok", "poll-1": "0", "status-1": "0", "v2-enabled": "1",
		"poll-2":   "1", // its patch was rolled back
		"loaded-3": "tt_cmd_v1", "status-3": "0", "run-exit": "0", "modules-1": "1", "umount": "0",
	} {
		if kv[key] != want {
			t.Errorf("first boot: %s = %q, want %q", key, kv[key], want)
		}
	}
	for key, prefix := range map[string]string{"cmdline-1": "tuxtape-livepatched ", "bad-cmdline": "tuxtape-bad ", "cmdline-3": "tuxtape-livepatched "} {
		if !strings.HasPrefix(kv[key], prefix) {
			t.Errorf("first boot: %s = %q, want it to start with %q", key, kv[key], prefix)
		}
	}
	if s, err := strconv.Atoi(kv["rollback-seconds"]); err != nil || s > 10 {
		t.Errorf("rollback took %q s, want at most 10", kv["rollback-seconds"])
	}
	var st struct {
		Level string   `json:"level"`
		CVEs  []string `json:"cves"`
		Bad   []struct {
			Version int64 `json:"version"`
		} `json:"bad_versions"`
		ExitCode int `json:"exit_code"`
	}
	if err := json.Unmarshal([]byte(kv["status-json"]), &st); err != nil {
		t.Errorf("status --json %q: %v", kv["status-json"], err)
	}
	if st.Level != "tt_cmd_v1@1" || len(st.Bad) != 1 || st.Bad[0].Version != 2 || strings.Join(st.CVEs, ",") != "CVE-2026-0001" {
		t.Errorf("status after the rollback = %+v, want level tt_cmd_v1@1, CVE-2026-0001, version 2 bad", st)
	}
	t.Logf("agent peak RSS: poll with a download and a load %s kB; daemon after several polls %s kB", kv["rss-poll-kb"], kv["rss-run-kb"])

	fleet.mu.Lock()
	var kinds []string
	var bugLog []string
	for _, e := range fleet.events {
		kinds = append(kinds, e.Kind+":"+e.Patch)
		if e.Kind == "bug_detected" {
			bugLog = e.Log
		}
	}
	beats, badTok := len(fleet.beats), fleet.badTok
	var lastBeat *pb.HeartbeatRequest
	if beats > 0 {
		lastBeat = fleet.beats[beats-1]
	}
	fleet.mu.Unlock()
	want := "applied:tt_cmd_v1 applied:tt_cmd_v2 bug_detected:tt_cmd_v2 rolled_back:tt_cmd_v2 applied:tt_cmd_v1"
	if got := strings.Join(kinds, " "); got != want {
		t.Errorf("server got events %q, want %q", got, want)
	}
	if len(bugLog) < 5 || !strings.Contains(bugLog[0], "WARNING") || !strings.Contains(strings.Join(bugLog, "\n"), "cmdline_proc_show") {
		t.Errorf("bug_detected log = %q, want the WARNING report", bugLog)
	}
	if beats < 3 || badTok > 0 {
		t.Errorf("server got %d heartbeats, %d with a wrong token; want several, none", beats, badTok)
	}
	if lastBeat != nil && (lastBeat.MachineId != "vm-agent-1" || lastBeat.Kernel != release || lastBeat.Livepatch.GetLevel() != "tt_cmd_v1@1") {
		t.Errorf("last heartbeat = %v", lastBeat)
	}

	kv = boot("second boot", secondBoot)
	for key, want := range map[string]string{"mount": "ok", "loaded-before": "0", "boot-poll": "0", "loaded-boot": "tt_cmd_v1", "status-boot": "0"} {
		if kv[key] != want {
			t.Errorf("second boot: %s = %q, want %q", key, kv[key], want)
		}
	}
	// No network on the second boot: the report waits on the state disk.
	if kv["queued"] != `"kind":"applied"` {
		t.Errorf("second boot: queued reports = %q, want the re-apply's", kv["queued"])
	}
	if !strings.HasPrefix(kv["cmdline-boot"], "tuxtape-livepatched ") {
		t.Errorf("second boot: /proc/cmdline = %q, want the patched text", kv["cmdline-boot"])
	}
	if !strings.Contains(kv["state"], `"version": 2`) {
		t.Errorf("second boot: state %s lost bad version 2", kv["state"])
	}
}
