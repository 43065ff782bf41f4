package cli_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/tuxtape/tuxtape/internal/frontend/api"
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
