package api

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	"github.com/tuxtape/tuxtape/internal/server/cvesync"
	"github.com/tuxtape/tuxtape/internal/server/store"
	"github.com/tuxtape/tuxtape/internal/service"
)

// Metrics are the server's Prometheus metrics, in a registry of their own
// (no global state): RPCs by method and code, and their latency.
type Metrics struct {
	reg      *prometheus.Registry
	calls    *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	syncs    *prometheus.CounterVec
	syncTime prometheus.Histogram
}

// NewMetrics makes the metrics, with the Go runtime's and the process's.
func NewMetrics() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "tuxtape", Subsystem: "rpc", Name: "calls_total",
			Help: "RPCs handled, by method and gRPC status code.",
		}, []string{"method", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "tuxtape", Subsystem: "rpc", Name: "duration_seconds",
			Help:    "Time to handle an RPC, by method.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"method"}),
	}
	m.syncs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "tuxtape", Subsystem: "sync", Name: "runs_total",
		Help: "CVE sync runs on this replica, by result (full, incremental, up-to-date, failed, already-running).",
	}, []string{"result"})
	m.syncTime = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: "tuxtape", Subsystem: "sync", Name: "duration_seconds",
		Help:    "Time a CVE sync run took.",
		Buckets: []float64{.1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300},
	})
	m.reg.MustRegister(m.syncs, m.syncTime, m.calls, m.latency, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// ObserveSync counts a sync run by how it ended, and times it.
func (m *Metrics) ObserveSync(sum cvesync.Summary, err error, took time.Duration) {
	result := sum.Mode
	switch {
	case errors.Is(err, cvesync.ErrSyncRunning):
		result = "already-running"
	case err != nil:
		result = "failed"
	}
	m.syncs.WithLabelValues(result).Inc()
	m.syncTime.Observe(took.Seconds())
}

// fleetCollector reports machines by kernel and state, counted in the
// database (every replica reports the whole fleet), at most every
// fleetEvery so that scrapes of a large fleet stay cheap.
type fleetCollector struct {
	svc  *service.Service
	desc *prometheus.Desc

	mu     sync.Mutex
	at     time.Time
	counts []store.MachineCount
}

const fleetEvery = 10 * time.Second

func (c *fleetCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *fleetCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Since(c.at) >= fleetEvery {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		counts, err := c.svc.FleetCounts(ctx)
		cancel()
		if err != nil {
			ch <- prometheus.NewInvalidMetric(c.desc, err)
			return
		}
		c.counts, c.at = counts, time.Now()
	}
	for _, n := range c.counts {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n.N), n.Kernel, string(n.State))
	}
}

// WatchFleet adds the fleet's machines by kernel and state.
func (m *Metrics) WatchFleet(svc *service.Service) error {
	return m.Register(&fleetCollector{svc: svc, desc: prometheus.NewDesc("tuxtape_fleet_machines",
		"Machines by kernel release and state (stale: not heard from lately).", []string{"kernel", "state"}, nil)})
}

// Register adds collectors of other parts (sync runs, the fleet).
func (m *Metrics) Register(cs ...prometheus.Collector) error {
	for _, c := range cs {
		if err := m.reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

func (m *Metrics) observe(method string, start time.Time, err error) {
	m.calls.WithLabelValues(method, status.Code(err).String()).Inc()
	m.latency.WithLabelValues(method).Observe(time.Since(start).Seconds())
}

// unary counts every call, refused ones included (they run before the
// role check so that refusals show in the counts).
func (m *Metrics) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	start := time.Now()
	resp, err := handler(ctx, req)
	m.observe(info.FullMethod, start, err)
	return resp, err
}

func (m *Metrics) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	start := time.Now()
	err := handler(srv, ss)
	m.observe(info.FullMethod, start, err)
	return err
}

// ServeMetrics serves /metrics on l until ctx is done.
func (m *Metrics) ServeMetrics(ctx context.Context, l net.Listener) error {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg}))
	s := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(l) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.Shutdown(sctx)
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
