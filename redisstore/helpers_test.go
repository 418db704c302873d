package redisstore_test

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resiliencekit/resilience/redisstore"
	"github.com/resiliencekit/resilience/registry"
)

// newStore returns a store on its own client for the Redis at addr, closed
// when the test ends.
func newStore(tb testing.TB, addr string, cfg redisstore.Config) *redisstore.Store {
	tb.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true})
	s := redisstore.New(c, cfg)
	tb.Cleanup(func() {
		s.Close()
		c.Close()
	})
	return s
}

// replica is one process of a fleet: its own client, store and registry.
type replica struct {
	store *redisstore.Store
	reg   *registry.Registry
	b     *registry.Breaker
}

// newFleet returns n replicas sharing the breaker called name through the
// Redis at addr.
func newFleet(tb testing.TB, addr string, n int, cfg redisstore.Config, name string, s registry.Settings) []replica {
	tb.Helper()
	fleet := make([]replica, n)
	for i := range fleet {
		st := newStore(tb, addr, cfg)
		reg := st.Registry(registry.Config{})
		b, err := reg.Breaker(name, s)
		if err != nil {
			tb.Fatalf("replica %d: Breaker(%q) = %v", i, name, err)
		}
		fleet[i] = replica{store: st, reg: reg, b: b}
	}
	return fleet
}

// call makes one call through b with the given outcome; it reports whether
// the breaker admitted it.
func call(b *registry.Breaker, o registry.Outcome) bool {
	t, err := b.Allow()
	if err != nil {
		return false
	}
	b.Done(t, o)
	return true
}

// waitFor polls cond every millisecond until it holds or limit passes; it
// returns how long it took and whether cond held.
func waitFor(limit time.Duration, cond func() bool) (time.Duration, bool) {
	start := time.Now()
	for {
		if cond() {
			return time.Since(start), true
		}
		if time.Since(start) > limit {
			return time.Since(start), false
		}
		time.Sleep(time.Millisecond)
	}
}

// statusLog records store status changes.
type statusLog struct {
	mu   sync.Mutex
	list []registry.StoreStatus
}

func (l *statusLog) add(s registry.StoreStatus) {
	l.mu.Lock()
	l.list = append(l.list, s)
	l.mu.Unlock()
}

// has reports whether a status with the given health was recorded.
func (l *statusLog) has(healthy bool) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.list {
		if s.Healthy == healthy {
			return true
		}
	}
	return false
}

// logRecords is a slog handler that keeps every record.
type logRecords struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (h *logRecords) Enabled(context.Context, slog.Level) bool { return true }
func (h *logRecords) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	h.recs = append(h.recs, r.Clone())
	h.mu.Unlock()
	return nil
}
func (h *logRecords) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *logRecords) WithGroup(string) slog.Handler      { return h }

// count counts the records at level that have an attribute key whose value
// contains sub.
func (h *logRecords) count(level slog.Level, key, sub string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, r := range h.recs {
		if r.Level != level {
			continue
		}
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == key && strings.Contains(a.Value.String(), sub) {
				n++
			}
			return true
		})
	}
	return n
}

// freeAddr returns a loopback address where nothing listens.
func freeAddr(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// find returns the first status recorded for the key name with the given
// health.
func (l *statusLog) find(name string, healthy bool) (registry.StoreStatus, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.list {
		if s.Name == name && s.Healthy == healthy {
			return s, true
		}
	}
	return registry.StoreStatus{}, false
}
