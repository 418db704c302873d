package health_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"

	"github.com/resiliencekit/resilience/health"
)

// logger writes to stdout without timestamps, so that examples are
// deterministic.
var logger = slog.New(slog.NewTextHandler(stdout{}, &slog.HandlerOptions{
	ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey && len(groups) == 0 {
			return slog.Attr{}
		}
		return a
	},
}))

// stdout writes to the os.Stdout of the moment, which the example harness
// replaces.
type stdout struct{}

func (stdout) Write(p []byte) (int, error) { return os.Stdout.Write(p) }

// Check all services, concurrently, then one.
func Example_checkHealth() {
	ctx := context.Background()
	c := health.NewChecker(health.Config{})
	c.MustRegister(health.Check{Name: "chromadb", Func: chromaClient.Heartbeat})
	c.MustRegister(health.Check{Name: "embedding_api", Func: api.Heartbeat})

	// Check all services (concurrently).
	results := c.CheckAll(ctx)
	for _, name := range slices.Sorted(maps.Keys(results)) {
		status := results[name]
		if !status.Healthy {
			logger.Error("service is unhealthy", "service", name, "error", status.Error)
		} else {
			// A real service would log status.Latency too; it varies,
			// so this example leaves it out.
			logger.Info("service OK", "service", name)
		}
	}

	// Check a specific service.
	if !c.IsHealthy(ctx, "embedding_api") {
		fmt.Println("embedding API is required but unavailable")
	}
	// Output:
	// level=INFO msg="service OK" service=chromadb
	// level=ERROR msg="service is unhealthy" service=embedding_api error="503 from https://api.example.com/health"
	// embedding API is required but unavailable
}

// A check reports a degraded dependency with health.Degraded: the check is
// healthy, with result warn, and a report stays 200.
func ExampleDegraded() {
	c := health.NewChecker(health.Config{})
	c.MustRegister(health.Check{Name: "replica", Func: func(context.Context) error {
		return health.Degraded(errors.New("replication lag 30s"))
	}})
	s, _ := c.Check(context.Background(), "replica")
	fmt.Println(s.Healthy, s.Result, s.Error)
	// Output:
	// true warn health: degraded: replication lag 30s
}
