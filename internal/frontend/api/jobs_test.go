package api_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tuxtape/tuxtape/internal/frontend/api"
	"github.com/tuxtape/tuxtape/internal/model/authz"
	"github.com/tuxtape/tuxtape/internal/model/job"
	"github.com/tuxtape/tuxtape/internal/service"
)

// TestBuilderCalls: a builder acts only as itself (its token and name),
// reports only on the jobs it holds, and cannot smuggle an artifact whose
// bytes are not the ones it declares; other roles cannot act as builders.
func TestBuilderCalls(t *testing.T) {
	f := serve(t, false)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, other, err := f.svc.CreateToken(ctx, service.CreateTokenOptions{Role: authz.Builder})
	if err != nil {
		t.Fatal(err)
	}
	f.secrets["builder2"] = other
	// A job to take: a kernel build of a stored kernel.
	if _, err := f.svc.AddKernel(ctx, service.AddKernelOptions{Name: "k", Release: "6.1.176-k", Version: "6.1.176",
		Source: "https://example.org/linux-6.1.176.tar.xz", Config: []byte("CONFIG_X86_64=y\nCONFIG_64BIT=y\n")}); err != nil {
		t.Fatal(err)
	}
	j, err := f.svc.SubmitKernelBuild(ctx, "k", 0, service.SubmitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	as := func(who, name string) api.BuilderClient { return api.BuilderClient{C: f.client(t, who), Name: name} }
	a := as("builder", "a")
	if _, err := a.Register(ctx, job.Builder{Name: "a", Cores: 2}); err != nil {
		t.Fatal(err)
	}
	got, ok, err := a.Claim(ctx, []job.Kind{job.KernelBuild}, 10*time.Second, 0)
	if err != nil || !ok || got.ID != j.ID {
		t.Fatalf("claim: %+v, %v, %v", got, ok, err)
	}
	data := []byte(`{"kind":"real"}`)
	sum := sha256.Sum256(data)
	art := job.Artifact{Name: "profile.json", SHA256: hex.EncodeToString(sum[:]), Size: int64(len(data))}
	tests := []struct {
		name string
		call func() error
		want codes.Code
		msg  string
	}{
		{"admin claims", func() error {
			_, _, err := as("admin", "x").Claim(ctx, []job.Kind{job.KernelBuild}, 0, 0)
			return err
		}, codes.PermissionDenied, "may not call"},
		{"agent renews", func() error { _, err := as("agent", "a").Renew(ctx, j.ID, 0); return err }, codes.PermissionDenied, "may not call"},
		{"no builder name", func() error { _, err := as("builder", "").Renew(ctx, j.ID, 0); return err }, codes.InvalidArgument, "header"},
		{"a hostile name", func() error { _, err := as("builder", "../x").Renew(ctx, j.ID, 0); return err }, codes.InvalidArgument, "header"},
		{"register as another name", func() error { _, err := as("builder", "a").Register(ctx, job.Builder{Name: "b"}); return err }, codes.InvalidArgument, "not the name"},
		{"another builder of the same token renews", func() error { _, err := as("builder", "b").Renew(ctx, j.ID, 0); return err }, codes.FailedPrecondition, "not this builder's"},
		{"another token's builder logs", func() error { return as("builder2", "a").Log(ctx, j.ID, []string{"x"}) }, codes.FailedPrecondition, "not this builder's"},
		{"another token's builder finishes", func() error {
			_, err := as("builder2", "a").Finish(ctx, j.ID, service.FinishOptions{OK: true})
			return err
		}, codes.FailedPrecondition, "not this builder's"},
		{"bytes that are not the declared ones", func() error { return a.Upload(ctx, j.ID, art, []byte(`{"kind":"REAL"}`)) }, codes.InvalidArgument, "SHA-256"},
		{"a size that is not the declared one", func() error {
			bad := art
			bad.Size++
			return a.Upload(ctx, j.ID, bad, data)
		}, codes.InvalidArgument, "declared"},
		{"a path as an artifact name", func() error {
			bad := art
			bad.Name = "../../etc/passwd"
			return a.Upload(ctx, j.ID, bad, data)
		}, codes.InvalidArgument, "artifact name"},
		{"finish with an artifact never uploaded", func() error {
			_, err := a.Finish(ctx, j.ID, service.FinishOptions{OK: true, Artifacts: []job.Artifact{art}})
			return err
		}, codes.InvalidArgument, "not uploaded"},
		{"a bad job ID", func() error { _, err := a.Renew(ctx, "nope", 0); return err }, codes.InvalidArgument, "not a job ID"},
		{"a lease of a day", func() error { _, err := a.Renew(ctx, j.ID, 24*time.Hour); return err }, codes.InvalidArgument, "lease_seconds"},
		{"a reviewer submits", func() error {
			_, err := api.Remote{C: f.client(t, "reviewer")}.SubmitKernelBuild(ctx, "k", 0, service.SubmitOptions{})
			return err
		}, codes.PermissionDenied, "may not call"},
	}
	for _, tt := range tests {
		err := tt.call()
		if status.Code(err) != tt.want || !strings.Contains(status.Convert(err).Message(), tt.msg) {
			t.Errorf("%s: %v, want %s saying %q", tt.name, err, tt.want, tt.msg)
		}
	}
	// The holder's own calls work; a profile that is not a real one
	// fails the job rather than landing on the kernel.
	if err := a.Upload(ctx, j.ID, art, data); err != nil {
		t.Fatal(err)
	}
	state, err := a.Finish(ctx, j.ID, service.FinishOptions{OK: true, Artifacts: []job.Artifact{art}})
	if err != nil || state != job.Queued {
		// attempt 1 of 3 failed
		t.Errorf("finish with a bad profile: %v, %v (want queued again: attempt 1 of 3 failed)", state, err)
	}
	d, err := api.Remote{C: f.client(t, "reviewer")}.Job(ctx, j.ID)
	if err != nil || !strings.Contains(d.Error, "not a real build profile") {
		t.Errorf("job after a bad profile: %+v, %v", d, err)
	}
}
