package health_test

import (
	"context"
	"fmt"

	"github.com/resiliencekit/resilience/health"
	"github.com/resiliencekit/resilience/registry"
)

// Circuit states as a health check: one line turns every open circuit into a
// failing check.
func ExampleBreakerCheck() {
	reg := registry.New(registry.Config{})
	b, _ := reg.Breaker("chromadb", registry.Settings{})

	checker := health.NewChecker(health.Config{})
	checker.MustRegister(health.Check{Name: "circuits", Func: health.BreakerCheck(reg)})

	fmt.Println(checker.IsHealthy(context.Background(), "circuits"))
	b.Trip()
	st, _ := checker.Check(context.Background(), "circuits")
	fmt.Println(st.Healthy, st.Error)
	// Output:
	// true
	// false health: chromadb: registry: circuit open
}
