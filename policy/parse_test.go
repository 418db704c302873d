package policy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/resiliencekit/resilience/endpoint/endpointtest"
	"github.com/resiliencekit/resilience/errclass"
	"github.com/resiliencekit/resilience/middleware"
	"github.com/resiliencekit/resilience/policy"
	"github.com/resiliencekit/resilience/registry"
)

// TestLoadGuidePolicies loads the guide's policies and builds every stack.
func TestLoadGuidePolicies(t *testing.T) {
	set, err := policy.Load("../testdata/policies.yaml")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := map[string]string{
		"flaky_fast_api":    "retry(5 attempts) → endpoint",
		"slow_reliable_api": "retry(3 attempts) → endpoint",
		"critical":          "circuit_breaker(critical) → endpoint",
		"optional":          "circuit_breaker(optional) → endpoint",
		"embedding_api":     "fallback(value []) → circuit_breaker(embedding_api) → retry(3 attempts) → timeout(10s) → endpoint",
	}
	if got := set.Names(); len(got) != len(want) {
		t.Errorf("Names() = %v, want the %d stacks of %v", got, len(want), want)
	}
	reg := registry.New(registry.Config{})
	for _, name := range set.Names() {
		s := mustStack(t, set, name)
		if got := s.String(); got != want[name] {
			t.Errorf("%s: String() = %q, want %q", name, got, want[name])
		}
		s.Registry, s.Observer = reg, quiet
		if _, err := s.Build(); err != nil {
			t.Errorf("%s: Build: %v", name, err)
		}
	}
	e := mustStack(t, set, "embedding_api")
	if e.Retry.Delay.String() != "1s" || e.CircuitBreaker.ResetTimeout.String() != "2m0s" || e.CircuitBreaker.FailureThreshold != 5 {
		t.Errorf("embedding_api decoded as %+v / %+v", e.Retry, e.CircuitBreaker)
	}
	if got := mustStack(t, set, "optional").CircuitBreaker.ResetTimeout.String(); got != "5m0s" {
		t.Errorf("optional reset_timeout = %s, want 5m0s (a number is seconds)", got)
	}
}

// TestParseErrors: every problem of a file at once, each a ConfigError
// naming the field, in an error naming the stack, all matching
// ErrInvalidConfig.
func TestParseErrors(t *testing.T) {
	tests := []struct {
		name   string
		file   string
		paths  []string // the ConfigError paths
		stacks []string // the stacks named
	}{
		{"unknown key", "a:\n  retry: {max_atempts: 3}\n", []string{"retry.max_atempts"}, []string{"a"}},
		{"unknown layer", "a:\n  retri: {}\n", []string{"retri"}, []string{"a"}},
		{"bad duration", "a:\n  retry: {delay: soon}\n", []string{"retry.delay"}, []string{"a"}},
		{"wrong type", "a:\n  retry: {max_attempts: three}\n", []string{"retry.max_attempts"}, []string{"a"}},
		{"every problem at once", "a:\n  retry: {max_attempts: -1, backoff: 0.5}\nb:\n  timeout: {timeout: -1s}\nc:\n  caching: {}\n  bulkhead: {max_concurrent: 0}\n",
			[]string{"retry.max_attempts", "retry.backoff", "timeout.timeout", "caching", "bulkhead.max_concurrent"}, []string{"a", "b", "c"}},
		{"breaker name must be printable", "a:\n  circuit_breaker: {name: \"bad\\u0000name\"}\n", []string{"circuit_breaker.name"}, []string{"a"}},
		{"unknown error class", "a:\n  retry: {retry_on: [conection]}\n", []string{"retry.retry_on[0]"}, []string{"a"}},
		{"measure with a key", "a:\n  measure: {name: x}\n", []string{"measure"}, []string{"a"}},
		{"recover not a boolean", "a:\n  recover: yes please\n", []string{"recover"}, []string{"a"}},
		{"stack not a map", "a: [retry]\n", []string{"stack"}, []string{"a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := policy.Parse([]byte(tt.file))
			if !errors.Is(err, middleware.ErrInvalidConfig) {
				t.Fatalf("Parse = %v, want ErrInvalidConfig", err)
			}
			for _, p := range tt.paths {
				if !hasPath(err, p) {
					t.Errorf("Parse = %v; paths %q, want %s among them", err, paths(err), p)
				}
			}
			for _, s := range tt.stacks {
				if !strings.Contains(err.Error(), `stack "`+s+`"`) {
					t.Errorf("Parse = %v, want it to name stack %q", err, s)
				}
			}
		})
	}
	if _, err := policy.Parse([]byte("- a\n- b\n")); !errors.Is(err, middleware.ErrInvalidConfig) {
		t.Errorf("a list: Parse = %v, want ErrInvalidConfig", err)
	}
}

