package health_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resiliencekit/resilience/health"
)

// ok is a check that passes at once.
func ok(context.Context) error { return nil }

// sleeper returns a check that sleeps d (honouring ctx) and returns err.
func sleeper(d time.Duration, err error) health.CheckFunc {
	return func(ctx context.Context) error {
		select {
		case <-time.After(d):
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// hung returns a check that ignores its context and blocks until release is
// closed, counting its runs.
func hung(release <-chan struct{}, runs *atomic.Int64) health.CheckFunc {
	return func(context.Context) error {
		runs.Add(1)
		<-release
		return nil
	}
}

func TestRegisterErrors(t *testing.T) {
	tests := []struct {
		name      string
		check     string
		fn        health.CheckFunc
		opts      []health.CheckOption
		want      error
		wantInMsg string
	}{
		{name: "empty name", check: "", fn: ok, want: health.ErrEmptyName},
		{name: "nil func", check: "db", fn: nil, want: health.ErrNilCheck, wantInMsg: `"db"`},
		{name: "nil bool func", check: "fs", fn: health.Bool(nil), want: health.ErrNilCheck, wantInMsg: `"fs"`},
		{name: "nil bool ctx func", check: "fs", fn: health.BoolCtx(nil), want: health.ErrNilCheck, wantInMsg: `"fs"`},
		{name: "duplicate", check: "taken", fn: ok, want: health.ErrDuplicateCheck, wantInMsg: `"taken"`},
		{name: "zero timeout", check: "slow", fn: ok, opts: []health.CheckOption{health.Timeout(0)}, want: health.ErrInvalidOption, wantInMsg: `"slow"`},
		{name: "negative timeout", check: "slow", fn: ok, opts: []health.CheckOption{health.Timeout(-time.Second)}, want: health.ErrInvalidOption, wantInMsg: `"slow"`},
		{name: "valid", check: "fine", fn: ok, opts: []health.CheckOption{health.Timeout(time.Second), health.Optional()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := health.NewChecker()
			c.MustRegister("taken", ok)
			err := c.Register(tt.check, tt.fn, tt.opts...)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("Register(%q) = %v, want %v", tt.check, err, tt.want)
			}
			if tt.wantInMsg != "" && !strings.Contains(err.Error(), tt.wantInMsg) {
				t.Errorf("error %q does not name the check %s", err, tt.wantInMsg)
			}
			_, checkErr := c.Check(t.Context(), tt.check)
			wantRegistered := tt.want == nil || tt.check == "taken" // a duplicate keeps the first
			if registered := checkErr == nil; registered != wantRegistered {
				t.Errorf("registered = %v, want %v", registered, wantRegistered)
			}
		})
	}
}

func TestMustRegisterPanics(t *testing.T) {
	c := health.NewChecker()
	defer func() {
		err, _ := recover().(error)
		if !errors.Is(err, health.ErrNilCheck) {
			t.Errorf("panic = %v, want ErrNilCheck", err)
		}
	}()
	c.MustRegister("db", nil)
}

func TestNewCheckerInvalidOptions(t *testing.T) {
	tests := []struct {
		name string
		opts []health.Option
	}{
		{name: "zero timeout", opts: []health.Option{health.WithDefaultTimeout(0)}},
		{name: "negative jitter", opts: []health.Option{health.WithJitter(-0.1)}},
		{name: "jitter one", opts: []health.Option{health.WithJitter(1)}},
		{name: "negative max age", opts: []health.Option{health.WithMaxAge(-time.Second)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				err, _ := recover().(error)
				if !errors.Is(err, health.ErrInvalidOption) {
					t.Errorf("panic = %v, want ErrInvalidOption", err)
				}
			}()
			health.NewChecker(tt.opts...)
		})
	}
}

func TestCheckResults(t *testing.T) {
	boom := errors.New("connection refused")
	tests := []struct {
		name        string
		fn          health.CheckFunc
		opts        []health.CheckOption
		wantResult  health.Result
		wantHealthy bool
		wantErr     error
		wantCrit    bool
	}{
		{name: "pass", fn: ok, wantResult: health.Pass, wantHealthy: true, wantCrit: true},
		{name: "error", fn: func(context.Context) error { return boom }, wantResult: health.Fail, wantErr: boom, wantCrit: true},
		{name: "optional error", fn: func(context.Context) error { return boom }, opts: []health.CheckOption{health.Optional()}, wantResult: health.Fail, wantErr: boom},
		{name: "optional then critical", fn: ok, opts: []health.CheckOption{health.Optional(), health.Critical()}, wantResult: health.Pass, wantHealthy: true, wantCrit: true},
		{name: "degraded", fn: func(context.Context) error { return health.Degraded(boom) }, wantResult: health.Warn, wantHealthy: true, wantErr: health.ErrDegraded, wantCrit: true},
		{name: "degraded keeps cause", fn: func(context.Context) error { return health.Degraded(boom) }, wantResult: health.Warn, wantHealthy: true, wantErr: boom, wantCrit: true},
		{name: "degraded nil", fn: func(context.Context) error { return health.Degraded(nil) }, wantResult: health.Warn, wantHealthy: true, wantErr: health.ErrDegraded, wantCrit: true},
		{name: "bool true", fn: health.Bool(func() bool { return true }), wantResult: health.Pass, wantHealthy: true, wantCrit: true},
		{name: "bool false", fn: health.Bool(func() bool { return false }), wantResult: health.Fail, wantErr: health.ErrCheckFailed, wantCrit: true},
		{name: "bool ctx false", fn: health.BoolCtx(func(context.Context) bool { return false }), wantResult: health.Fail, wantErr: health.ErrCheckFailed, wantCrit: true},
		{name: "bool ctx true", fn: health.BoolCtx(func(ctx context.Context) bool { return ctx.Err() == nil }), wantResult: health.Pass, wantHealthy: true, wantCrit: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := health.NewChecker()
				c.MustRegister("svc", tt.fn, tt.opts...)
				s, err := c.Check(t.Context(), "svc")
				if err != nil {
					t.Fatalf("Check: %v", err)
				}
				if s.Name != "svc" {
					t.Errorf("Name = %q, want %q", s.Name, "svc")
				}
				if s.Result != tt.wantResult {
					t.Errorf("Result = %q, want %q", s.Result, tt.wantResult)
				}
				if s.Healthy != tt.wantHealthy {
					t.Errorf("Healthy = %v, want %v", s.Healthy, tt.wantHealthy)
				}
				if s.Critical != tt.wantCrit {
					t.Errorf("Critical = %v, want %v", s.Critical, tt.wantCrit)
				}
				if tt.wantErr == nil && s.Error != nil || tt.wantErr != nil && !errors.Is(s.Error, tt.wantErr) {
					t.Errorf("Error = %v, want %v", s.Error, tt.wantErr)
				}
				if !s.LastCheck.Equal(time.Now()) {
					t.Errorf("LastCheck = %v, want now (%v)", s.LastCheck, time.Now())
				}
				if got := c.IsHealthy(t.Context(), "svc"); got != tt.wantHealthy {
					t.Errorf("IsHealthy = %v, want %v", got, tt.wantHealthy)
				}
			})
		})
	}
}

