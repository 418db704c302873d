package health_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/resiliencekit/resilience/health"
)

// A startup check: refuse to start without the required
// services.
func Example_startup() {
	startup := func(ctx context.Context) error {
		c := health.NewChecker(health.Config{})
		c.MustRegister(health.Check{Name: "chromadb", Func: chromaClient.Heartbeat})
		c.MustRegister(health.Check{Name: "embedding_api", Func: api.Heartbeat})

		if err := c.Require(ctx); err != nil {
			if ue, ok := errors.AsType[*health.UnavailableError](err); ok {
				logger.Error("required services unavailable", "services", ue.Names)
			}
			return err // a real main would os.Exit(1)
		}
		logger.Info("all services healthy, starting pipeline")
		return nil
	}

	err := startup(context.Background())
	fmt.Println(err)
	fmt.Println(errors.Is(err, health.ErrUnavailable))
	// Output:
	// level=ERROR msg="required services unavailable" services=[embedding_api]
	// health: required services unavailable: embedding_api
	// true
}
