package cli

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/credentials"

	"github.com/tuxtape/tuxtape/internal/analysis/priority"
	"github.com/tuxtape/tuxtape/internal/frontend/api"
	"github.com/tuxtape/tuxtape/internal/pki"
	"github.com/tuxtape/tuxtape/internal/server/notify"
	"github.com/tuxtape/tuxtape/internal/service"
)

// ServeOptions are the flags of `tuxtape serve`.
type ServeOptions struct {
	Listen          string
	TLSCert, TLSKey string
	ClientCA        string
	Priority        PriorityFlags
	Drain           time.Duration
	MetricsListen   string
	LogFormat       string
	SyncInterval    time.Duration
	SyncSource      string
	ReplicaID       string
	Approvals       int
	HaltAfter       int
	Webhooks        []string
	WebhookSecret   string
	WebhookTier     string
	AutoPatchTier   string
	AutoFixesFrom   []string
	AutoPatchLimit  int
}

func newServeCmd(g *Globals) *cobra.Command {
	var o ServeOptions
	cmd := &cobra.Command{
		Use:   "serve --tls-cert FILE --tls-key FILE [--client-ca FILE] [--listen ADDR]",
		Short: "Serve the gRPC API (TLS, tokens with roles) over this installation's database",
		Long: `serve answers the CLI, builders, agents and the dashboard over gRPC with TLS.
Every call carries a bearer token (tuxtape token create) whose role decides
what it may do. --client-ca turns on mutual TLS: a client without a
certificate from that CA is refused in the handshake. Make the certificates
with tuxtape certs init.

--insecure serves plain TCP, and only on a loopback address. The
prioritizer's inputs (--kev, --epss) are the server's, so every client sees
the same ranking. SIGINT or SIGTERM drains the calls in flight (--drain)
and stops.

--sync-interval D syncs the CVE data every D (from --sync-source, default the
configured source), as an alternative to cron. Several replicas on one
PostgreSQL database take turns through a lease in the database: one runs each
sync, and the interval holds across them. --replica-id names this replica in
the lease and the event stream (default HOST:PID).

--metrics-listen serves Prometheus metrics: RPCs by method and code with their
latency, sync runs by result and their duration, and the fleet's machines by
kernel and state.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runServe(cmd.Context(), g, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Listen, "listen", "127.0.0.1:7878", "address to listen on")
	f.StringVar(&o.TLSCert, "tls-cert", "", "the server's certificate (PEM)")
	f.StringVar(&o.TLSKey, "tls-key", "", "its key (PEM)")
	f.StringVar(&o.ClientCA, "client-ca", "", "require client certificates from this CA (mutual TLS)")
	f.DurationVar(&o.Drain, "drain", 10*time.Second, "on SIGINT/SIGTERM, how long calls in flight may take to finish")
	f.StringVar(&o.MetricsListen, "metrics-listen", "", "serve Prometheus metrics on http://ADDR/metrics (plain HTTP: keep it on a private address)")
	f.StringVar(&o.LogFormat, "log-format", "text", "log format on stderr: text or json")
	f.DurationVar(&o.SyncInterval, "sync-interval", 0, "sync the CVE data this often (e.g. 1h; 0: only when asked)")
	f.StringVar(&o.SyncSource, "sync-source", "", "the repository the periodic sync reads (default: the configured source)")
	f.IntVar(&o.Approvals, "require-approvals", 1, "different reviewers who must approve a patch revision (2: the two-person rule)")
	f.IntVar(&o.HaltAfter, "halt-after", 1, "machines of a ring reporting a livepatch failing that halt its promotion")
	f.StringArrayVar(&o.Webhooks, "webhook", nil, "POST events to this URL (repeatable): refused patches, build and vetting failures, reviews waiting, ring halts, CVEs newly affecting a kernel")
	f.StringVar(&o.WebhookSecret, "webhook-secret-file", "", "the HMAC-SHA256 key the webhook bodies are signed with (X-TuxTape-Signature)")
	f.StringVar(&o.WebhookTier, "webhook-tier", "high", "tell of CVEs newly affecting a kernel at this priority tier or above")
	f.StringVar(&o.AutoPatchTier, "auto-patch-tier", "", "after each sync, make a deployable patch for every CVE newly affecting a kernel at this tier or above")
	f.StringArrayVar(&o.AutoFixesFrom, "auto-patch-fixes-from", nil, "where automatic patches take their raw fixes: debian:PACKAGE=VERSION (for kernels of that source package) or git:REPO (repeatable)")
	f.IntVar(&o.AutoPatchLimit, "auto-patch-limit", 10, "at most this many automatic patches a sync (highest priority first)")
	f.StringVar(&o.ReplicaID, "replica-id", "", "this replica's name in the sync lease and the event stream (default HOST:PID)")
	o.Priority.add(f)
	return cmd
}

func runServe(ctx context.Context, g *Globals, o ServeOptions) error {
	if err := g.local("serve"); err != nil {
		return err
	}
	var creds credentials.TransportCredentials
	switch {
	case g.Insecure && (o.TLSCert != "" || o.ClientCA != ""):
		return usagef("--insecure serves without TLS: leave out --tls-cert, --tls-key and --client-ca")
	case g.Insecure:
		if !api.Loopback(o.Listen) {
			return usagef("--insecure on %s: plain TCP is allowed only on a loopback address (127.0.0.1:PORT, [::1]:PORT)", o.Listen)
		}
	case o.TLSCert == "" || o.TLSKey == "":
		return usagef("serve needs --tls-cert and --tls-key (make them with `tuxtape certs init`), or --insecure on a loopback address")
	default:
		cfg, err := pki.ServerConfig(o.TLSCert, o.TLSKey, o.ClientCA)
		if err != nil {
			return err
		}
		creds = credentials.NewTLS(cfg)
	}
	log := g.log
	switch o.LogFormat {
	case "text":
	case "json":
		level := slog.LevelInfo
		if g.Verbose {
			level = slog.LevelDebug
		}
		log = slog.New(slog.NewJSONHandler(g.Stderr, &slog.HandlerOptions{Level: level}))
	default:
		return usagef("--log-format %q: want text or json", o.LogFormat)
	}
	pi := service.PriorityInputs(o.Priority)
	if err := g.svc.CheckPriority(pi); err != nil {
		return err // a bad input file is found now, not on the first query
	}
	// The database is opened (and migrated) before the first call.
	if _, err := g.svc.Store(ctx); err != nil {
		return err
	}
	l, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	if o.SyncInterval < 0 {
		return usagef("--sync-interval %v: want a positive duration, or 0 for none", o.SyncInterval)
	}
	if o.SyncSource != "" && o.SyncInterval == 0 {
		return usagef("--sync-source needs --sync-interval")
	}
	if o.Approvals < 1 || o.Approvals > 10 {
		return usagef("--require-approvals %d: want 1 to 10", o.Approvals)
	}
	g.svc.RequireApprovals(o.Approvals)
	if o.AutoPatchTier != "" {
		if _, ok := priority.ParseTier(o.AutoPatchTier); !ok {
			return usagef("--auto-patch-tier %q: want critical, high, medium or low", o.AutoPatchTier)
		}
		if len(o.AutoFixesFrom) == 0 {
			return usagef("--auto-patch-tier needs --auto-patch-fixes-from: where the raw fixes come from")
		}
		for _, spec := range o.AutoFixesFrom {
			if !strings.HasPrefix(spec, "debian:") && !strings.HasPrefix(spec, "git:") {
				return usagef("--auto-patch-fixes-from %q: want debian:PACKAGE=VERSION or git:REPOSITORY", spec)
			}
		}
	}
	endpoints, err := webhookEndpoints(o)
	if err != nil {
		return err
	}
	if o.HaltAfter < 1 {
		return usagef("--halt-after %d: want 1 or more", o.HaltAfter)
	}
	g.svc.HaltAfter(o.HaltAfter)
	metrics := api.NewMetrics()
	g.svc.ObserveSyncs(metrics.ObserveSync)
	if err := metrics.WatchFleet(g.svc); err != nil {
		return err
	}
	if o.MetricsListen != "" {
		ml, err := net.Listen("tcp", o.MetricsListen)
		if err != nil {
			l.Close()
			return fmt.Errorf("serve metrics: %w", err)
		}
		fmt.Fprintf(g.Stderr, "metrics on http://%s/metrics\n", ml.Addr())
		go func() {
			if err := metrics.ServeMetrics(ctx, ml); err != nil {
				log.Error("metrics listener stopped", "err", err)
			}
		}()
	}
	s := api.New(api.Options{Service: g.svc, Log: log.With("component", "api"), TLS: creds, Priority: pi, Metrics: metrics})
	mode := "TLS"
	switch {
	case creds == nil:
		mode = "plain TCP (insecure, loopback)"
	case o.ClientCA != "":
		mode = "mutual TLS"
	}
	fmt.Fprintf(g.Stderr, "serving on %s (%s)\n", l.Addr(), mode)
	holder := o.ReplicaID
	if holder == "" {
		host, _ := os.Hostname()
		holder = fmt.Sprintf("%s:%d", host, os.Getpid())
	}
	autoDone := make(chan struct{})
	if o.AutoPatchTier != "" {
		go func() {
			defer close(autoDone)
			if err := g.svc.RunAutoPatch(ctx, service.AutoPatchOptions{Tier: o.AutoPatchTier, FixesFrom: o.AutoFixesFrom, Limit: o.AutoPatchLimit,
				Priority: pi, Holder: holder}); err != nil {
				log.Error("automatic patching stopped", "err", err)
			}
		}()
	} else {
		close(autoDone)
	}
	hooksDone := make(chan struct{})
	if len(o.Webhooks) > 0 {
		go func() {
			defer close(hooksDone)
			if err := g.svc.RunWebhooks(ctx, service.WebhookOptions{Endpoints: endpoints, Tier: o.WebhookTier, Priority: pi, Holder: holder}); err != nil {
				log.Error("webhooks stopped", "err", err)
			}
		}()
	} else {
		close(hooksDone)
	}
	loopDone := make(chan struct{})
	if o.SyncInterval > 0 {
		fmt.Fprintf(g.Stderr, "syncing every %v as %s\n", o.SyncInterval, holder)
		go func() {
			defer close(loopDone)
			if err := g.svc.SyncLoop(ctx, service.SyncLoopOptions{Interval: o.SyncInterval, Source: o.SyncSource, Holder: holder}); err != nil {
				log.Error("periodic sync stopped", "err", err)
			}
		}()
	} else {
		close(loopDone)
	}
	err = api.Serve(ctx, s, l, o.Drain)
	<-loopDone
	<-hooksDone
	<-autoDone
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	fmt.Fprintln(g.Stderr, "stopped")
	return nil
}

// webhookEndpoints are the --webhook receivers, with the secret.
func webhookEndpoints(o ServeOptions) ([]notify.Endpoint, error) {
	if len(o.Webhooks) == 0 {
		if o.WebhookSecret != "" {
			return nil, usagef("--webhook-secret-file needs --webhook URL")
		}
		return nil, nil
	}
	if o.WebhookSecret == "" {
		return nil, usagef("--webhook needs --webhook-secret-file: receivers check the signature")
	}
	if _, ok := priority.ParseTier(o.WebhookTier); !ok {
		return nil, usagef("--webhook-tier %q: want critical, high, medium or low", o.WebhookTier)
	}
	secret, err := service.ReadRegularFile("--webhook-secret-file", o.WebhookSecret, 4096)
	if err != nil {
		return nil, err
	}
	secret = bytes.TrimSpace(secret)
	if len(secret) < 16 {
		return nil, usagef("--webhook-secret-file %s: the secret is %d bytes; use at least 16 (e.g. openssl rand -hex 32)", o.WebhookSecret, len(secret))
	}
	var eps []notify.Endpoint
	for _, raw := range o.Webhooks {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, usagef("--webhook %q: want an http(s) URL", raw)
		}
		eps = append(eps, notify.Endpoint{URL: raw, Secret: secret})
	}
	return eps, nil
}
