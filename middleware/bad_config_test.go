package middleware_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"reflect"
	"strconv"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/resiliencekit/resilience/endpoint"
	"github.com/resiliencekit/resilience/middleware"
	"github.com/resiliencekit/resilience/registry"
)

// badConfigs is testdata/bad_configs.json.
type badConfigs struct {
	Go []struct {
		Name  string         `json:"name"`
		Layer string         `json:"layer"`
		Set   map[string]any `json:"set"`
		Field string         `json:"field"`
	} `json:"go"`
	OK []struct {
		Name  string         `json:"name"`
		Layer string         `json:"layer"`
		Set   map[string]any `json:"set"`
	} `json:"ok"`
	Files []struct {
		Name   string          `json:"name"`
		Policy json.RawMessage `json:"policy"`
		Path   string          `json:"path"`
	} `json:"files"`
}

func loadBadConfigs(t *testing.T) badConfigs {
	t.Helper()
	data, err := os.ReadFile("../testdata/bad_configs.json")
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var bc badConfigs
	if err := dec.Decode(&bc); err != nil {
		t.Fatal(err)
	}
	return bc
}

// layerConfig is one layer's config under test: a pointer to the struct,
// and how to validate it, construct it and build it in a Stack.
type layerConfig struct {
	ptr       any
	validate  func() error
	construct func() endpoint.Middleware
	stack     func() middleware.Stack
}

// newLayerConfig returns a valid config of layer, with set applied on top.
func newLayerConfig(t *testing.T, layer string, set map[string]any) layerConfig {
	t.Helper()
	var lc layerConfig
	switch layer {
	case "retry":
		c := &middleware.RetryConfig{Observer: quiet}
		lc = layerConfig{c, func() error { return c.Validate() }, func() endpoint.Middleware { return middleware.Retry(*c) },
			func() middleware.Stack { return middleware.Stack{Retry: *c} }}
	case "timeout":
		c := &middleware.TimeoutConfig{Timeout: time.Second, Observer: quiet}
		lc = layerConfig{c, func() error { return c.Validate() }, func() endpoint.Middleware { return middleware.TimeoutWith(*c) },
			func() middleware.Stack { return middleware.Stack{Timeout: *c} }}
	case "fallback":
		c := &middleware.FallbackConfig{Observer: quiet}
		lc = layerConfig{c, func() error { return c.Validate() }, func() endpoint.Middleware { return middleware.FallbackWith(*c) },
			func() middleware.Stack { return middleware.Stack{Fallback: *c} }}
	case "bulkhead":
		c := &middleware.BulkheadConfig{MaxConcurrent: 1, Observer: quiet}
		lc = layerConfig{c, func() error { return c.Validate() }, func() endpoint.Middleware { return middleware.Bulkhead(*c) },
			func() middleware.Stack { return middleware.Stack{Bulkhead: *c} }}
	case "rate_limit":
		c := &middleware.RateLimitConfig{Rate: 1, Burst: 1, Observer: quiet}
		lc = layerConfig{c, func() error { return c.Validate() }, func() endpoint.Middleware { return middleware.RateLimit(*c) },
			func() middleware.Stack { return middleware.Stack{RateLimit: *c} }}
	case "adaptive_limit":
		c := &middleware.AdaptiveLimitConfig{Observer: quiet}
		lc = layerConfig{c, func() error { return c.Validate() }, func() endpoint.Middleware { return middleware.AdaptiveLimit(*c) },
			func() middleware.Stack { return middleware.Stack{AdaptiveLimit: *c} }}
	case "hedge":
		c := &middleware.HedgeConfig{Delay: time.Second, Idempotent: func(context.Context, any) bool { return true }, Observer: quiet}
		lc = layerConfig{c, func() error { return c.Validate() }, func() endpoint.Middleware { return middleware.Hedge(*c) },
			func() middleware.Stack { return middleware.Stack{Hedge: *c} }}
	case "throttle":
		c := &middleware.ThrottleConfig{Observer: quiet}
		lc = layerConfig{c, func() error { return c.Validate() }, func() endpoint.Middleware { return middleware.Throttle(*c) },
			func() middleware.Stack { return middleware.Stack{Throttle: *c} }}
	case "circuit_breaker":
		c := &middleware.BreakerConfig{Name: "bad-configs", Observer: quiet}
		lc = layerConfig{c,
			func() error {
				if c.Name == "" { // Validate checks the name only when set; CircuitBreaker and Build require one
					return errors.Join(c.Validate(), &middleware.ConfigError{Path: "circuit_breaker.name", Field: "BreakerConfig.Name", Reason: "must be set"})
				}
				return c.Validate()
			},
			func() endpoint.Middleware {
				d := *c
				d.Registry = registry.New(registry.Config{})
				return middleware.CircuitBreaker("", d)
			},
			func() middleware.Stack {
				d := *c
				d.Registry = registry.New(registry.Config{})
				return middleware.Stack{CircuitBreaker: d}
			}}
	default:
		t.Fatalf("unknown layer %q", layer)
	}
	v := reflect.ValueOf(lc.ptr).Elem()
	for name, raw := range set {
		f := v.FieldByName(name)
		if !f.IsValid() {
			t.Fatalf("%s has no field %s", v.Type(), name)
		}
		val, err := configValue(f.Type(), raw)
		if err != nil {
			t.Fatalf("%s.%s = %v: %v", v.Type(), name, raw, err)
		}
		f.Set(val)
	}
	return lc
}

