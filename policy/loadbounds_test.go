package policy_test

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/resiliencekit/resilience/middleware"
	"github.com/resiliencekit/resilience/policy"
)

// Regression: the loader had no bounds (a 75 KB alias bomb allocated 2 GB,
// 40k keys took 9 s, an endless file was read forever) and matched keys
// case-insensitively. Every hostile input now fails with ErrInvalidConfig,
// within a bounded allocation.
func TestParseHostileInputs(t *testing.T) {
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
		src  string
	}{
		{"alias bomb", bomb.String()},
		{"40k keys", keys.String()},
		{"deep nesting", strings.Repeat("[", 5000) + strings.Repeat("]", 5000)},
		{"one byte past 1 MiB", strings.Repeat(" ", policy.DefaultMaxBytes+1)},
		{"mixed-case key", "s:\n  retry:\n    Max_Attempts: 3\n"},
		{"duplicate key", "s:\n  retry:\n    max_attempts: 3\n    max_attempts: 4\n"},
		{"binary key", "s:\n  retry:\n    !!binary bWF4X2F0dGVtcHRz: 3\n"},
		{"nan", "s:\n  retry:\n    delay: .nan\n"},
		{"inf", "s:\n  retry:\n    delay: .inf\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := []byte(tt.src)
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := policy.Parse(data)
			runtime.ReadMemStats(&after)
			if !errors.Is(err, middleware.ErrInvalidConfig) {
				t.Errorf("Parse err = %v, want ErrInvalidConfig", err)
			}
			if got := after.TotalAlloc - before.TotalAlloc; got > 50<<20 {
				t.Errorf("allocated %d MiB, want at most 50", got>>20)
			}
		})
	}
}

// TestLoadEndlessFile: Load reads no more than MaxBytes+1 of a file that
// never ends (a device, a FIFO fed forever).
func TestLoadEndlessFile(t *testing.T) {
	if _, err := os.Stat("/dev/zero"); err != nil {
		t.Skip("no /dev/zero")
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := policy.Load("/dev/zero")
	runtime.ReadMemStats(&after)
	if !errors.Is(err, policy.ErrTooLarge) || !errors.Is(err, middleware.ErrInvalidConfig) {
		t.Errorf("Load(/dev/zero) = %v, want ErrTooLarge and ErrInvalidConfig", err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 50<<20 {
		t.Errorf("allocated %d MiB, want at most 50", got>>20)
	}
}

func TestConfigMaxBytes(t *testing.T) {
	src := "s:\n  retry:\n    max_attempts: 3\n"
	path := filepath.Join(t.TempDir(), "p.yaml")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	small := policy.Config{MaxBytes: 10}
	if _, err := small.Parse([]byte(src)); !errors.Is(err, policy.ErrTooLarge) || !errors.Is(err, middleware.ErrInvalidConfig) {
		t.Errorf("Parse past MaxBytes: err = %v, want ErrTooLarge and ErrInvalidConfig", err)
	}
	if _, err := small.Load(path); !errors.Is(err, policy.ErrTooLarge) {
		t.Errorf("Load past MaxBytes: err = %v, want ErrTooLarge", err)
	}
	exact := policy.Config{MaxBytes: int64(len(src))}
	for _, load := range []func() (*policy.Set, error){
		func() (*policy.Set, error) { return exact.Parse([]byte(src)) },
		func() (*policy.Set, error) { return exact.Load(path) },
	} {
		set, err := load()
		if err != nil {
			t.Fatalf("at MaxBytes: %v", err)
		}
		if got := mustStack(t, set, "s").Retry.MaxAttempts; got != 3 {
			t.Errorf("at MaxBytes: max_attempts = %d, want 3", got)
		}
	}
	if _, err := (policy.Config{MaxBytes: -1}).Parse([]byte(src)); !errors.Is(err, middleware.ErrInvalidConfig) || !hasPath(err, "policy.max_bytes") {
		t.Errorf("negative MaxBytes: err = %v, want ErrInvalidConfig naming policy.max_bytes", err)
	}
}
