package middleware_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/resiliencekit/resilience/middleware"
)

// The guide's @fallback(get_from_cache): when the embedding API fails, the
// cache answers. When the cache fails too, the error matches both failures.
func ExampleFallback() {
	errRefused := errors.New("connection refused")
	errMiss := errors.New("cache miss")
	cache := map[string][]float32{"hello": {0.1, 0.2}}

	getFromCache := func(_ context.Context, req any) (any, error) {
		if v, ok := cache[req.(string)]; ok {
			return v, nil
		}
		return nil, errMiss
	}
	embedAPI := func(context.Context, any) (any, error) { return nil, errRefused }

	getEmbedding := middleware.Fallback(getFromCache)(embedAPI)

	v, err := getEmbedding(context.Background(), "hello")
	fmt.Println(v, err)

	_, err = getEmbedding(context.Background(), "unseen")
	fmt.Println(errors.Is(err, errRefused), errors.Is(err, errMiss))
	// Output:
	// [0.1 0.2] <nil>
	// true true
}

// The guide's @with_fallback_value([]) and
// @with_fallback_value({"status": "unknown"}).
func ExampleFallbackValue() {
	externalAPI := func(context.Context, any) (any, error) { return nil, errors.New("metadata service down") }

	fetchOptionalMetadata := middleware.FallbackValue([]string{})(externalAPI)
	getServiceStatus := middleware.FallbackValue(map[string]string{"status": "unknown"})(externalAPI)

	metadata, err := fetchOptionalMetadata(context.Background(), nil)
	fmt.Printf("%#v %v\n", metadata, err)
	status, err := getServiceStatus(context.Background(), nil)
	fmt.Println(status, err)
	// Output:
	// []string{} <nil>
	// map[status:unknown] <nil>
}

// The guide's graceful degradation: an open circuit falls back to keyword
// search, any other failure to minimal processing.
func ExampleFallbackFunc() {
	degrade := middleware.FallbackFunc(func(_ context.Context, req any, err error) (any, error) {
		if errors.Is(err, middleware.ErrCircuitOpen) {
			return fmt.Sprintf("keyword_process(%v)", req), nil
		}
		return fmt.Sprintf("minimal_process(%v)", req), nil
	})

	for _, cause := range []error{middleware.ErrCircuitOpen, errors.New("embedding failed")} {
		fullProcess := func(context.Context, any) (any, error) { return nil, cause }
		v, err := degrade(fullProcess)(context.Background(), "doc.md")
		fmt.Println(v, err)
	}
	// Output:
	// keyword_process(doc.md) <nil>
	// minimal_process(doc.md) <nil>
}

// FallbackWith chooses the errors that fall back and logs each fallback
// used. Here only an open circuit falls back; a bad request fails as is.
func ExampleFallbackWith() {
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey && len(groups) == 0 {
				return slog.Attr{}
			}
			return a
		},
	}))
	errBadRequest := errors.New("bad request")

	mw := middleware.FallbackWith(middleware.FallbackConfig{
		Value:      []float32{},
		FallbackOn: []error{middleware.ErrCircuitOpen},
		Name:       "embedding_api",
		Observer:   middleware.LogObserver(logger),
	})

	for _, cause := range []error{middleware.ErrCircuitOpen, errBadRequest} {
		getEmbeddings := mw(func(context.Context, any) (any, error) { return nil, cause })
		v, err := getEmbeddings(context.Background(), "texts")
		fmt.Println(v, err)
	}
	// Output:
	// level=WARN msg="resilience: fallback" event=fallback layer=fallback name=embedding_api error="registry: circuit open"
	// [] <nil>
	// <nil> bad request
}