func TestCheckUnknown(t *testing.T) {
	c := health.NewChecker()
	c.MustRegister("db", ok)
	s, err := c.Check(t.Context(), "nope")
	if !errors.Is(err, health.ErrUnknownCheck) {
		t.Fatalf("err = %v, want ErrUnknownCheck", err)
	}
	if !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("error %q does not name the check", err)
	}
	if s.Healthy || s.Result != health.Fail || s.Name != "nope" {
		t.Errorf("status = %+v, want a failed status named nope", s)
	}
	if c.IsHealthy(t.Context(), "nope") {
		t.Errorf("IsHealthy(unknown) = true, want false")
	}
}

// TestHungCheckBoundedByTimeout: a check that ignores its context is
// reported failed with ErrTimeout exactly at its deadline.
func TestHungCheckBoundedByTimeout(t *testing.T) {
	tests := []struct {
		name    string
		checker []health.Option
		check   []health.CheckOption
		want    time.Duration
	}{
		{name: "default 5s", want: 5 * time.Second},
		{name: "checker default", checker: []health.Option{health.WithDefaultTimeout(time.Second)}, want: time.Second},
		{name: "per check", check: []health.CheckOption{health.Timeout(250 * time.Millisecond)}, want: 250 * time.Millisecond},
		{name: "per check beats checker", checker: []health.Option{health.WithDefaultTimeout(time.Second)}, check: []health.CheckOption{health.Timeout(3 * time.Second)}, want: 3 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				release := make(chan struct{})
				defer close(release)
				var runs atomic.Int64
				c := health.NewChecker(tt.checker...)
				c.MustRegister("hung", hung(release, &runs), tt.check...)

				start := time.Now()
				s, _ := c.Check(t.Context(), "hung")
				if got := time.Since(start); got != tt.want {
					t.Errorf("elapsed = %v, want %v", got, tt.want)
				}
				if s.Latency != tt.want {
					t.Errorf("Latency = %v, want %v", s.Latency, tt.want)
				}
				if s.Healthy {
					t.Errorf("Healthy = true, want false")
				}
				if !errors.Is(s.Error, health.ErrTimeout) || !errors.Is(s.Error, context.DeadlineExceeded) {
					t.Errorf("Error = %v, want ErrTimeout and DeadlineExceeded", s.Error)
				}
			})
		})
	}
}

