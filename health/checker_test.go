package health_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resiliencekit/resilience/health"
	"github.com/resiliencekit/resilience/middleware"
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

// TestRegisterErrors: a bad Check is refused, registers nothing, and its
// error names the check (and, for a config value, the field).
func TestRegisterErrors(t *testing.T) {
	tests := []struct {
		name       string
		check      health.Check
		want       error
		wantInMsg  []string
		registered bool // the name is registered afterwards
	}{
		{name: "empty name", check: health.Check{Func: ok}, want: health.ErrEmptyName},
		{name: "nil func", check: health.Check{Name: "db"}, want: health.ErrNilCheck, wantInMsg: []string{`"db"`}},
		{name: "nil bool func", check: health.Check{Name: "fs", Func: health.Bool(nil)}, want: health.ErrNilCheck, wantInMsg: []string{`"fs"`}},
		{name: "nil bool ctx func", check: health.Check{Name: "fs", Func: health.BoolCtx(nil)}, want: health.ErrNilCheck, wantInMsg: []string{`"fs"`}},
		{name: "duplicate", check: health.Check{Name: "taken", Func: ok}, want: health.ErrDuplicateCheck, wantInMsg: []string{`"taken"`}, registered: true},
		{name: "negative timeout", check: health.Check{Name: "slow", Func: ok, Timeout: -time.Second}, want: middleware.ErrInvalidConfig, wantInMsg: []string{`"slow"`, "Check.Timeout", "-1s"}},
		{name: "negative timeout optional", check: health.Check{Name: "slow", Func: ok, Timeout: -time.Nanosecond, Optional: true}, want: middleware.ErrInvalidConfig, wantInMsg: []string{`"slow"`, "Check.Timeout", "-1ns"}},
		{name: "zero timeout is the default", check: health.Check{Name: "fine", Func: ok}, registered: true},
		{name: "valid", check: health.Check{Name: "fine", Func: ok, Timeout: time.Second, Optional: true}, registered: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := health.NewChecker(health.Config{})
			c.MustRegister(health.Check{Name: "taken", Func: ok})
			err := c.Register(tt.check)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("Register(%+v) = %v, want %v", tt.check, err, tt.want)
			}
			for _, want := range tt.wantInMsg {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %s", err, want)
				}
			}
			if tt.check.Name == "" {
				return
			}
			_, checkErr := c.Check(t.Context(), tt.check.Name)
			if registered := checkErr == nil; registered != tt.registered {
				t.Errorf("registered = %v, want %v", registered, tt.registered)
			}
		})
	}
}

// TestMustRegisterPanics: MustRegister panics with Register's error.
func TestMustRegisterPanics(t *testing.T) {
	tests := []struct {
		name  string
		check health.Check
		want  error
	}{
		{name: "nil func", check: health.Check{Name: "db"}, want: health.ErrNilCheck},
		{name: "empty name", check: health.Check{Func: ok}, want: health.ErrEmptyName},
		{name: "negative timeout", check: health.Check{Name: "db", Func: ok, Timeout: -1}, want: middleware.ErrInvalidConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := health.NewChecker(health.Config{})
			defer func() {
				err, _ := recover().(error)
				if !errors.Is(err, tt.want) {
					t.Errorf("panic = %v, want %v", err, tt.want)
				}
			}()
			c.MustRegister(tt.check)
		})
	}
}

// TestNewCheckerInvalidConfig: NewChecker refuses every value out of range
// with an error naming the field and the value, never falling back to a
// default; several bad fields are all reported at once.
func TestNewCheckerInvalidConfig(t *testing.T) {
	tests := []struct {
		name   string
		cfg    health.Config
		fields []string // each must appear in the message
	}{
		{name: "negative timeout", cfg: health.Config{DefaultTimeout: -time.Second}, fields: []string{"Config.DefaultTimeout", "-1s"}},
		{name: "negative jitter", cfg: health.Config{Jitter: -0.1}, fields: []string{"Config.Jitter", "-0.1"}},
		{name: "jitter one", cfg: health.Config{Jitter: 1}, fields: []string{"Config.Jitter", "= 1,"}},
		{name: "jitter above one", cfg: health.Config{Jitter: 2.5}, fields: []string{"Config.Jitter", "2.5"}},
		{name: "jitter NaN", cfg: health.Config{Jitter: math.NaN()}, fields: []string{"Config.Jitter", "NaN"}},
		{name: "jitter +Inf", cfg: health.Config{Jitter: math.Inf(1)}, fields: []string{"Config.Jitter", "+Inf"}},
		{name: "jitter and DisableJitter", cfg: health.Config{Jitter: 0.2, DisableJitter: true}, fields: []string{"Config.Jitter", "Config.DisableJitter"}},
		{name: "negative max age", cfg: health.Config{MaxAge: -time.Second}, fields: []string{"Config.MaxAge", "-1s"}},
		{name: "all at once", cfg: health.Config{DefaultTimeout: -1, Jitter: -1, MaxAge: -1}, fields: []string{"Config.DefaultTimeout", "Config.Jitter", "Config.MaxAge"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				err, _ := recover().(error)
				if !errors.Is(err, middleware.ErrInvalidConfig) {
					t.Fatalf("panic = %v, want ErrInvalidConfig", err)
				}
				for _, f := range tt.fields {
					if !strings.Contains(err.Error(), f) {
						t.Errorf("panic %q does not say %s", err, f)
					}
				}
			}()
			health.NewChecker(tt.cfg)
		})
	}
}

