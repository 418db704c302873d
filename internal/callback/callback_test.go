package callback_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/resiliencekit/resilience/internal/callback"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestCall(t *testing.T) {
	tests := []struct {
		name  string
		fn    func()
		value any
	}{
		{"no panic", func() {}, nil},
		{"string", func() { panic("boom") }, "boom"},
		{"error", func() { panic(errBoom) }, errBoom},
		{"nil", func() { panic(nil) }, "*runtime.PanicNilError"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := callback.Call("listener", tt.fn)
			if tt.value == nil {
				if p != nil {
					t.Fatalf("Call = %v, want nil", p)
				}
				return
			}
			if p == nil {
				t.Fatal("Call = nil, want the panic")
			}
			if s, ok := tt.value.(string); ok && strings.HasPrefix(s, "*") {
				if got := typeName(p.Value); got != s {
					t.Errorf("value type = %s, want %s", got, s)
				}
			} else if p.Value != tt.value {
				t.Errorf("value = %v, want %v", p.Value, tt.value)
			}
			if len(p.Stack) == 0 || p.What != "listener" {
				t.Errorf("panic = %+v, want a stack and What listener", p)
			}
		})
	}
}

type boomError struct{}

func (boomError) Error() string { return "boom" }

var errBoom error = boomError{}

func typeName(v any) string { return fmt.Sprintf("%T", v) }

func TestRepanic(t *testing.T) {
	p := callback.Call("x", func() { panic("again") })
	defer func() {
		if v := recover(); v != "again" {
			t.Errorf("recovered %v, want again", v)
		}
	}()
	p.Repanic()
}

func TestGuardLogsAtError(t *testing.T) {
	var buf bytes.Buffer
	var mu sync.Mutex
	l := slog.New(slog.NewTextHandler(&lockedWriter{&mu, &buf}, nil))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer callback.Guard(l, "timer listener")
		panic("on the library's goroutine")
	}()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	out := buf.String()
	for _, want := range []string{"level=ERROR", "timer listener panicked", "on the library's goroutine", "stack="} {
		if !strings.Contains(out, want) {
			t.Errorf("log %q lacks %q", out, want)
		}
	}
}

func TestFirstRunsEveryone(t *testing.T) {
	var f callback.First
	ran := 0
	for i := range 3 {
		f.Call("sub", func() {
			ran++
			if i > 0 {
				panic(i)
			}
		})
	}
	if ran != 3 {
		t.Errorf("ran = %d, want 3", ran)
	}
	if f.P == nil || f.P.Value != 1 {
		t.Errorf("first panic = %v, want 1", f.P)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}
