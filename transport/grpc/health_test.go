package grpc_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/resiliencekit/resilience/health"
	"github.com/resiliencekit/resilience/middleware"
	resiliencegrpc "github.com/resiliencekit/resilience/transport/grpc"
)

// serveHealth serves hs on a real gRPC server on 127.0.0.1 and returns a
// health client for it; both end with the test.
func serveHealth(t *testing.T, hs *resiliencegrpc.HealthServer) healthpb.HealthClient {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	resiliencegrpc.RegisterHealth(srv, hs)
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		srv.Stop()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = conn.Close()
		srv.Stop()
		<-done
	})
	return healthpb.NewHealthClient(conn)
}

// flag is a check backed by an atomic: healthy unless failing is set.
type flag struct{ failing atomic.Bool }

func (f *flag) check(context.Context) error {
	if f.failing.Load() {
		return errors.New("down")
	}
	return nil
}

func testChecker(t *testing.T, disk *flag) *health.Checker {
	t.Helper()
	c := health.NewChecker(health.Config{})
	c.MustRegister(health.Check{Name: "db", Func: func(context.Context) error { return nil }})
	c.MustRegister(health.Check{Name: "cache", Func: func(context.Context) error { return health.Degraded(errors.New("lagging")) }})
	c.MustRegister(health.Check{Name: "optional", Func: func(context.Context) error { return errors.New("gone") }, Optional: true})
	c.MustRegister(health.Check{Name: "disk", Func: disk.check})
	return c
}

