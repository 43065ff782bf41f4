package cli_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tuxtape/tuxtape/internal/archive/feed"
	"github.com/tuxtape/tuxtape/internal/archive/repo"
	"github.com/tuxtape/tuxtape/internal/archive/repo/repotest"
	"github.com/tuxtape/tuxtape/internal/frontend/cli"
)

func TestArchiveCommands(t *testing.T) {
	data := t.TempDir()
	t.Setenv("TUXTAPE_CONFIG", filepath.Join(data, "none.toml"))
	os.WriteFile(filepath.Join(data, "none.toml"), nil, 0o644)
	t.Setenv(cli.EnvArchiveDir, "")
	g := []string{"--data-dir", data, "archive"}
	const k = "6.1.0-50-cloud-amd64"
	ko := repotest.Module(t, "livepatch_cves", k)

	if code, _, stderr := run(t, append(g, "status")...); code != cli.ExitNotFound || !strings.Contains(stderr, "make one with init") {
		t.Errorf("status before init: exit %d, %q", code, stderr)
	}
	code, stdout, stderr := run(t, append(g, "init", "--threshold", "root=2", "--timestamp-expiry", "2h")...)
	if code != 0 || !strings.Contains(stdout, "1.root.json") {
		t.Fatalf("init: exit %d, %s%s", code, stdout, stderr)
	}
	dir := filepath.Join(data, "archive")
	for _, tt := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"bad CVE", []string{"publish", ko, "--kernel", k, "--patchset", "cves", "--cves", "CVE-1"}, cli.ExitUsage, "CVE id"},
		{"bad kernel", []string{"publish", ko, "--kernel", "latest", "--patchset", "cves"}, cli.ExitUsage, "kernel release"},
		{"unknown ring", []string{"publish", ko, "--kernel", k, "--patchset", "cves", "--ring", "beta"}, cli.ExitUsage, "rings are"},
		{"not a module", []string{"publish", filepath.Join(data, "none.toml"), "--kernel", k, "--patchset", "cves"}, cli.ExitUsage, "not an ELF"},
		{"no patchset", []string{"publish", ko, "--kernel", k}, cli.ExitUsage, "patchset"},
		{"unknown version", []string{"promote", "--kernel", k, "--version", "9"}, cli.ExitNotFound, "not published"},
		{"unknown role", []string{"rotate-key", "mirror"}, cli.ExitUsage, "role"},
		{"init again", []string{"init"}, cli.ExitUsage, "not empty"},
		{"bad threshold", []string{"--dir", t.TempDir(), "init", "--threshold", "root"}, cli.ExitUsage, "ROLE=N"},
	} {
		code, _, stderr := run(t, append(g, tt.args...)...)
		if code != tt.code || !strings.Contains(stderr, tt.msg) {
			t.Errorf("%s: exit %d, %q; want exit %d with %q", tt.name, code, stderr, tt.code, tt.msg)
		}
	}
	code, stdout, stderr = run(t, append(g, "publish", ko, "--kernel", k, "--patchset", "cves", "--cves", "CVE-2024-26581", "--json")...)
	var rel feed.Release
	if err := json.Unmarshal([]byte(stdout), &rel); code != 0 || err != nil || rel.Version != 1 || rel.Module != "livepatch_cves" {
		t.Fatalf("publish --json: exit %d, %q, %v: %s", code, stdout, err, stderr)
	}
	if code, stdout, stderr = run(t, append(g, "promote", "--kernel", k, "--version", "1", "--to", "stable")...); code != 0 || !strings.Contains(stdout, "canary,early,stable") {
		t.Errorf("promote: exit %d, %q %q", code, stdout, stderr)
	}
	if code, stdout, stderr = run(t, append(g, "refresh")...); code != 0 || !strings.Contains(stdout, "timestamp") {
		t.Errorf("refresh: exit %d, %q %q", code, stdout, stderr)
	}
	code, stdout, _ = run(t, append(g, "status", "--json")...)
	var st repo.Status
	if err := json.Unmarshal([]byte(stdout), &st); code != 0 || err != nil || len(st.Kernels) != 1 || st.Kernels[0].Latest["stable"] != 1 ||
		st.Roles["root"].Threshold != 2 || time.Until(st.Roles["timestamp"].Expires) > 2*time.Hour {
		t.Errorf("status --json: exit %d, %v: %s", code, err, stdout)
	}
	if code, stdout, _ = run(t, append(g, "status")...); code != 0 || !strings.Contains(stdout, "livepatch_cves") {
		t.Errorf("status: exit %d, %q", code, stdout)
	}

	// archive serve, for real, with an agent-side client.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	exited := make(chan int, 1)
	go func() {
		var out, errb strings.Builder
		exited <- cli.Run(ctx, []string{"--data-dir", data, "archive", "serve", "--listen", addr}, &out, &errb)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("archive serve did not start listening")
		}
		time.Sleep(20 * time.Millisecond)
	}
	root, _ := os.ReadFile(filepath.Join(dir, "public", "metadata", "1.root.json"))
	o := feed.Options{MetadataURL: "http://" + addr + "/metadata/", TargetsURL: "http://" + addr + "/targets/", Root: root, Dir: t.TempDir()}
	got, err := feed.Latest(context.Background(), o, k, "stable")
	if err != nil || got.Version != 1 {
		t.Fatalf("Latest through archive serve = %+v, %v", got, err)
	}
	if _, err := feed.Fetch(context.Background(), o, got); err != nil {
		t.Errorf("Fetch through archive serve: %v", err)
	}
	resp, err := http.Post("http://"+addr+"/metadata/timestamp.json", "text/plain", nil)
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("POST to archive serve: %s", resp.Status)
		}
	}
	if resp, err := http.Get("http://" + addr + "/metadata/9.root.json"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != 404 || strings.Contains(resp.Header.Get("Cache-Control"), "immutable") {
			t.Errorf("missing root: %s, Cache-Control %q", resp.Status, resp.Header.Get("Cache-Control"))
		}
	}
	cancel()
	select {
	case code := <-exited:
		if code != cli.ExitCanceled {
			t.Errorf("archive serve stopped with exit %d, want %d", code, cli.ExitCanceled)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("archive serve did not stop on cancel")
	}
	if _, err := feed.Latest(context.Background(), o, k, "stable"); !errors.Is(err, feed.ErrNetwork) {
		t.Errorf("Latest after serve stopped = %v, want ErrNetwork", err)
	}
}
