package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/resiliencekit/resilience/errclass"
	"github.com/resiliencekit/resilience/middleware"
)

// ErrUnknownStack is matched by the error [Set.Stack] and [StackFor] return
// for a name the set has no stack of.
var ErrUnknownStack = errors.New("policy: unknown stack")

// ErrTooLarge is matched by the error of a file larger than
// [Config].MaxBytes (and by middleware.ErrInvalidConfig).
var ErrTooLarge = errors.New("policy: file too large")

// Config says how policy files are read. The zero value is the defaults:
// files up to [DefaultMaxBytes], the built-in error classes.
type Config struct {
	// MaxBytes is the largest file read, in bytes; a larger one is an
	// error matching [ErrTooLarge] that names the limit, read no further.
	// Default 0: [DefaultMaxBytes] (1 MiB). Negative is an error.
	MaxBytes int64

	// Classes resolves the error-class names of retry_on, fail_on and
	// fallback_on. Default nil: the built-in classes ("connection",
	// "timeout", "http-5xx", "http-429"); give a set of your own to add
	// classes of your own.
	Classes *errclass.Set

	// WatchInterval is how often [Config.Watch] looks at the file.
	// Default 0: [DefaultWatchInterval] (1s). Negative is an error.
	WatchInterval time.Duration
}

// Set is the stacks of one policy file, by name. It is immutable: read it
// from any goroutine.
type Set struct {
	file   string
	names  []string // sorted
	stacks map[string]stackDef
}

// Load reads the policy file at path with the default [Config].
func Load(path string) (*Set, error) { return Config{}.Load(path) }

// Parse reads a policy file's contents with the default [Config].
func Parse(data []byte) (*Set, error) { return Config{}.Parse(data) }

// Load reads the policy file at path: see [Config.Parse].
func (c Config) Load(path string) (*Set, error) {
	data, err := c.read(path)
	if err != nil {
		return nil, err
	}
	return c.parse(path, data)
}

// Parse reads a policy file's contents: YAML, or JSON (which is YAML too),
// a map from stack name to stack:
//
//	embedding_api:
//	  fallback: {value: []}
//	  circuit_breaker: {failure_threshold: 5, reset_timeout: 2m}
//	  retry: {max_attempts: 3, delay: 1s, retry_on: [connection, timeout]}
//	  timeout: {timeout: 10s}
//
// Each stack's keys are its layers (name, budget, measure, recover,
// fallback, bulkhead, rate_limit, circuit_breaker, retry, timeout), each a
// map of that layer's settings in snake case. Durations are strings
// ("1.5s", "2m") or numbers of seconds (1.5); retry_on, fail_on and
// fallback_on name error classes (see [Config].Classes). A layer and its
// circuit breaker take the stack's name unless they name themselves.
//
// Unknown keys are errors, never silently ignored defaults. Every stack is
// validated; every problem in the file is returned at once, each naming
// the stack and the field and matching middleware.ErrInvalidConfig (a
// *middleware.ConfigError where a field is to blame). Functions (a
// fallback endpoint, an observer) cannot be written in a file: set them on
// the Stack a Set returns.
//
// The input is bounded: at most MaxBytes, a bounded number of keys and
// values with aliases expanded, and a bounded depth, so any input loads or
// fails in time and memory bounded by its size. Keys are exact (a stack's
// layers and a layer's fields are lowercase) and a key given twice is an
// error naming both spellings.
func (c Config) Parse(data []byte) (*Set, error) {
	max, err := c.maxBytes()
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, c.tooLarge("", max)
	}
	return c.parse("", data)
}

func (c Config) maxBytes() (int64, error) {
	switch {
	case c.MaxBytes < 0:
		return 0, &middleware.ConfigError{Path: "policy.max_bytes", Field: "policy.Config.MaxBytes", Value: c.MaxBytes, Reason: "must not be negative (0 means the default 1 MiB)"}
	case c.MaxBytes == 0:
		return DefaultMaxBytes, nil
	}
	return c.MaxBytes, nil
}

func (c Config) tooLarge(file string, max int64) error {
	return fmt.Errorf("policy: %s%w: %w: larger than the limit of %d bytes (Config.MaxBytes)", at(file), middleware.ErrInvalidConfig, ErrTooLarge, max)
}