// TestHealthServerCheck asks a real server for the whole report and for
// single checks: a warning serves, a failed critical check fails the
// whole, a failed optional check fails only itself, an unknown name is
// NOT_FOUND.
func TestHealthServerCheck(t *testing.T) {
	disk := &flag{}
	client := serveHealth(t, resiliencegrpc.NewHealthServer(testChecker(t, disk), resiliencegrpc.HealthConfig{}))
	const (
		serving    = healthpb.HealthCheckResponse_SERVING
		notServing = healthpb.HealthCheckResponse_NOT_SERVING
	)
	for _, tt := range []struct {
		name     string
		service  string
		diskDown bool
		want     healthpb.HealthCheckResponse_ServingStatus
		code     codes.Code
	}{
		{name: "whole, healthy (warn and optional fail serve)", service: "", want: serving},
		{name: "whole, a critical check fails", service: "", diskDown: true, want: notServing},
		{name: "named pass", service: "db", want: serving},
		{name: "named warn", service: "cache", want: serving},
		{name: "named fail", service: "disk", diskDown: true, want: notServing},
		{name: "named optional fail", service: "optional", want: notServing},
		{name: "named pass while another fails", service: "db", diskDown: true, want: serving},
		{name: "unknown", service: "nope", code: codes.NotFound},
	} {
		t.Run(tt.name, func(t *testing.T) {
			disk.failing.Store(tt.diskDown)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			resp, err := client.Check(ctx, &healthpb.HealthCheckRequest{Service: tt.service})
			if tt.code != codes.OK {
				if status.Code(err) != tt.code {
					t.Fatalf("err = %v, want code %v", err, tt.code)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if resp.GetStatus() != tt.want {
				t.Errorf("status %v, want %v", resp.GetStatus(), tt.want)
			}
		})
	}
}

// TestHealthServerCheckDeadline: a check slower than the caller's deadline
// does not hold the call; the caller gets DEADLINE_EXCEEDED at its deadline.
func TestHealthServerCheckDeadline(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	c := health.NewChecker(health.Config{})
	c.MustRegister(health.Check{Name: "slow", Timeout: time.Minute, Func: func(ctx context.Context) error {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-release:
			return nil
		}
	}})
	client := serveHealth(t, resiliencegrpc.NewHealthServer(c, resiliencegrpc.HealthConfig{}))
	for _, service := range []string{"", "slow"} {
		t.Run("service "+service, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
			defer cancel()
			start := time.Now()
			_, err := client.Check(ctx, &healthpb.HealthCheckRequest{Service: service})
			if status.Code(err) != codes.DeadlineExceeded {
				t.Errorf("err = %v, want DEADLINE_EXCEEDED", err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("Check took %v", d)
			}
		})
	}
}

// TestHealthServerList lists every check and the whole report under "".
func TestHealthServerList(t *testing.T) {
	disk := &flag{}
	disk.failing.Store(true)
	client := serveHealth(t, resiliencegrpc.NewHealthServer(testChecker(t, disk), resiliencegrpc.HealthConfig{}))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := client.List(ctx, &healthpb.HealthListRequest{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]healthpb.HealthCheckResponse_ServingStatus{
		"":         healthpb.HealthCheckResponse_NOT_SERVING,
		"db":       healthpb.HealthCheckResponse_SERVING,
		"cache":    healthpb.HealthCheckResponse_SERVING,
		"optional": healthpb.HealthCheckResponse_NOT_SERVING,
		"disk":     healthpb.HealthCheckResponse_NOT_SERVING,
	}
	if len(resp.GetStatuses()) != len(want) {
		t.Errorf("List has %d entries, want %d: %v", len(resp.GetStatuses()), len(want), resp.GetStatuses())
	}
	for name, st := range want {
		if got := resp.GetStatuses()[name].GetStatus(); got != st {
			t.Errorf("List[%q] = %v, want %v", name, got, st)
		}
	}
}

// TestHealthServerWatch watches over a real server, polling every
// millisecond: the current status at once, a message for each change and
// none in between, SERVICE_UNKNOWN for a name not registered (until it is),
// and a clean end when the client cancels.
func TestHealthServerWatch(t *testing.T) {
	const (
		serving    = healthpb.HealthCheckResponse_SERVING
		notServing = healthpb.HealthCheckResponse_NOT_SERVING
		unknown    = healthpb.HealthCheckResponse_SERVICE_UNKNOWN
	)
	for _, tt := range []struct {
		name    string
		service string
	}{
		{name: "whole", service: ""},
		{name: "named", service: "disk"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			disk := &flag{}
			c := testChecker(t, disk)
			client := serveHealth(t, resiliencegrpc.NewHealthServer(c, resiliencegrpc.HealthConfig{WatchInterval: time.Millisecond}))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			stream, err := client.Watch(ctx, &healthpb.HealthCheckRequest{Service: tt.service})
			if err != nil {
				t.Fatal(err)
			}
			recv := func(want healthpb.HealthCheckResponse_ServingStatus) {
				t.Helper()
				resp, err := stream.Recv()
				if err != nil {
					t.Fatalf("Recv: %v, want %v", err, want)
				}
				if resp.GetStatus() != want {
					t.Fatalf("Recv %v, want %v", resp.GetStatus(), want)
				}
			}
			recv(serving)
			disk.failing.Store(true)
			recv(notServing) // a repeated SERVING would show here
			disk.failing.Store(false)
			recv(serving)
			cancel()
			if _, err := stream.Recv(); status.Code(err) != codes.Canceled {
				t.Errorf("Recv after cancel: %v, want CANCELLED", err)
			}
		})
	}
	t.Run("unknown, then registered", func(t *testing.T) {
		c := health.NewChecker(health.Config{})
		client := serveHealth(t, resiliencegrpc.NewHealthServer(c, resiliencegrpc.HealthConfig{WatchInterval: time.Millisecond}))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		stream, err := client.Watch(ctx, &healthpb.HealthCheckRequest{Service: "late"})
		if err != nil {
			t.Fatal(err)
		}
		if resp, err := stream.Recv(); err != nil || resp.GetStatus() != unknown {
			t.Fatalf("Recv = %v, %v; want SERVICE_UNKNOWN", resp, err)
		}
		c.MustRegister(health.Check{Name: "late", Func: func(context.Context) error { return nil }})
		if resp, err := stream.Recv(); err != nil || resp.GetStatus() != serving {
			t.Fatalf("Recv = %v, %v; want SERVING once registered", resp, err)
		}
	})
}

// fakeWatch is a Watch stream without a network, for synctest.
type fakeWatch struct {
	grpc.ServerStream
	ctx  context.Context
	mu   sync.Mutex
	sent []healthpb.HealthCheckResponse_ServingStatus
}

func (f *fakeWatch) Context() context.Context    { return f.ctx }
func (f *fakeWatch) SetHeader(metadata.MD) error { return nil }
func (f *fakeWatch) Send(m *healthpb.HealthCheckResponse) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent = append(f.sent, m.GetStatus())
	return nil
}