// TestCooperativeTimeout: a check that honours ctx and returns at the
// deadline gets the same timeout error.
func TestCooperativeTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := health.NewChecker()
		c.MustRegister("slow", sleeper(time.Hour, nil), health.Timeout(2*time.Second))
		start := time.Now()
		s, _ := c.Check(t.Context(), "slow")
		if got, want := time.Since(start), 2*time.Second; got != want {
			t.Errorf("elapsed = %v, want %v", got, want)
		}
		if !errors.Is(s.Error, health.ErrTimeout) {
			t.Errorf("Error = %v, want ErrTimeout", s.Error)
		}
	})
}

// TestCheckAllConcurrent: CheckAll takes the slowest check's time, not the sum.
func TestCheckAllConcurrent(t *testing.T) {
	tests := []struct {
		name   string
		delays []time.Duration
		want   time.Duration
	}{
		{name: "none", want: 0},
		{name: "one", delays: []time.Duration{time.Second}, want: time.Second},
		{name: "three", delays: []time.Duration{time.Second, 3 * time.Second, 2 * time.Second}, want: 3 * time.Second},
		{name: "ten equal", delays: []time.Duration{time.Second, time.Second, time.Second, time.Second, time.Second, time.Second, time.Second, time.Second, time.Second, time.Second}, want: time.Second},
		{name: "one past timeout", delays: []time.Duration{time.Second, 9 * time.Second}, want: 5 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := health.NewChecker()
				for i, d := range tt.delays {
					c.MustRegister(fmt.Sprintf("c%d", i), sleeper(d, nil))
				}
				start := time.Now()
				got := c.CheckAll(t.Context())
				if elapsed := time.Since(start); elapsed != tt.want {
					t.Errorf("elapsed = %v, want %v", elapsed, tt.want)
				}
				if len(got) != len(tt.delays) {
					t.Fatalf("len = %d, want %d", len(got), len(tt.delays))
				}
				for i, d := range tt.delays {
					name := fmt.Sprintf("c%d", i)
					s := got[name]
					if s.Name != name {
						t.Errorf("[%s].Name = %q", name, s.Name)
					}
					wantLatency := min(d, 5*time.Second)
					if s.Latency != wantLatency {
						t.Errorf("%s latency = %v, want %v", name, s.Latency, wantLatency)
					}
					if wantHealthy := d < 5*time.Second; s.Healthy != wantHealthy {
						t.Errorf("%s healthy = %v, want %v", name, s.Healthy, wantHealthy)
					}
				}
			})
		})
	}
}

// packageGoroutines returns the number of live goroutines running code of
// package health itself (not its tests): check runs and their timers.
func packageGoroutines() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		if strings.Contains(g, "resilience/health.") {
			count++
		}
	}
	return count
}

