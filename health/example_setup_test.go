package health_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/resiliencekit/resilience/health"
	"github.com/resiliencekit/resilience/middleware"
)

// client stands in for a dependency's client, such as ChromaDB's.
type client struct{ err error }

// Heartbeat reports whether the service answers.
func (c client) Heartbeat(context.Context) error { return c.err }

var (
	chromaClient = client{}
	api          = client{err: errors.New("503 from https://api.example.com/health")}
)

// Register the checks: a zero Check field is the default (critical, the
// checker's timeout). A yes-or-no check, such as whether a directory
// exists, goes through health.Bool.
func Example_setup() {
	c := health.NewChecker(health.Config{})

	c.MustRegister(health.Check{Name: "chromadb", Func: chromaClient.Heartbeat})
	c.MustRegister(health.Check{Name: "embedding_api", Func: api.Heartbeat, Timeout: 2 * time.Second})
	c.MustRegister(health.Check{Name: "filesystem", Optional: true, Func: health.Bool(func() bool {
		_, err := os.Stat("testdata")
		return err == nil
	})})

	// Registering a name twice is an error.
	err := c.Register(health.Check{Name: "chromadb", Func: chromaClient.Heartbeat})
	fmt.Println(err)
	fmt.Println(errors.Is(err, health.ErrDuplicateCheck))

	// So is a value out of range: it is refused, never replaced by a default.
	err = c.Register(health.Check{Name: "cache", Func: chromaClient.Heartbeat, Timeout: -time.Second})
	fmt.Println(err)
	fmt.Println(errors.Is(err, middleware.ErrInvalidConfig))
	// Output:
	// health: check already registered: "chromadb"
	// true
	// health: middleware: invalid config: check "cache": Check.Timeout = -1s, must not be negative
	// true
}