func (f *fakeWatch) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.sent)
}

// TestHealthServerWatchInterval checks the default interval on a fake
// clock: a change is seen at the next poll, 5s on, not before.
func TestHealthServerWatchInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		disk := &flag{}
		hs := resiliencegrpc.NewHealthServer(testChecker(t, disk), resiliencegrpc.HealthConfig{})
		ctx, cancel := context.WithCancel(context.Background())
		stream := &fakeWatch{ctx: ctx}
		done := make(chan error, 1)
		go func() { done <- hs.Watch(&healthpb.HealthCheckRequest{Service: "disk"}, stream) }()
		synctest.Wait()
		if stream.count() != 1 {
			t.Fatalf("sent %d messages at once, want 1", stream.count())
		}
		disk.failing.Store(true)
		time.Sleep(resiliencegrpc.DefaultWatchInterval - time.Millisecond)
		synctest.Wait()
		if stream.count() != 1 {
			t.Fatalf("sent %d messages before the interval, want 1", stream.count())
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if stream.count() != 2 || stream.sent[1] != healthpb.HealthCheckResponse_NOT_SERVING {
			t.Fatalf("sent %v after the interval, want [SERVING NOT_SERVING]", stream.sent)
		}
		time.Sleep(10 * resiliencegrpc.DefaultWatchInterval)
		synctest.Wait()
		if stream.count() != 2 {
			t.Fatalf("sent %v with no change, want 2 messages", stream.sent)
		}
		cancel()
		if err := <-done; status.Code(err) != codes.Canceled {
			t.Errorf("Watch = %v, want CANCELLED", err)
		}
	})
}

// TestNewHealthServerInvalid: a nil checker and a negative interval panic
// with an error matching ErrInvalidConfig that says what is wrong.
func TestNewHealthServerInvalid(t *testing.T) {
	c := health.NewChecker(health.Config{})
	for _, tt := range []struct {
		name    string
		checker *health.Checker
		cfg     resiliencegrpc.HealthConfig
		mention string
	}{
		{name: "nil checker", cfg: resiliencegrpc.HealthConfig{}, mention: "nil checker"},
		{name: "negative interval", checker: c, cfg: resiliencegrpc.HealthConfig{WatchInterval: -time.Second}, mention: "WatchInterval"},
		{name: "busy-loop interval", checker: c, cfg: resiliencegrpc.HealthConfig{WatchInterval: time.Nanosecond}, mention: "WatchInterval"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				err, _ := recover().(error)
				if !errors.Is(err, middleware.ErrInvalidConfig) || !strings.Contains(err.Error(), tt.mention) {
					t.Errorf("panic %v, want ErrInvalidConfig mentioning %q", err, tt.mention)
				}
			}()
			resiliencegrpc.NewHealthServer(tt.checker, tt.cfg)
		})
	}
	if err := (resiliencegrpc.HealthConfig{WatchInterval: -1}).Validate(); !errors.Is(err, middleware.ErrInvalidConfig) {
		t.Errorf("Validate = %v, want ErrInvalidConfig", err)
	}
	if err := (resiliencegrpc.HealthConfig{}).Validate(); err != nil {
		t.Errorf("Validate of the zero config = %v", err)
	}
}
