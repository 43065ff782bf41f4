package api_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tuxtape/tuxtape/internal/frontend/api"
	"github.com/tuxtape/tuxtape/internal/service"
	pb "github.com/tuxtape/tuxtape/proto/tuxtape/v1"
)

func hb(id string) *pb.HeartbeatRequest {
	return &pb.HeartbeatRequest{MachineId: id, Hostname: id + ".example", Kernel: "6.1.0-28-amd64", AgentVersion: "0.1", State: "ok",
		Livepatch: &pb.Livepatch{Level: "tt-1", Cves: []string{"CVE-2025-21703"}, Patches: []*pb.LoadedPatch{{Name: "livepatch_tt_1", Enabled: true}}}}
}

func TestFleetAPI(t *testing.T) {
	f := serve(t, false)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	admin, reviewer, agent, builder := f.client(t, "admin").Fleet(), f.client(t, "reviewer").Fleet(), f.client(t, "agent").Fleet(), f.client(t, "builder").Fleet()
	report := &pb.ReportRequest{MachineId: "host-1", Events: []*pb.Event{{Kind: "bug_detected", Patch: "livepatch_tt_1", Log: []string{"BUG: oops"}}}}

	t.Run("roles", func(t *testing.T) {
		other := &pb.ReportRequest{MachineId: "host-2", Events: report.Events}
		tests := []struct {
			name string
			call func() error
			want codes.Code
			msg  []string
		}{
			{"agent, own machine", func() error { _, err := agent.Heartbeat(ctx, hb("host-1")); return err }, codes.OK, nil},
			{"agent reports, own machine", func() error { _, err := agent.Report(ctx, report); return err }, codes.OK, nil},
			{"agent for another machine", func() error { _, err := agent.Heartbeat(ctx, hb("host-2")); return err }, codes.PermissionDenied, []string{"host-1", "host-2"}},
			{"agent reports for another", func() error { _, err := agent.Report(ctx, other); return err }, codes.PermissionDenied, []string{"host-1", "host-2"}},
			{"admin for any machine", func() error { _, err := admin.Heartbeat(ctx, hb("host-3")); return err }, codes.OK, nil},
			{"reviewer heartbeats", func() error { _, err := reviewer.Heartbeat(ctx, hb("host-1")); return err }, codes.PermissionDenied, []string{"reviewer"}},
			{"builder heartbeats", func() error { _, err := builder.Heartbeat(ctx, hb("host-1")); return err }, codes.PermissionDenied, nil},
			{"reviewer lists", func() error { _, err := reviewer.ListMachines(ctx, &pb.ListMachinesRequest{}); return err }, codes.OK, nil},
			{"reviewer shows", func() error { _, err := reviewer.GetMachine(ctx, &pb.GetMachineRequest{Id: "host-1"}); return err }, codes.OK, nil},
			{"agent lists", func() error { _, err := agent.ListMachines(ctx, &pb.ListMachinesRequest{}); return err }, codes.PermissionDenied, nil},
			{"builder shows", func() error { _, err := builder.GetMachine(ctx, &pb.GetMachineRequest{Id: "host-1"}); return err }, codes.PermissionDenied, nil},
			{"no token", func() error { _, err := f.client(t, "").Fleet().Heartbeat(ctx, hb("host-1")); return err }, codes.Unauthenticated, nil},
		}
		for _, tt := range tests {
			err := tt.call()
			if code(err) != tt.want {
				t.Errorf("%s: %v, want %s", tt.name, err, tt.want)
				continue
			}
			for _, m := range tt.msg {
				if !strings.Contains(status.Convert(err).Message(), m) {
					t.Errorf("%s: %q does not name %q", tt.name, status.Convert(err).Message(), m)
				}
			}
		}
	})

	t.Run("malformed", func(t *testing.T) {
		manyCVEs := make([]string, 100_000)
		for i := range manyCVEs {
			manyCVEs[i] = fmt.Sprintf("CVE-2025-%d", 10000+i)
		}
		tests := []struct {
			name string
			edit func(r *pb.HeartbeatRequest)
			msg  string
		}{
			{"empty ID", func(r *pb.HeartbeatRequest) { r.MachineId = "" }, "machine_id"},
			{"10 MB hostname", func(r *pb.HeartbeatRequest) { r.Hostname = strings.Repeat("h", 10<<20) }, "hostname: 10485760 bytes; at most 255"},
			{"100k CVE IDs", func(r *pb.HeartbeatRequest) { r.Livepatch.Cves = manyCVEs }, "livepatch.cves: 100000 CVE IDs; at most 4096"},
			{"bad CVE ID", func(r *pb.HeartbeatRequest) { r.Livepatch.Cves = []string{"CVE-2025-21703", "CVE-20x5-1"} }, "livepatch.cves[1]"},
			{"bad state", func(r *pb.HeartbeatRequest) { r.State = "stale" }, "state"},
			{"no livepatch", func(r *pb.HeartbeatRequest) { r.Kernel = "" }, "kernel: is required"},
		}
		for _, tt := range tests {
			r := hb("host-1")
			tt.edit(r)
			_, err := agent.Heartbeat(ctx, r)
			if code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), tt.msg) {
				t.Errorf("%s: %.300v; want InvalidArgument saying %q", tt.name, err, tt.msg)
			}
		}
		bad := &pb.ReportRequest{MachineId: "host-1", Events: []*pb.Event{{Kind: "bug_detected", Log: make([]string, 201)}}}
		if _, err := agent.Report(ctx, bad); code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "events[0].log") {
			t.Errorf("201 log lines: %v", err)
		}
		if _, err := reviewer.ListMachines(ctx, &pb.ListMachinesRequest{PageSize: 101}); code(err) != codes.InvalidArgument {
			t.Errorf("page_size 101: %v", err)
		}
		if _, err := reviewer.ListMachines(ctx, &pb.ListMachinesRequest{State: "dead"}); code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "state") {
			t.Errorf("bad state filter: %v", err)
		}
		if _, err := reviewer.GetMachine(ctx, &pb.GetMachineRequest{Id: "host-9"}); code(err) != codes.NotFound {
			t.Errorf("unknown machine: %v", err)
		}
	})

	t.Run("paging", func(t *testing.T) {
		for i := range 25 {
			r := hb(fmt.Sprintf("page-%02d", i))
			if i%5 == 0 {
				r.Kernel = "6.12.0-1-amd64"
			}
			if _, err := admin.Heartbeat(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		all := func(req *pb.ListMachinesRequest) ([]string, int) {
			var ids []string
			pages := 0
			for {
				resp, err := reviewer.ListMachines(ctx, req)
				if err != nil {
					t.Fatal(err)
				}
				pages++
				for _, m := range resp.Machines {
					ids = append(ids, m.Id)
				}
				if resp.NextPageToken == "" || pages > 100 {
					return ids, pages
				}
				req.PageToken = resp.NextPageToken
			}
		}
		ids, pages := all(&pb.ListMachinesRequest{PageSize: 10})
		// host-1 and host-3 from the role tests, and the 25 here.
		if len(ids) != 27 || pages != 3 || ids[0] != "host-1" || ids[26] != "page-24" {
			t.Errorf("pages of 10: %d machines in %d pages: %v", len(ids), pages, ids)
		}
		for i := 1; i < len(ids); i++ {
			if ids[i] <= ids[i-1] {
				t.Errorf("not by ID, or twice: %s after %s", ids[i], ids[i-1])
			}
		}
		if ids, pages := all(&pb.ListMachinesRequest{Kernel: "6.12.0-1-amd64", PageSize: 2}); len(ids) != 5 || pages != 3 {
			t.Errorf("kernel filter: %v in %d pages", ids, pages)
		}
		first, err := reviewer.ListMachines(ctx, &pb.ListMachinesRequest{PageSize: 10})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := reviewer.ListMachines(ctx, &pb.ListMachinesRequest{State: "ok", PageToken: first.NextPageToken}); code(err) != codes.InvalidArgument {
			t.Errorf("a page token of another query: %v", err)
		}
		// The same answer through api.Remote, as the CLI gets it.
		ms, err := api.Remote{C: f.client(t, "reviewer")}.ListMachines(ctx, service.MachineQuery{})
		if err != nil || len(ms) != 27 {
			t.Errorf("Remote.ListMachines: %d, %v", len(ms), err)
		}
		d, err := reviewer.GetMachine(ctx, &pb.GetMachineRequest{Id: "host-1"})
		if err != nil || len(d.Events) != 1 || d.Events[0].Kind != "bug_detected" || d.Events[0].Log[0] != "BUG: oops" || d.LastSeen == nil {
			t.Errorf("GetMachine = %v, %v", d, err)
		}
	})
}