var (
	durationType = reflect.TypeFor[time.Duration]()
	errorType    = reflect.TypeFor[error]()
)

// configValue converts a value of the table to a value of type typ (see
// the _comment in testdata/bad_configs.json).
func configValue(typ reflect.Type, raw any) (reflect.Value, error) {
	if s, ok := raw.(string); ok && s == "set" {
		switch typ {
		case reflect.TypeFor[endpoint.Endpoint]():
			return reflect.ValueOf(endpoint.Endpoint(endpoint.Nop)), nil
		case reflect.TypeFor[func(context.Context, any, error) (any, error)]():
			return reflect.ValueOf(func(context.Context, any, error) (any, error) { return nil, nil }), nil
		case reflect.TypeFor[*rate.Limiter]():
			return reflect.ValueOf(rate.NewLimiter(1, 1)), nil
		}
	}
	switch {
	case typ == durationType:
		s, _ := raw.(string)
		switch s {
		case "min":
			return reflect.ValueOf(time.Duration(math.MinInt64)), nil
		case "max":
			return reflect.ValueOf(time.Duration(math.MaxInt64)), nil
		}
		d, err := time.ParseDuration(s)
		return reflect.ValueOf(d), err
	case typ.Kind() == reflect.Int:
		switch raw {
		case "min":
			return reflect.ValueOf(math.MinInt), nil
		case "max":
			return reflect.ValueOf(math.MaxInt), nil
		}
		n, err := strconv.ParseInt(string(raw.(json.Number)), 10, 64)
		return reflect.ValueOf(int(n)), err
	case typ.Kind() == reflect.Float64:
		if s, ok := raw.(string); ok {
			f, err := strconv.ParseFloat(s, 64)
			return reflect.ValueOf(f), err
		}
		f, err := raw.(json.Number).Float64()
		return reflect.ValueOf(f), err
	case typ.Kind() == reflect.Bool, typ.Kind() == reflect.String:
		return reflect.ValueOf(raw).Convert(typ), nil
	case typ.Kind() == reflect.Interface && typ.NumMethod() == 0:
		if raw == nil {
			return reflect.Zero(typ), nil
		}
		return reflect.ValueOf(raw), nil
	case typ.Kind() == reflect.Slice && typ.Elem() == errorType:
		var errs []error
		for _, e := range raw.([]any) {
			if e == nil {
				errs = append(errs, nil)
				continue
			}
			errs = append(errs, errors.New(e.(string)))
		}
		return reflect.ValueOf(errs), nil
	case typ.Kind() == reflect.Slice && typ.Elem().Kind() == reflect.String:
		var ss []string
		for _, e := range raw.([]any) {
			ss = append(ss, e.(string))
		}
		return reflect.ValueOf(ss), nil
	}
	return reflect.Value{}, fmt.Errorf("no conversion to %v", typ)
}

