package health_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/resiliencekit/resilience/health"
)

// Serve liveness and readiness to Kubernetes. The readiness report is
// application/health+json; error text stays hidden unless
// HandlerConfig.ErrorDetails is set.
func ExampleHandler() {
	c := health.NewChecker(health.Config{})
	c.MustRegister(health.Check{Name: "chromadb", Func: chromaClient.Heartbeat})
	c.MustRegister(health.Check{Name: "cache", Func: func(context.Context) error {
		return errors.New("dial redis://:password=hunter2@cache:6379: refused")
	}, Optional: true})

	mux := http.NewServeMux()
	mux.Handle("/livez", health.LivenessHandler())
	mux.Handle("/readyz", health.Handler(c, health.HandlerConfig{}))

	for _, path := range []string{"/livez", "/readyz"} {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		fmt.Println(path, rec.Code, rec.Header().Get("Content-Type"), rec.Header().Get("Cache-Control"))
		fmt.Println(" leaks the password:", strings.Contains(rec.Body.String(), "hunter2"))
	}

	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/readyz", nil))
	fmt.Println("POST", rec.Code, rec.Header().Get("Allow"))
	// Output:
	// /livez 200 application/health+json no-store
	//  leaks the password: false
	// /readyz 200 application/health+json no-store
	//  leaks the password: false
	// POST 405 GET, HEAD
}

// Serve health over any go-kit transport: the endpoint returns a Report,
// which tells go-kit's HTTP server its status code.
func ExampleEndpoint() {
	c := health.NewChecker(health.Config{})
	c.MustRegister(health.Check{Name: "embedding_api", Func: api.Heartbeat})

	resp, _ := health.Endpoint(c, health.HandlerConfig{})(context.Background(), nil)
	rep := resp.(health.Report)
	fmt.Println(rep.Status, rep.StatusCode(), rep.Checks["embedding_api"][0].Status)
	// Output:
	// fail 503 fail
}

// Check in the background, so that probes read cached results and never
// hit a dependency.
func ExampleChecker_Start() {
	c := health.NewChecker(health.Config{})
	c.MustRegister(health.Check{Name: "chromadb", Func: chromaClient.Heartbeat})

	if err := c.Start(context.Background(), 10*time.Second); err != nil {
		fmt.Println(err)
		return
	}
	defer c.Stop()

	// Until the first run ends the result is unknown, reported as failed.
	s, _ := c.Check(context.Background(), "chromadb")
	for errors.Is(s.Error, health.ErrNotChecked) {
		time.Sleep(time.Millisecond)
		s, _ = c.Check(context.Background(), "chromadb")
	}
	fmt.Println(s.Name, s.Result)
	// Output:
	// chromadb pass
}
