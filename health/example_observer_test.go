package health_test

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/resiliencekit/resilience/health"
)

// Config.Observer sees the result of every run, here to count failures; the
// observe/kitmetrics package turns it into status and latency metrics with
// health.Config{Observer: obs.HealthStatus}.
func ExampleConfig_observer() {
	var mu sync.Mutex
	failures := map[string]int{}
	c := health.NewChecker(health.Config{Observer: func(s health.Status) {
		mu.Lock()
		defer mu.Unlock()
		if s.Result == health.Fail {
			failures[s.Name]++
		}
	}})
	c.MustRegister(health.Check{Name: "chromadb", Func: func(context.Context) error { return errors.New("connection refused") }})
	c.MustRegister(health.Check{Name: "filesystem", Func: func(context.Context) error { return nil }})

	for range 3 {
		c.CheckAll(context.Background())
	}
	mu.Lock()
	defer mu.Unlock()
	fmt.Println("chromadb failures:", failures["chromadb"])
	fmt.Println("filesystem failures:", failures["filesystem"])
	// Output:
	// chromadb failures: 3
	// filesystem failures: 0
}