// configErrors returns every *ConfigError in err's tree.
func configErrors(err error) []*middleware.ConfigError {
	var out []*middleware.ConfigError
	var walk func(error)
	walk = func(e error) {
		if ce, ok := e.(*middleware.ConfigError); ok {
			out = append(out, ce)
		}
		switch u := e.(type) {
		case interface{ Unwrap() []error }:
			for _, x := range u.Unwrap() {
				walk(x)
			}
		case interface{ Unwrap() error }:
			if x := u.Unwrap(); x != nil {
				walk(x)
			}
		}
	}
	if err != nil {
		walk(err)
	}
	return out
}

// namesField reports whether err matches ErrInvalidConfig and holds a
// *ConfigError for field.
func namesField(err error, field string) bool {
	if !errors.Is(err, middleware.ErrInvalidConfig) {
		return false
	}
	for _, ce := range configErrors(err) {
		if ce.Field == field {
			return true
		}
	}
	return false
}

// catch calls f and returns the value it panicked with, if any.
func catch(f func()) (v any) {
	defer func() { v = recover() }()
	f()
	return nil
}

// removedConfigFields are fields the shared testdata/bad_configs.json still
// sets that the Go configs no longer have.
var removedConfigFields = map[string]bool{"RetryOnClasses": true, "FailOnClasses": true, "FallbackOnClasses": true, "Classes": true}

// TestBadConfigs runs every case of testdata/bad_configs.json: from Go,
// Validate, the constructor and Stack.Build each reject a bad config with an
// error matching ErrInvalidConfig that names the field (the constructor by
// panicking at construction, Build by returning it, never panicking); huge
// but valid values build. The file cases (bc.Files) are not run here:
// loading policy files moved to package policy.
func TestBadConfigs(t *testing.T) {
	bc := loadBadConfigs(t)
	var passed, total int
	for _, tt := range bc.Go {
		t.Run("go/"+tt.Name, func(t *testing.T) {
			for name := range tt.Set {
				if removedConfigFields[name] {
					t.Fatalf("%s was removed from the Go API: drop the row from testdata/bad_configs.json", name)
				}
			}
			total++
			lc := newLayerConfig(t, tt.Layer, tt.Set)
			ok := true
			if err := lc.validate(); !namesField(err, tt.Field) {
				t.Errorf("Validate() = %v, want ErrInvalidConfig naming %s", err, tt.Field)
				ok = false
			}
			v := catch(func() { lc.construct() })
			if err, _ := v.(error); !namesField(err, tt.Field) {
				t.Errorf("constructor panicked with %v, want an error matching ErrInvalidConfig naming %s", v, tt.Field)
				ok = false
			}
			var err error
			if v := catch(func() { _, err = lc.stack().Build() }); v != nil {
				t.Errorf("Stack.Build panicked: %v", v)
				ok = false
			} else if !namesField(err, tt.Field) {
				t.Errorf("Stack.Build() = %v, want ErrInvalidConfig naming %s", err, tt.Field)
				ok = false
			}
			if ok {
				passed++
			}
		})
	}
	for _, tt := range bc.OK {
		t.Run("ok/"+tt.Name, func(t *testing.T) {
			total++
			lc := newLayerConfig(t, tt.Layer, tt.Set)
			if err := lc.validate(); err != nil {
				t.Errorf("Validate() = %v, want nil", err)
				return
			}
			if v := catch(func() { lc.construct() }); v != nil {
				t.Errorf("constructor panicked: %v", v)
				return
			}
			var err error
			if v := catch(func() { _, err = lc.stack().Build() }); v != nil || err != nil {
				t.Errorf("Stack.Build() = %v, panic %v; want nil, no panic", err, v)
				return
			}
			passed++
		})
	}
	t.Logf("bad configs: %d of %d cases as required (%d from Go, %d valid extremes)", passed, total, len(bc.Go), len(bc.OK))
}
