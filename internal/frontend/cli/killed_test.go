package cli_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tuxtape/tuxtape/internal/frontend/api"
	"github.com/tuxtape/tuxtape/internal/model/event"
	"github.com/tuxtape/tuxtape/internal/service"
	"github.com/tuxtape/tuxtape/internal/testenv"
	pb "github.com/tuxtape/tuxtape/proto/tuxtape/v1"
)

// TestHeartbeatsSurviveKill kills the real server with SIGKILL while
// agents heartbeat at it, starts it again on the same database, and
// checks that every heartbeat it acknowledged is stored: the server
// answers only once a heartbeat's batch has committed.
func TestHeartbeatsSurviveKill(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the server")
	}
	bin := binary(t)
	dir := t.TempDir()
	local := proc{bin: bin, env: []string{"TUXTAPE_DATA_DIR=" + dir, "TUXTAPE_CONFIG=", "TUXTAPE_SERVER=", "TUXTAPE_TOKEN=", "TUXTAPE_DB="}}
	certs := filepath.Join(dir, "certs")
	local.must(t, "certs", "init", "--out", certs, "--host", "127.0.0.1")
	var admin struct{ Secret string }
	if err := json.Unmarshal([]byte(local.must(t, "token", "create", "--role", "admin", "--json")), &admin); err != nil {
		t.Fatal(err)
	}
	tls := []string{"--tls-cert", filepath.Join(certs, "server.pem"), "--tls-key", filepath.Join(certs, "server-key.pem")}
	cmd, addr, _, lines := local.startServe(t, tls...)
	go func() {
		for lines.Scan() {
		}
	}()
	c, err := api.Dial(addr, api.ClientOptions{Token: admin.Secret, CA: filepath.Join(certs, "ca.pem")})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	// Each agent sends heartbeats with a rising sequence in its agent
	// version, and remembers the last one the server acknowledged.
	const agents = 32
	acked := make([]int, agents)
	var wg sync.WaitGroup
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var mu sync.Mutex
	total := 0
	for a := range agents {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := 1; ctx.Err() == nil; seq++ {
				_, err := c.Fleet().Heartbeat(ctx, &pb.HeartbeatRequest{MachineId: fmt.Sprintf("host-%02d", a), Hostname: "h", Kernel: "6.1.0-50-cloud-amd64",
					AgentVersion: fmt.Sprint(seq), State: "ok"})
				if err != nil {
					return // the server is gone
				}
				mu.Lock()
				acked[a] = seq
				total++
				mu.Unlock()
			}
		}()
	}
	// Kill it once it has acknowledged a good number.
	for {
		mu.Lock()
		n := total
		mu.Unlock()
		if n >= 2000 || ctx.Err() != nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	wg.Wait()
	t.Logf("%d heartbeats acknowledged before SIGKILL", total)

	// Again on the same database: every acknowledged heartbeat is there.
	addr2, _, _ := local.serveWithMetrics(t, tls...)
	c2, err := api.Dial(addr2, api.ClientOptions{Token: admin.Secret, CA: filepath.Join(certs, "ca.pem")})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	for a := range agents {
		if acked[a] == 0 {
			continue
		}
		m, err := c2.Fleet().GetMachine(context.Background(), &pb.GetMachineRequest{Id: fmt.Sprintf("host-%02d", a)})
		if err != nil {
			t.Errorf("host-%02d: acknowledged heartbeat %d, then: %v", a, acked[a], err)
			continue
		}
		var got int
		fmt.Sscan(m.AgentVersion, &got)
		if got < acked[a] {
			t.Errorf("host-%02d: heartbeat %d was acknowledged, the stored one is %d", a, acked[a], got)
		}
	}
}

// TestSyncSurvivesKill kills the real server with SIGKILL in the middle of
// a full sync it runs, starts it again on the same database and data
// directory, and syncs again: the result equals an uninterrupted sync's,
// record for record. The killed run left nothing half-written (a sync
// lands in one transaction) and no stale lock (the data directory's lock
// dies with its process).
func TestSyncSurvivesKill(t *testing.T) {
	if testing.Short() {
		t.Skip("syncs the CNA bundle under the server")
	}
	bin := binary(t)
	bundle := testenv.Bundle(t)
	env := func(dir string) proc {
		if err := os.Symlink(testenv.Mirror(t), filepath.Join(dir, "vulns.git")); err != nil {
			t.Fatal(err)
		}
		return proc{bin: bin, env: []string{"TUXTAPE_DATA_DIR=" + dir, "TUXTAPE_CONFIG=", "TUXTAPE_SERVER=", "TUXTAPE_TOKEN=", "TUXTAPE_DB=", "TUXTAPE_SOURCE=" + bundle}}
	}
	// The reference: an uninterrupted sync.
	ref := env(t.TempDir())
	ref.must(t, "-q", "sync", "--no-fetch", "--rev", testenv.BundleHead)
	want := ref.must(t, "cve", "list", "--json")

	dir := t.TempDir()
	local := env(dir)
	var admin struct{ Secret string }
	if err := json.Unmarshal([]byte(local.must(t, "token", "create", "--role", "admin", "--json")), &admin); err != nil {
		t.Fatal(err)
	}
	cmd, addr, _, lines := local.startServe(t, "--insecure")
	go func() {
		for lines.Scan() {
		}
	}()
	c, err := api.Dial(addr, api.ClientOptions{Token: admin.Secret, Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	started := make(chan struct{})
	var finishedEarly atomic.Bool
	go api.Remote{C: c}.Watch(ctx, service.WatchOptions{After: 0, Follow: true}, func(e event.Event) error {
		switch e.Kind {
		case event.SyncStarted:
			close(started)
		case event.SyncFinished:
			finishedEarly.Store(true)
		}
		return nil
	})
	syncErr := make(chan error, 1)
	go func() {
		_, err := api.Remote{C: c}.Sync(ctx, service.SyncOptions{NoFetch: true, Rev: testenv.BundleHead})
		syncErr <- err
	}()
	select {
	case <-started:
	case <-ctx.Done():
		t.Fatal("the sync did not start")
	}
	time.Sleep(300 * time.Millisecond) // into the run, which takes seconds
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	if err := <-syncErr; err == nil || finishedEarly.Load() {
		t.Fatalf("the sync finished before the kill (err %v): this test did not interrupt it", err)
	}
	// Nothing of the killed run is in the database.
	var status struct{ Commit string }
	if err := json.Unmarshal([]byte(local.must(t, "sync", "status", "--json")), &status); err != nil || status.Commit != "" {
		t.Errorf("after the kill: sync status %+v, %v; want no commit synced", status, err)
	}

	// Again, on the same database and data directory.
	addr2, stop := local.serve(t, "--insecure")
	again := proc{bin: bin, env: []string{"TUXTAPE_DATA_DIR=" + t.TempDir(), "TUXTAPE_CONFIG=", "TUXTAPE_SERVER=" + addr2, "TUXTAPE_TOKEN=" + admin.Secret}}
	again.must(t, "--insecure", "-q", "sync", "--no-fetch", "--rev", testenv.BundleHead)
	stop()
	if got := local.must(t, "cve", "list", "--json"); got != want {
		t.Errorf("after a killed sync and a second one, cve list differs from an uninterrupted sync's (%d vs %d bytes)", len(got), len(want))
	}
}