// TestParseFileNamed: an error of Load names the file.
func TestLoadNamesFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.yaml")
	if err := os.WriteFile(path, []byte("a:\n  retri: {}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := policy.Load(path)
	if !errors.Is(err, middleware.ErrInvalidConfig) || !strings.Contains(err.Error(), path) {
		t.Errorf("Load = %v, want ErrInvalidConfig naming %s", err, path)
	}
	if _, err := policy.Load(filepath.Join(t.TempDir(), "none.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load of a missing file = %v, want os.ErrNotExist", err)
	}
}

// TestBadConfigFiles runs the files of testdata/bad_configs.json (the one
// table of bad configs; its Go cases are middleware's): each is an error
// matching ErrInvalidConfig with a ConfigError naming the path, and none
// panics.
func TestBadConfigFiles(t *testing.T) {
	data, err := os.ReadFile("../testdata/bad_configs.json")
	if err != nil {
		t.Fatal(err)
	}
	var bc struct {
		Files []struct {
			Name   string          `json:"name"`
			Policy json.RawMessage `json:"policy"`
			Path   string          `json:"path"`
		} `json:"files"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&bc); err != nil {
		t.Fatal(err)
	}
	if len(bc.Files) == 0 {
		t.Fatal("no file cases in bad_configs.json")
	}
	for _, tt := range bc.Files {
		t.Run(tt.Name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "policy.json")
			if err := os.WriteFile(path, tt.Policy, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := policy.Load(path)
			if !errors.Is(err, middleware.ErrInvalidConfig) {
				t.Fatalf("Load(%s) = %v, want ErrInvalidConfig", tt.Policy, err)
			}
			named := slices.ContainsFunc(paths(err), func(p string) bool {
				return p == tt.Path || strings.HasPrefix(p, tt.Path+"[") || strings.HasPrefix(p, tt.Path+".")
			})
			if !named {
				t.Errorf("Load(%s) = %v; paths %q, want %s", tt.Policy, err, paths(err), tt.Path)
			}
		})
	}
}

// TestStackNameDefaults: a stack is named by its key, and its name is the
// default name of its layers, its breaker's included; a layer that names
// itself keeps its name, and "name" renames the stack.
func TestStackNameDefaults(t *testing.T) {
	set, err := policy.Parse([]byte(`
search_api:
  circuit_breaker: {failure_threshold: 3}
  retry: {no_delay: true}
renamed:
  name: other
  retry: {name: own, no_delay: true}
  timeout: {timeout: 1s}
`))
	if err != nil {
		t.Fatal(err)
	}
	s := mustStack(t, set, "search_api")
	if s.Name != "search_api" || s.CircuitBreaker.Name != "search_api" || s.Retry.Name != "search_api" {
		t.Errorf("names = %q, %q, %q, want search_api for all", s.Name, s.CircuitBreaker.Name, s.Retry.Name)
	}
	r := mustStack(t, set, "renamed")
	if r.Name != "other" || r.Retry.Name != "own" || r.Timeout.Name != "other" {
		t.Errorf("names = %q, %q, %q, want other, own, other", r.Name, r.Retry.Name, r.Timeout.Name)
	}
	reg := registry.New(registry.Config{})
	s.Registry = reg
	var names []string
	s.Observer = middleware.ObserverFunc(func(_ context.Context, e middleware.Event) { names = append(names, e.Layer+"="+e.Name) })
	ep, err := s.Apply(endpointtest.Script("err").Endpoint())
	if err != nil {
		t.Fatal(err)
	}
	ep(context.Background(), nil)
	if _, ok := reg.Get("search_api"); !ok {
		t.Errorf("no breaker named search_api in %v", reg.Names())
	}
	if len(names) == 0 || names[0] != "retry=search_api" {
		t.Errorf("events = %v, want retry events named search_api", names)
	}
}

// TestToggleLayers: measure and recover take true, false or {}.
func TestToggleLayers(t *testing.T) {
	tests := []struct {
		name          string
		file          string
		measure, recv bool
	}{
		{"true", "s:\n  measure: true\n  recover: true\n", true, true},
		{"empty map", "s:\n  measure: {}\n  recover: {}\n", true, true},
		{"false", "s:\n  measure: false\n  recover: false\n", false, false},
		{"absent", "s:\n  retry: {max_attempts: 2}\n", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, err := policy.Parse([]byte(tt.file))
			if err != nil {
				t.Fatal(err)
			}
			s := mustStack(t, set, "s")
			if s.Measure != tt.measure || s.Recover != tt.recv {
				t.Errorf("Measure, Recover = %t, %t, want %t, %t", s.Measure, s.Recover, tt.measure, tt.recv)
			}
		})
	}
	t.Run("recover catches a panic", func(t *testing.T) {
		set, err := policy.Parse([]byte("s:\n  recover: true\n  measure: {}\n"))
		if err != nil {
			t.Fatal(err)
		}
		s := mustStack(t, set, "s")
		var layers []string
		s.Observer = middleware.ObserverFunc(func(_ context.Context, e middleware.Event) { layers = append(layers, e.Layer) })
		ep, err := s.Apply(endpointtest.New(endpointtest.Panic("boom")).Endpoint())
		if err != nil {
			t.Fatal(err)
		}
		_, err = ep(context.Background(), nil)
		if _, ok := errors.AsType[*middleware.PanicError](err); !ok {
			t.Errorf("err = %v, want a *middleware.PanicError", err)
		}
		if !slices.Contains(layers, "measure") {
			t.Errorf("event layers = %v, want a measure event", layers)
		}
	})
}

// TestFileErrorClasses: retry_on, fail_on and fallback_on name error
// classes; an unknown one lists the known ones; a Config's Classes adds
// classes of the user's own.
func TestFileErrorClasses(t *testing.T) {
	set, err := policy.Parse([]byte(`
s:
  fallback: {value: cached, fallback_on: [timeout]}
  circuit_breaker: {name: classes, failure_threshold: 1, fail_on: [connection]}
`))
	if err != nil {
		t.Fatal(err)
	}
	errOther := errors.New("other")
	tests := []struct {
		name     string
		err      error
		wantResp any
		wantOpen bool
	}{
		{"not a connection error: no failure, no fallback", errOther, nil, false},
		{"timeout falls back, does not trip", context.DeadlineExceeded, "cached", false},
		{"connection error trips the breaker", io.ErrUnexpectedEOF, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustStack(t, set, "s")
			reg := registry.New(registry.Config{})
			s.Registry, s.Observer = reg, quiet
			ep, err := s.Apply(endpointtest.New(endpointtest.Err(tt.err)).Endpoint())
			if err != nil {
				t.Fatal(err)
			}
			resp, _ := ep(context.Background(), nil)
			if resp != tt.wantResp {
				t.Errorf("resp = %v, want %v", resp, tt.wantResp)
			}
			b, _ := reg.Get("classes")
			if got := b.State() == registry.StateOpen; got != tt.wantOpen {
				t.Errorf("open = %t, want %t", got, tt.wantOpen)
			}
		})
	}
	t.Run("unknown classes list the known ones", func(t *testing.T) {
		_, err := policy.Parse([]byte("s:\n  circuit_breaker: {name: x, fail_on: [nope]}\n  fallback: {fallback_on: [nope2]}\n  retry: {retry_on: [timeout, nope3]}\n"))
		for _, p := range []string{"circuit_breaker.fail_on[0]", "fallback.fallback_on[0]", "retry.retry_on[1]"} {
			if !hasPath(err, p) {
				t.Errorf("Parse = %v; paths %q, want %s", err, paths(err), p)
			}
		}
		for _, ce := range configErrors(err) {
			for _, known := range []string{"connection", "timeout", "http-5xx", "http-429"} {
				if !strings.Contains(ce.Reason, known) {
					t.Errorf("%s: reason %q does not list %s", ce.Path, ce.Reason, known)
				}
			}
		}
	})
	t.Run("a registered class", func(t *testing.T) {
		errQuota := errors.New("quota")
		var classes errclass.Set
		if err := classes.Register("quota", errclass.Is(errQuota)); err != nil {
			t.Fatal(err)
		}
		file := []byte("s:\n  retry: {max_attempts: 3, no_delay: true, retry_on: [quota]}\n")
		if _, err := policy.Parse(file); !hasPath(err, "retry.retry_on[0]") {
			t.Errorf("without Classes: Parse = %v, want retry.retry_on[0] unknown", err)
		}
		set, err := policy.Config{Classes: &classes}.Parse(file)
		if err != nil {
			t.Fatal(err)
		}
		s := mustStack(t, set, "s")
		s.Observer = quiet
		for _, tt := range []struct {
			err   error
			calls int
		}{{errQuota, 3}, {errOther, 1}} {
			next := endpointtest.New(endpointtest.Err(tt.err))
			ep, err := s.Apply(next.Endpoint())
			if err != nil {
				t.Fatal(err)
			}
			ep(context.Background(), nil)
			if got := next.Calls(); got != tt.calls {
				t.Errorf("%v: calls = %d, want %d", tt.err, got, tt.calls)
			}
		}
	})
}
