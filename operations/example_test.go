package operations_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/resiliencekit/resilience/operations"
	"github.com/resiliencekit/resilience/registry"
)

// An operator holds a breaker open through the handler (its state machine
// stays where it was, closed here, while the mode rejects every call), then
// reads the breakers back. Actions need an Authorize function (here: a
// bearer token); without one the handler is read-only.
func ExampleHandler() {
	reg := registry.New(registry.Config{})
	if _, err := reg.Breaker("chromadb", registry.Settings{ResetTimeout: 2 * time.Minute}); err != nil {
		fmt.Println(err)
		return
	}
	h := operations.Handler(reg, operations.Config{
		Authorize: func(r *http.Request) error {
			if r.Header.Get("Authorization") != "Bearer s3cret" {
				return fmt.Errorf("bad token")
			}
			return nil
		},
	})

	do := func(method, path, token string) {
		r := httptest.NewRequest(method, "http://localhost"+path, nil)
		r.Header.Set("Content-Type", "application/json")
		if token != "" {
			r.Header.Set("Authorization", "Bearer "+token)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		body, _ := io.ReadAll(w.Result().Body)
		fmt.Println(w.Code, strings.TrimSpace(string(body)))
	}
	do("POST", "/breakers/chromadb/hold-open", "guess")
	do("POST", "/breakers/chromadb/hold-open", "s3cret")
	do("GET", "/breakers", "")
	// Output:
	// 403 {"error":"operations: not authorized: bad token"}
	// 200 {"name":"chromadb","state":"closed","mode":"held-open","consecutive_failures":0,"requests":0,"total_successes":0,"total_failures":0,"total_exclusions":0,"settings":{"failure_threshold":5,"success_threshold":2,"reset_timeout":"2m0s"}}
	// 200 [{"name":"chromadb","state":"closed","mode":"held-open","consecutive_failures":0,"requests":0,"total_successes":0,"total_failures":0,"total_exclusions":0,"settings":{"failure_threshold":5,"success_threshold":2,"reset_timeout":"2m0s"}}]
}