// TestHungCheckSingleFlight: 1,000 polls of a hung check, concurrent and
// after its deadline, start one run and keep at most one goroutine for it.
func TestHungCheckSingleFlight(t *testing.T) {
	tests := []struct {
		name       string
		concurrent bool
	}{
		{name: "concurrent polls", concurrent: true},
		{name: "sequential polls", concurrent: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				const polls = 1000
				release := make(chan struct{})
				var runs atomic.Int64
				c := health.NewChecker()
				c.MustRegister("hung", hung(release, &runs), health.Timeout(time.Second))

				var failed atomic.Int64
				poll := func() {
					if c.IsHealthy(t.Context(), "hung") {
						return
					}
					failed.Add(1)
				}
				if tt.concurrent {
					var wg sync.WaitGroup
					for range polls {
						wg.Go(poll)
					}
					wg.Wait()
				} else {
					for range polls {
						poll()
						time.Sleep(10 * time.Millisecond) // polls go on long past the deadline
					}
				}
				synctest.Wait()
				if got := runs.Load(); got != 1 {
					t.Errorf("runs = %d, want 1", got)
				}
				if got := failed.Load(); got != polls {
					t.Errorf("failed polls = %d, want %d", got, polls)
				}
				if got := packageGoroutines(); got != 1 {
					t.Errorf("health goroutines = %d, want 1", got)
				}

				// Once the hung run returns, the next poll runs the check again.
				close(release)
				synctest.Wait()
				if got := packageGoroutines(); got != 0 {
					t.Errorf("health goroutines after release = %d, want 0", got)
				}
				if !c.IsHealthy(t.Context(), "hung") {
					t.Errorf("IsHealthy after release = false, want true")
				}
				if got := runs.Load(); got != 2 {
					t.Errorf("runs after release = %d, want 2", got)
				}
			})
		})
	}
}

// TestSharedRun: callers arriving while a check runs share its run and its
// result.
func TestSharedRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var runs atomic.Int64
		c := health.NewChecker()
		c.MustRegister("db", func(ctx context.Context) error {
			runs.Add(1)
			time.Sleep(2 * time.Second)
			return nil
		})
		start := time.Now()
		var wg sync.WaitGroup
		for i := range 10 {
			wg.Go(func() {
				time.Sleep(time.Duration(i) * 100 * time.Millisecond)
				s, _ := c.Check(t.Context(), "db")
				if got, want := time.Since(start), 2*time.Second; got != want {
					t.Errorf("caller %d returned at %v, want %v", i, got, want)
				}
				if got, want := s.Latency, 2*time.Second; got != want {
					t.Errorf("caller %d latency = %v, want %v", i, got, want)
				}
			})
		}
		wg.Wait()
		if got := runs.Load(); got != 1 {
			t.Errorf("runs = %d, want 1", got)
		}
		// A caller after the run ends starts a new one.
		c.Check(t.Context(), "db")
		if got := runs.Load(); got != 2 {
			t.Errorf("runs = %d, want 2", got)
		}
	})
}

// TestCallerContext: a caller whose context ends first gets its cause at
// once; the run goes on for the other callers.
func TestCallerContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var runs atomic.Int64
		c := health.NewChecker()
		c.MustRegister("db", func(ctx context.Context) error {
			runs.Add(1)
			select {
			case <-time.After(3 * time.Second):
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
		start := time.Now()
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		s, _ := c.Check(ctx, "db")
		if got, want := time.Since(start), time.Second; got != want {
			t.Errorf("elapsed = %v, want %v", got, want)
		}
		if s.Healthy || !errors.Is(s.Error, context.DeadlineExceeded) || errors.Is(s.Error, health.ErrTimeout) {
			t.Errorf("status = %+v, want failed with the caller's DeadlineExceeded, not ErrTimeout", s)
		}

		s, _ = c.Check(t.Context(), "db")
		if got, want := time.Since(start), 3*time.Second; got != want {
			t.Errorf("second caller returned at %v, want %v", got, want)
		}
		if !s.Healthy {
			t.Errorf("second caller: Healthy = false (%v), want true", s.Error)
		}
		if got := runs.Load(); got != 1 {
			t.Errorf("runs = %d, want 1", got)
		}
	})
}

