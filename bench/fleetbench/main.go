// Command fleetbench measures the fleet API's heartbeat path end to end:
// the real gRPC server with TLS on 127.0.0.1, an agent token a machine
// (authenticated through the store), group commit into SQLite or
// PostgreSQL, and simulated agents sending realistic heartbeats (three
// loaded patches, 20 CVE IDs) from many goroutines over a few
// connections. Server and clients run in this one process and share its
// cores (GOMAXPROCS).
//
//	go run ./bench/fleetbench                       SQLite only
//	./bench/fleet.sh                                SQLite, then a throwaway PostgreSQL
package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver, to make the benchmark's database
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"

	"github.com/tuxtape/tuxtape/internal/frontend/api"
	"github.com/tuxtape/tuxtape/internal/pki"
	"github.com/tuxtape/tuxtape/internal/service"
	pb "github.com/tuxtape/tuxtape/proto/tuxtape/v1"
)

type options struct {
	machines, heartbeats, conns, workers, batch int
	maxTime, delay, tokenTTL                    time.Duration
	warmup                                      bool
}

func main() {
	var o options
	flag.IntVar(&o.machines, "machines", 100_000, "distinct machines (one agent token each)")
	flag.IntVar(&o.heartbeats, "heartbeats", 300_000, "heartbeats to send in all (each machine in turn)")
	flag.DurationVar(&o.maxTime, "max-time", 3*time.Minute, "stop sending after this long, whatever is left")
	flag.IntVar(&o.conns, "conns", 4, "client connections")
	flag.IntVar(&o.workers, "workers", 128, "concurrent client goroutines")
	flag.DurationVar(&o.delay, "delay", service.DefaultCommitDelay, "group commit: how long a batch waits for more (0: only what is queued)")
	flag.IntVar(&o.batch, "batch", service.DefaultCommitBatch, "group commit: most heartbeats a batch")
	flag.BoolVar(&o.warmup, "warmup", true, "first send each machine one heartbeat, unmeasured (the steady state: tokens cached)")
	flag.DurationVar(&o.tokenTTL, "token-ttl", service.DefaultTokenTTL, "token cache TTL (0: off)")
	backends := flag.String("backends", "sqlite,postgres", "backends to run, in order; postgres needs -pg")
	pg := flag.String("pg", os.Getenv("TUXTAPE_TEST_PG"), "PostgreSQL server to make a fresh database on (default $TUXTAPE_TEST_PG)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the sending phase to FILE.BACKEND")
	flag.Parse()
	if o.machines <= 0 || o.heartbeats <= 0 || o.conns <= 0 || o.workers <= 0 || o.maxTime <= 0 {
		log.Fatal("fleetbench: -machines, -heartbeats, -conns, -workers and -max-time must be positive")
	}
	work, err := os.MkdirTemp("", "fleetbench-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(work)
	certs, err := pki.Init(pki.Options{Dir: filepath.Join(work, "certs")})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("fleetbench: %d machines, %d heartbeats (at most %s), %d client goroutines over %d TLS connections\n",
		o.machines, o.heartbeats, o.maxTime, o.workers, o.conns)
	fmt.Printf("server and clients in one process, sharing GOMAXPROCS=%d of %d CPUs; group commit %s / %d; token cache TTL %s\n",
		runtime.GOMAXPROCS(0), runtime.NumCPU(), o.delay, o.batch, o.tokenTTL)
	for _, b := range strings.Split(*backends, ",") {
		ctx := context.Background()
		var dsn string
		var drop func()
		switch b {
		case "sqlite":
			dsn = filepath.Join(work, "fleet.db")
		case "postgres":
			if *pg == "" {
				fmt.Println("postgres: skipped: no -pg (or TUXTAPE_TEST_PG); bench/fleet.sh starts one")
				continue
			}
			dsn, drop = freshPostgres(ctx, *pg)
		default:
			log.Fatalf("fleetbench: backend %q: want sqlite or postgres", b)
		}
		prof := ""
		if *cpuprofile != "" {
			prof = *cpuprofile + "." + b
		}
		if err := run(ctx, b, dsn, certs, o, prof); err != nil {
			log.Fatalf("%s: %v", b, err)
		}
		if drop != nil {
			drop()
		}
	}
}

// freshPostgres makes an empty database on the server admin points at.
func freshPostgres(ctx context.Context, admin string) (string, func()) {
	db, err := sql.Open("pgx", admin)
	if err != nil {
		log.Fatal(err)
	}
	name := fmt.Sprintf("fleetbench_%d", os.Getpid())
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		log.Fatalf("create the benchmark's database: %v", err)
	}
	i := strings.LastIndex(admin, "/")
	dsn := admin[:i+1] + name
	if j := strings.Index(admin[i:], "?"); j >= 0 {
		dsn += admin[i+j:]
	}
	return dsn, func() {
		db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		db.Close()
	}
}