func (c Config) parse(file string, data []byte) (*Set, error) {
	if max, _ := c.maxBytes(); int64(len(data)) > max {
		return nil, c.tooLarge(file, max)
	}
	doc, err := parseBounded(file, data)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	set := &Set{file: file, stacks: map[string]stackDef{}}
	if doc == nil {
		return set, nil
	}
	top, ok := doc.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("policy: %s%w: the file must be a map from stack name to stack", at(file), middleware.ErrInvalidConfig)
	}
	classes := c.Classes
	if classes == nil {
		classes = &errclass.Set{}
	}
	var errs []error
	for _, name := range sortedKeys(top) {
		where := fmt.Sprintf("policy: %sstack %q", at(file), name)
		js, err := json.Marshal(top[name])
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w: %v", where, middleware.ErrInvalidConfig, err))
			continue
		}
		def, err := decodeStack(name, js, classes)
		if err != nil {
			errs = append(errs, wrapEach(err, where))
			continue
		}
		set.stacks[name] = def
		set.names = append(set.names, name)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return set, nil
}

// Names returns the names of the set's stacks, sorted.
func (s *Set) Names() []string { return slices.Clone(s.names) }

// Stack returns the stack called name, ready to build; a fallback value or
// a timeout's default from the file has JSON's types ([]any, map[string]any,
// float64, string, bool), as encoding/json decodes into an interface; use
// [StackFor] to have it as your endpoint's response type. The Stack is a
// value of the caller's own: set what a file cannot hold (an Observer, a
// Registry, a fallback endpoint with WithFallback) on it. A name the set
// has no stack of is an error matching [ErrUnknownStack] that lists the
// known names.
func (s *Set) Stack(name string) (middleware.Stack, error) {
	d, err := s.def(name)
	return d.stack, err
}

func (s *Set) def(name string) (stackDef, error) {
	d, ok := s.stacks[name]
	if !ok {
		known := "none"
		if len(s.names) > 0 {
			known = strings.Join(s.names, ", ")
		}
		in := ""
		if s.file != "" {
			in = " in " + s.file
		}
		return stackDef{}, fmt.Errorf("%w %q%s (known: %s)", ErrUnknownStack, name, in, known)
	}
	return d, nil
}

// StackFor returns the stack called name, as [Set.Stack] does, with the
// file's fallback value and timeout default decoded into Resp, the type
// the caller's endpoint returns: a caller that asserts resp.(Resp) gets the
// file's value as a Resp. A value that does not fit Resp (another shape, an
// unknown field of a struct) is an error matching
// middleware.ErrInvalidConfig that names the stack and the field
// ("fallback.value").
//
//	s, err := policy.StackFor[[]float32](set, "embedding_api")
func StackFor[Resp any](set *Set, name string) (middleware.Stack, error) {
	d, err := set.def(name)
	if err != nil {
		return middleware.Stack{}, err
	}
	s := d.stack
	var errs []error
	if d.fallbackValue != nil {
		v, err := decodeAs[Resp]("fallback.value", d.fallbackValue)
		errs = append(errs, err)
		s.Fallback.Value = v
	}
	if d.timeoutDefault != nil {
		v, err := decodeAs[Resp]("timeout.default", d.timeoutDefault)
		errs = append(errs, err)
		s.Timeout.Default = v
	}
	if err := errors.Join(errs...); err != nil {
		return middleware.Stack{}, wrapEach(err, fmt.Sprintf("policy: %sstack %q", at(set.file), name))
	}
	return s, nil
}

// decodeAs decodes raw into a Resp, strictly: unknown fields of a struct are
// errors.
func decodeAs[Resp any](path string, raw json.RawMessage) (any, error) {
	var v Resp
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		return nil, &middleware.ConfigError{Path: path, Reason: fmt.Sprintf("does not fit %T: %s", v, strings.TrimPrefix(err.Error(), "json: "))}
	}
	return v, nil
}

// wrapEach prefixes every error of a joined error with where.
func wrapEach(err error, where string) error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, wrapEach(e, where))
		}
		return errors.Join(out...)
	}
	return fmt.Errorf("%s: %w", where, err)
}

// at is "file: " to begin an error's text with, or "" for contents that
// came from no file (Parse).
func at(file string) string {
	if file == "" {
		return ""
	}
	return file + ": "
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