func TestPanickingCheck(t *testing.T) {
	sentinel := errors.New("sentinel")
	tests := []struct {
		name      string
		value     any
		wantCause error
	}{
		{name: "string", value: "boom"},
		{name: "error", value: sentinel, wantCause: sentinel},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var runs atomic.Int64
				c := health.NewChecker()
				c.MustRegister("bad", func(context.Context) error {
					runs.Add(1)
					panic(tt.value)
				})
				c.MustRegister("good", ok)
				for i := range 2 {
					got := c.CheckAll(t.Context())
					s := got["bad"]
					if s.Healthy || s.Result != health.Fail {
						t.Errorf("bad: Healthy = %v, Result = %q, want false, fail", s.Healthy, s.Result)
					}
					pe, isPanic := errors.AsType[*health.PanicError](s.Error)
					if !isPanic || !errors.Is(s.Error, health.ErrPanic) {
						t.Fatalf("Error = %v, want a *PanicError", s.Error)
					}
					if pe.Check != "bad" || pe.Value != tt.value || len(pe.Stack) == 0 {
						t.Errorf("PanicError = {%q, %v, %d-byte stack}, want {bad, %v, a stack}", pe.Check, pe.Value, len(pe.Stack), tt.value)
					}
					if tt.wantCause != nil && !errors.Is(s.Error, tt.wantCause) {
						t.Errorf("Error = %v, want it to wrap %v", s.Error, tt.wantCause)
					}
					if !got["good"].Healthy {
						t.Errorf("good: Healthy = false")
					}
					if got := runs.Load(); got != int64(i+1) {
						t.Errorf("runs = %d, want %d", got, i+1)
					}
				}
			})
		})
	}
}

func TestRequire(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name      string
		names     []string
		wantNames []string
		wantCause error
	}{
		{name: "all critical healthy", names: nil, wantNames: nil},
		{name: "named healthy", names: []string{"chromadb"}, wantNames: nil},
		{name: "degraded is healthy", names: []string{"lagging"}, wantNames: nil},
		{name: "one down", names: []string{"chromadb", "embedding_api"}, wantNames: []string{"embedding_api"}, wantCause: boom},
		{name: "order kept", names: []string{"slow", "chromadb", "embedding_api"}, wantNames: []string{"slow", "embedding_api"}, wantCause: health.ErrTimeout},
		{name: "optional named", names: []string{"cache"}, wantNames: []string{"cache"}, wantCause: boom},
		{name: "unknown", names: []string{"nope"}, wantNames: []string{"nope"}, wantCause: health.ErrUnknownCheck},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := health.NewChecker()
				c.MustRegister("chromadb", ok)
				c.MustRegister("lagging", func(context.Context) error { return health.Degraded(nil) })
				c.MustRegister("embedding_api", func(context.Context) error { return boom }, health.Optional(), health.Critical())
				c.MustRegister("slow", sleeper(time.Hour, nil), health.Optional())
				c.MustRegister("cache", func(context.Context) error { return boom }, health.Optional())
				if tt.name == "all critical healthy" {
					c = health.NewChecker()
					c.MustRegister("chromadb", ok)
					c.MustRegister("cache", func(context.Context) error { return boom }, health.Optional())
				}
				err := c.Require(t.Context(), tt.names...)
				if tt.wantNames == nil {
					if err != nil {
						t.Fatalf("Require = %v, want nil", err)
					}
					return
				}
				if !errors.Is(err, health.ErrUnavailable) {
					t.Fatalf("Require = %v, want ErrUnavailable", err)
				}
				ue, _ := errors.AsType[*health.UnavailableError](err)
				if fmt.Sprint(ue.Names) != fmt.Sprint(tt.wantNames) {
					t.Errorf("Names = %v, want %v", ue.Names, tt.wantNames)
				}
				if len(ue.Statuses) != len(ue.Names) {
					t.Errorf("len(Statuses) = %d, want %d", len(ue.Statuses), len(ue.Names))
				}
				if !errors.Is(err, tt.wantCause) {
					t.Errorf("Require = %v, want it to match %v", err, tt.wantCause)
				}
				for _, n := range tt.wantNames {
					if !strings.Contains(err.Error(), n) {
						t.Errorf("message %q does not name %s", err, n)
					}
				}
			})
		})
	}
}

// TestRequireNoCritical: with no names and no critical checks, nothing is
// required.
func TestRequireNoCritical(t *testing.T) {
	c := health.NewChecker()
	if err := c.Require(t.Context()); err != nil {
		t.Errorf("Require on empty checker = %v, want nil", err)
	}
	c.MustRegister("cache", func(context.Context) error { return errors.New("down") }, health.Optional())
	if err := c.Require(t.Context()); err != nil {
		t.Errorf("Require with only optional checks = %v, want nil", err)
	}
}
