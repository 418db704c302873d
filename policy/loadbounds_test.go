package policy_test

import (
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"

	"github.com/resiliencekit/resilience/middleware"
)

// endless is a reader that never ends.
type endless struct{}

func (endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = ' '
	}
	return len(p), nil
}

// Regression: LoadStacks had no bounds (a 75 KB alias bomb allocated 2 GB,
// 40k keys took 9 s, an endless reader was read forever) and matched keys
// case-insensitively. Every hostile input now fails with ErrInvalidConfig,
// within a bounded allocation.
func TestLoadStacksHostileInputs(t *testing.T) {
	var bomb strings.Builder
	bomb.WriteString("a: &a [\"" + strings.Repeat("x", 1000) + "\"]\n")
	prev := "a"
	for i := range 9 {
		name := string(rune('b' + i))
		bomb.WriteString(name + ": &" + name + " [" + strings.Repeat("*"+prev+",", 9) + "*" + prev + "]\n")
		prev = name
	}
	var keys strings.Builder
	keys.WriteString("s:\n  retry:\n")
	for i := range 40000 {
		keys.WriteString("    k")
		keys.WriteString(strings.Repeat("x", i%7))
		keys.WriteString(string(rune('a' + i%26)))
		keys.WriteString(": 1\n")
	}
	tests := []struct {
		name string
		src  func() any
	}{
		{"alias bomb", func() any { return strings.NewReader(bomb.String()) }},
		{"40k keys", func() any { return strings.NewReader(keys.String()) }},
		{"deep nesting", func() any { return strings.NewReader(strings.Repeat("[", 5000) + strings.Repeat("]", 5000)) }},
		{"endless reader", func() any { return io.Reader(endless{}) }},
		{"one byte past 1 MiB", func() any { return strings.NewReader(strings.Repeat(" ", middleware.DefaultMaxPolicyBytes+1)) }},
		{"mixed-case key", func() any { return strings.NewReader("s:\n  retry:\n    Max_Attempts: 3\n") }},
		{"duplicate key", func() any { return strings.NewReader("s:\n  retry:\n    max_attempts: 3\n    max_attempts: 4\n") }},
		{"binary key", func() any { return strings.NewReader("s:\n  retry:\n    !!binary bWF4X2F0dGVtcHRz: 3\n") }},
		{"nan", func() any { return strings.NewReader("s:\n  retry:\n    delay: .nan\n") }},
		{"inf", func() any { return strings.NewReader("s:\n  retry:\n    delay: .inf\n") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := middleware.LoadStacks(tt.src())
			runtime.ReadMemStats(&after)
			if !errors.Is(err, middleware.ErrInvalidConfig) {
				t.Errorf("LoadStacks err = %v, want ErrInvalidConfig", err)
			}
			if got := after.TotalAlloc - before.TotalAlloc; got > 50<<20 {
				t.Errorf("allocated %d MiB, want at most 50", got>>20)
			}
		})
	}
}

func TestLoadStacksWithMaxBytes(t *testing.T) {
	src := "s:\n  retry:\n    max_attempts: 3\n"
	if _, err := middleware.LoadStacksWith(strings.NewReader(src), middleware.LoadOptions{MaxBytes: 10}); !errors.Is(err, middleware.ErrInvalidConfig) || !strings.Contains(err.Error(), "10 bytes") {
		t.Errorf("past MaxBytes: err = %v, want ErrInvalidConfig naming the limit", err)
	}
	stacks, err := middleware.LoadStacksWith(strings.NewReader(src), middleware.LoadOptions{MaxBytes: int64(len(src))})
	if err != nil || stacks["s"].Retry == nil || stacks["s"].Retry.MaxAttempts != 3 {
		t.Errorf("at MaxBytes: stacks = %v, err = %v, want the stack", stacks, err)
	}
}