// TestNewCheckerValidConfig: the zero Config and every value in range are
// accepted.
func TestNewCheckerValidConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  health.Config
	}{
		{name: "zero"},
		{name: "every field", cfg: health.Config{DefaultTimeout: time.Second, Jitter: 0.5, MaxAge: time.Minute, Observer: func(health.Status) {}}},
		{name: "smallest jitter", cfg: health.Config{Jitter: math.SmallestNonzeroFloat64}},
		{name: "largest jitter", cfg: health.Config{Jitter: math.Nextafter(1, 0)}},
		{name: "jitter disabled", cfg: health.Config{DisableJitter: true}},
		{name: "smallest timeout", cfg: health.Config{DefaultTimeout: time.Nanosecond}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := health.NewChecker(tt.cfg)
				c.MustRegister(health.Check{Name: "db", Func: ok}) // returns before fake time moves
				if !c.IsHealthy(t.Context(), "db") {
					t.Errorf("IsHealthy = false, want true")
				}
			})
		})
	}
}

func TestCheckResults(t *testing.T) {
	boom := errors.New("connection refused")
	tests := []struct {
		name        string
		fn          health.CheckFunc
		optional    bool
		wantResult  health.Result
		wantHealthy bool
		wantErr     error
		wantCrit    bool
	}{
		{name: "pass", fn: ok, wantResult: health.Pass, wantHealthy: true, wantCrit: true},
		{name: "error", fn: func(context.Context) error { return boom }, wantResult: health.Fail, wantErr: boom, wantCrit: true},
		{name: "optional error", fn: func(context.Context) error { return boom }, optional: true, wantResult: health.Fail, wantErr: boom},
		{name: "optional pass", fn: ok, optional: true, wantResult: health.Pass, wantHealthy: true},
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
				c := health.NewChecker(health.Config{})
				c.MustRegister(health.Check{Name: "svc", Func: tt.fn, Optional: tt.optional})
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
	c := health.NewChecker(health.Config{})
	c.MustRegister(health.Check{Name: "db", Func: ok})
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
		checker health.Config
		timeout time.Duration // Check.Timeout
		want    time.Duration
	}{
		{name: "default 5s", want: 5 * time.Second},
		{name: "checker default", checker: health.Config{DefaultTimeout: time.Second}, want: time.Second},
		{name: "per check", timeout: 250 * time.Millisecond, want: 250 * time.Millisecond},
		{name: "per check beats checker", checker: health.Config{DefaultTimeout: time.Second}, timeout: 3 * time.Second, want: 3 * time.Second},
		{name: "one nanosecond", timeout: time.Nanosecond, want: time.Nanosecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				release := make(chan struct{})
				defer close(release)
				var runs atomic.Int64
				c := health.NewChecker(tt.checker)
				c.MustRegister(health.Check{Name: "hung", Func: hung(release, &runs), Timeout: tt.timeout})

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
				if !errors.Is(s.Error, middleware.ErrTimeout) || !errors.Is(s.Error, context.DeadlineExceeded) {
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
		c := health.NewChecker(health.Config{})
		c.MustRegister(health.Check{Name: "slow", Func: sleeper(time.Hour, nil), Timeout: 2 * time.Second})
		start := time.Now()
		s, _ := c.Check(t.Context(), "slow")
		if got, want := time.Since(start), 2*time.Second; got != want {
			t.Errorf("elapsed = %v, want %v", got, want)
		}
		if !errors.Is(s.Error, middleware.ErrTimeout) {
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
				c := health.NewChecker(health.Config{})
				for i, d := range tt.delays {
					c.MustRegister(health.Check{Name: fmt.Sprintf("c%d", i), Func: sleeper(d, nil)})
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
				c := health.NewChecker(health.Config{})
				c.MustRegister(health.Check{Name: "hung", Func: hung(release, &runs), Timeout: time.Second})

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
		c := health.NewChecker(health.Config{})
		c.MustRegister(health.Check{Name: "db", Func: func(ctx context.Context) error {
			runs.Add(1)
			time.Sleep(2 * time.Second)
			return nil
		}})
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
		c := health.NewChecker(health.Config{})
		c.MustRegister(health.Check{Name: "db", Func: func(ctx context.Context) error {
			runs.Add(1)
			select {
			case <-time.After(3 * time.Second):
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}})
		start := time.Now()
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		s, _ := c.Check(ctx, "db")
		if got, want := time.Since(start), time.Second; got != want {
			t.Errorf("elapsed = %v, want %v", got, want)
		}
		if s.Healthy || !errors.Is(s.Error, context.DeadlineExceeded) || errors.Is(s.Error, middleware.ErrTimeout) {
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

// TestPanickingCheck: a panicking check fails with an error that names the
// check and wraps the library's one *middleware.PanicError, whatever the
// panic value; a Degraded error as the value is no warning, and a
// *middleware.PanicError re-panicked from inside the check is kept as is.
func TestPanickingCheck(t *testing.T) {
	sentinel := errors.New("sentinel")
	inner := &middleware.PanicError{Value: "inner boom", Stack: []byte("inner stack")}
	tests := []struct {
		name      string
		value     any
		wantValue any
		wantCause error
		wantMsg   string
	}{
		{name: "string", value: "boom", wantValue: "boom", wantMsg: `health: check "bad": middleware: panic: boom`},
		{name: "error", value: sentinel, wantValue: sentinel, wantCause: sentinel, wantMsg: `health: check "bad": middleware: panic: sentinel`},
		{name: "degraded error", value: health.Degraded(sentinel), wantValue: health.Degraded(sentinel), wantCause: sentinel},
		{name: "re-panicked PanicError", value: inner, wantValue: "inner boom", wantMsg: `health: check "bad": middleware: panic: inner boom`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var runs atomic.Int64
				c := health.NewChecker(health.Config{})
				c.MustRegister(health.Check{Name: "bad", Func: func(context.Context) error {
					runs.Add(1)
					panic(tt.value)
				}})
				c.MustRegister(health.Check{Name: "good", Func: ok})
				for i := range 2 {
					got := c.CheckAll(t.Context())
					s := got["bad"]
					if s.Healthy || s.Result != health.Fail {
						t.Errorf("bad: Healthy = %v, Result = %q, want false, fail", s.Healthy, s.Result)
					}
					pe, isPanic := errors.AsType[*middleware.PanicError](s.Error)
					if !isPanic {
						t.Fatalf("Error = %v, want a *middleware.PanicError", s.Error)
					}
					if fmt.Sprint(pe.Value) != fmt.Sprint(tt.wantValue) || len(pe.Stack) == 0 {
						t.Errorf("PanicError = {%v, %d-byte stack}, want {%v, a stack}", pe.Value, len(pe.Stack), tt.wantValue)
					}
					if tt.value == inner && pe != inner {
						t.Errorf("PanicError = %p, want the re-panicked %p", pe, inner)
					}
					if !strings.Contains(s.Error.Error(), `"bad"`) {
						t.Errorf("Error = %q, want it to name the check", s.Error)
					}
					if tt.wantMsg != "" && s.Error.Error() != tt.wantMsg {
						t.Errorf("Error = %q, want %q", s.Error, tt.wantMsg)
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
		{name: "order kept", names: []string{"slow", "chromadb", "embedding_api"}, wantNames: []string{"slow", "embedding_api"}, wantCause: middleware.ErrTimeout},
		{name: "optional named", names: []string{"cache"}, wantNames: []string{"cache"}, wantCause: boom},
		{name: "unknown", names: []string{"nope"}, wantNames: []string{"nope"}, wantCause: health.ErrUnknownCheck},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := health.NewChecker(health.Config{})
				c.MustRegister(health.Check{Name: "chromadb", Func: ok})
				c.MustRegister(health.Check{Name: "lagging", Func: func(context.Context) error { return health.Degraded(nil) }})
				c.MustRegister(health.Check{Name: "embedding_api", Func: func(context.Context) error { return boom }})
				c.MustRegister(health.Check{Name: "slow", Func: sleeper(time.Hour, nil), Optional: true})
				c.MustRegister(health.Check{Name: "cache", Func: func(context.Context) error { return boom }, Optional: true})
				if tt.name == "all critical healthy" {
					c = health.NewChecker(health.Config{})
					c.MustRegister(health.Check{Name: "chromadb", Func: ok})
					c.MustRegister(health.Check{Name: "cache", Func: func(context.Context) error { return boom }, Optional: true})
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
	c := health.NewChecker(health.Config{})
	if err := c.Require(t.Context()); err != nil {
		t.Errorf("Require on empty checker = %v, want nil", err)
	}
	c.MustRegister(health.Check{Name: "cache", Func: func(context.Context) error { return errors.New("down") }, Optional: true})
	if err := c.Require(t.Context()); err != nil {
		t.Errorf("Require with only optional checks = %v, want nil", err)
	}
}

// TestCheckTimeoutCause: the check's own timeout is the library's own
// deadline: the check sees it as its context's cause, matching
// middleware.ErrTimeout, and is reported with it. A deadline of the check's
// making, or the caller's, is not the check's timeout: its error is the
// check's own and does not match middleware.ErrTimeout.
func TestCheckTimeoutCause(t *testing.T) {
	tests := []struct {
		name        string
		fn          func(ctx context.Context, cause *error) error
		wantElapsed time.Duration
		wantTimeout bool // Status.Error and the cause seen match middleware.ErrTimeout
	}{
		{name: "cooperative check cut by its timeout", wantElapsed: 2 * time.Second, wantTimeout: true,
			fn: func(ctx context.Context, cause *error) error {
				<-ctx.Done()
				*cause = context.Cause(ctx)
				return ctx.Err()
			}},
		{name: "check returns the cause", wantElapsed: 2 * time.Second, wantTimeout: true,
			fn: func(ctx context.Context, cause *error) error {
				<-ctx.Done()
				*cause = context.Cause(ctx)
				return context.Cause(ctx)
			}},
		{name: "check's own shorter deadline", wantElapsed: 500 * time.Millisecond,
			fn: func(ctx context.Context, cause *error) error {
				ctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
				defer cancel()
				<-ctx.Done()
				*cause = context.Cause(ctx)
				return ctx.Err()
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var cause error
				c := health.NewChecker(health.Config{})
				c.MustRegister(health.Check{Name: "db", Timeout: 2 * time.Second, Func: func(ctx context.Context) error { return tt.fn(ctx, &cause) }})
				start := time.Now()
				s, _ := c.Check(t.Context(), "db")
				if got := time.Since(start); got != tt.wantElapsed {
					t.Errorf("elapsed = %v, want %v", got, tt.wantElapsed)
				}
				synctest.Wait()
				if got := errors.Is(cause, middleware.ErrTimeout); got != tt.wantTimeout {
					t.Errorf("context.Cause seen by the check = %v; matches middleware.ErrTimeout = %v, want %v", cause, got, tt.wantTimeout)
				}
				if got := errors.Is(s.Error, middleware.ErrTimeout); got != tt.wantTimeout {
					t.Errorf("Status.Error = %v; matches middleware.ErrTimeout = %v, want %v", s.Error, got, tt.wantTimeout)
				}
				if !errors.Is(s.Error, context.DeadlineExceeded) || s.Healthy {
					t.Errorf("status = %v %v, want unhealthy with DeadlineExceeded", s.Healthy, s.Error)
				}
				if tt.wantTimeout && !strings.Contains(s.Error.Error(), `"db"`) {
					t.Errorf("Status.Error = %q, want it to name the check", s.Error)
				}
			})
		})
	}
}

// TestCallerDeadlineIsNotCheckTimeout: a caller whose own deadline ends
// before the check's timeout is never told that the check timed out: its
// status matches its own deadline and ErrNotChecked, not
// middleware.ErrTimeout, and the run's own result is still the check's.
func TestCallerDeadlineIsNotCheckTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var observed []error
		var mu sync.Mutex
		c := health.NewChecker(health.Config{Observer: func(s health.Status) {
			mu.Lock()
			observed = append(observed, s.Error)
			mu.Unlock()
		}})
		c.MustRegister(health.Check{Name: "db", Timeout: 2 * time.Second, Func: sleeper(time.Hour, nil)})
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		s, _ := c.Check(ctx, "db")
		if errors.Is(s.Error, middleware.ErrTimeout) || !errors.Is(s.Error, health.ErrNotChecked) || !errors.Is(s.Error, context.DeadlineExceeded) {
			t.Errorf("caller's status error = %v, want ErrNotChecked and the caller's DeadlineExceeded, not middleware.ErrTimeout", s.Error)
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		if len(observed) != 1 || !errors.Is(observed[0], middleware.ErrTimeout) {
			t.Errorf("observed %v, want one run cut by its own timeout", observed)
		}
	})
}