func run(ctx context.Context, backend, dsn string, certs pki.Files, o options, profile string) error {
	svc := service.New(service.Config{DB: dsn})
	defer svc.Close()
	svc.SetGroupCommit(o.delay, o.batch)
	svc.SetTokenCacheTTL(o.tokenTTL)

	ids := make([]string, o.machines)
	for i := range ids {
		ids[i] = fmt.Sprintf("m-%06d", i)
	}
	t0 := time.Now()
	_, secrets, err := svc.EnrollAgents(ctx, ids, service.Actor{})
	if err != nil {
		return fmt.Errorf("enroll agents: %w", err)
	}
	enroll := time.Since(t0)

	cfg, err := pki.ServerConfig(certs.Server, certs.ServerKey, "")
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := api.New(api.Options{Service: svc, TLS: credentials.NewTLS(cfg)})
	sctx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- api.Serve(sctx, srv, l, 5*time.Second) }()
	defer func() { stop(); <-served }()

	ccfg, err := pki.ClientConfig(certs.CA, "", "")
	if err != nil {
		return err
	}
	clients := make([]pb.FleetServiceClient, o.conns)
	for i := range clients {
		conn, err := grpc.NewClient(l.Addr().String(), grpc.WithTransportCredentials(credentials.NewTLS(ccfg)))
		if err != nil {
			return err
		}
		defer conn.Close()
		clients[i] = pb.NewFleetServiceClient(conn)
	}

	// A server that has run a while has every agent's token cached (agents
	// heartbeat more often than the cache forgets): -warmup sends each
	// machine one heartbeat first, unmeasured, so that the figures are the
	// steady state's. -warmup=false measures a server just started.
	if o.warmup {
		t := time.Now()
		var wnext atomic.Int64
		var wg sync.WaitGroup
		for w := range o.workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req := heartbeat()
				for {
					m := int(wnext.Add(1) - 1)
					if m >= o.machines {
						return
					}
					req.MachineId, req.Hostname = ids[m], ids[m]+".fleet.example.com"
					cctx := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+secrets[m])
					clients[w%len(clients)].Heartbeat(cctx, req)
				}
			}()
		}
		wg.Wait()
		fmt.Printf("\n%s: warm-up: one heartbeat from each of the %d machines in %.2fs (not measured)\n", backend, o.machines, time.Since(t).Seconds())
	}
	if profile != "" {
		f, err := os.Create(profile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	var next, failed atomic.Int64
	var firstErr atomic.Value
	lat := make([][]time.Duration, o.workers)
	deadline := time.Now().Add(o.maxTime)
	before := svc.FleetStats()
	cpu0 := cpuTime()
	start := time.Now()
	var wg sync.WaitGroup
	for w := range o.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := clients[w%len(clients)]
			req := heartbeat()
			mine := make([]time.Duration, 0, o.heartbeats/o.workers+1)
			for {
				k := int(next.Add(1) - 1)
				if k >= o.heartbeats || time.Now().After(deadline) {
					break
				}
				m := k % o.machines
				req.MachineId = ids[m]
				req.Hostname = ids[m] + ".fleet.example.com"
				cctx := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+secrets[m])
				t := time.Now()
				_, err := c.Heartbeat(cctx, req)
				mine = append(mine, time.Since(t))
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
				}
			}
			lat[w] = mine
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu := cpuTime() - cpu0
	if profile != "" {
		pprof.StopCPUProfile()
	}
	all := slices.Concat(lat...)
	slices.Sort(all)
	st := svc.FleetStats()
	ms, err := svc.ListMachines(ctx, service.MachineQuery{})
	if err != nil {
		return err
	}
	ok := int64(len(all)) - failed.Load()
	batches := st.Batches - before.Batches
	fmt.Printf("%s: enrolled %d agent tokens in %.2fs (one transaction)\n", backend, len(secrets), enroll.Seconds())
	fmt.Printf("%s: %d heartbeats in %.2fs: %.0f heartbeats/s acknowledged; %d failed\n", backend, len(all), elapsed.Seconds(), float64(ok)/elapsed.Seconds(), failed.Load())
	if e := firstErr.Load(); e != nil {
		fmt.Printf("%s: first error: %v\n", backend, e)
	}
	// Other processes on the machine slow the wall clock; the CPU this
	// process used a heartbeat is the steadier figure.
	fmt.Printf("%s: CPU (server and clients): %.0f µs a heartbeat, i.e. %.0f heartbeats/s on the %d cores if they were all ours\n", backend,
		float64(cpu.Microseconds())/float64(len(all)), float64(len(all))/cpu.Seconds()*float64(runtime.GOMAXPROCS(0)), runtime.GOMAXPROCS(0))
	fmt.Printf("%s: latency p50 %s  p90 %s  p99 %s  p99.9 %s  max %s\n", backend,
		pct(all, 0.50), pct(all, 0.90), pct(all, 0.99), pct(all, 0.999), pct(all, 1))
	if batches > 0 {
		fmt.Printf("%s: group commit: %d transactions, %.1f heartbeats each on average, largest %d\n", backend,
			batches, float64(st.Heartbeats-before.Heartbeats)/float64(batches), st.Largest)
	}
	fmt.Printf("%s: distinct machines in the table: %d\n", backend, len(ms))
	return nil
}

// cpuTime is the user and system CPU time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func pct(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := min(int(p*float64(len(sorted))), len(sorted)-1)
	return sorted[i].Round(10 * time.Microsecond)
}

// heartbeat is a realistic payload: three loaded patches (one cumulative
// livepatch enabled, an older one replaced, one in transition) and 20 CVEs.
func heartbeat() *pb.HeartbeatRequest {
	cves := make([]string, 20)
	for i := range cves {
		cves[i] = fmt.Sprintf("CVE-2025-%d", 21700+i*37)
	}
	return &pb.HeartbeatRequest{
		Kernel: "6.1.0-28-amd64", AgentVersion: "0.4.1", Ring: "prod", State: "ok",
		Livepatch: &pb.Livepatch{
			Level: "tt-6.1.119-3",
			Cves:  cves,
			Patches: []*pb.LoadedPatch{
				{Name: "livepatch_tt_6_1_119_3", Version: "3", Enabled: true},
				{Name: "livepatch_tt_6_1_119_2", Version: "2", Enabled: false},
				{Name: "livepatch_tt_6_1_119_4", Version: "4", Enabled: true, Transition: true},
			},
		},
	}
}
