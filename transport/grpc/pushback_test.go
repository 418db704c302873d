package grpc_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/resiliencekit/resilience/middleware"
	resiliencegrpc "github.com/resiliencekit/resilience/transport/grpc"
)

func retryInfo(t *testing.T, d *durationpb.Duration) error {
	t.Helper()
	s, err := status.New(codes.Unavailable, "busy").WithDetails(&errdetails.RetryInfo{RetryDelay: d})
	if err != nil {
		t.Fatal(err)
	}
	return s.Err()
}

// TestPushback reads the server's pushback from hostile and honest values
// alike: never a panic, never more than MaxPushback, "do not retry" where
// gRPC says so.
func TestPushback(t *testing.T) {
	unavailable := status.Error(codes.Unavailable, "busy")
	for _, tt := range []struct {
		name      string
		err       error
		trailer   metadata.MD
		wantAfter time.Duration
		noRetry   bool
		none      bool // returned unchanged
	}{
		{name: "no pushback", err: unavailable, none: true},
		{name: "nil error", err: nil, trailer: metadata.Pairs(resiliencegrpc.PushbackTrailer, "100"), none: true},
		{name: "trailer 100ms", err: unavailable, trailer: metadata.Pairs(resiliencegrpc.PushbackTrailer, "100"), wantAfter: 100 * time.Millisecond},
		{name: "trailer 0", err: unavailable, trailer: metadata.Pairs(resiliencegrpc.PushbackTrailer, "0"), wantAfter: 0},
		{name: "trailer with spaces", err: unavailable, trailer: metadata.Pairs(resiliencegrpc.PushbackTrailer, " 250 "), wantAfter: 250 * time.Millisecond},
		{name: "trailer negative: do not retry", err: unavailable, trailer: metadata.Pairs(resiliencegrpc.PushbackTrailer, "-1"), noRetry: true},
		{name: "trailer malformed: do not retry", err: unavailable, trailer: metadata.Pairs(resiliencegrpc.PushbackTrailer, "soon"), noRetry: true},
		{name: "trailer a float: do not retry", err: unavailable, trailer: metadata.Pairs(resiliencegrpc.PushbackTrailer, "1.5"), noRetry: true},
		{name: "trailer huge: capped", err: unavailable, trailer: metadata.Pairs(resiliencegrpc.PushbackTrailer, "99999999999999999999999"), wantAfter: resiliencegrpc.MaxPushback},
		{name: "trailer a day: capped", err: unavailable, trailer: metadata.Pairs(resiliencegrpc.PushbackTrailer, "86400000"), wantAfter: resiliencegrpc.MaxPushback},
		{name: "trailer hugely negative: do not retry", err: unavailable, trailer: metadata.Pairs(resiliencegrpc.PushbackTrailer, "-99999999999999999999999"), noRetry: true},
		{name: "RetryInfo 2s", err: retryInfo(t, durationpb.New(2*time.Second)), wantAfter: 2 * time.Second},
		{name: "RetryInfo negative: ignored", err: retryInfo(t, durationpb.New(-time.Second)), none: true},
		{name: "RetryInfo invalid: ignored", err: retryInfo(t, &durationpb.Duration{Seconds: 1, Nanos: -5}), none: true},
		{name: "RetryInfo a century: capped", err: retryInfo(t, &durationpb.Duration{Seconds: 3e9}), wantAfter: resiliencegrpc.MaxPushback},
		{name: "RetryInfo without a delay: ignored", err: retryInfo(t, nil), none: true},
		{name: "trailer before RetryInfo", err: retryInfo(t, durationpb.New(2*time.Second)), trailer: metadata.Pairs(resiliencegrpc.PushbackTrailer, "10"), wantAfter: 10 * time.Millisecond},
		{name: "not a status error", err: errors.New("plain"), none: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := resiliencegrpc.Pushback(tt.err, tt.trailer)
			if tt.none {
				if got != tt.err {
					t.Fatalf("Pushback = %v, want the error unchanged", got)
				}
				return
			}
			var pe *resiliencegrpc.PushbackError
			if !errors.As(got, &pe) {
				t.Fatalf("Pushback = %v, want a *PushbackError", got)
			}
			if pe.NoRetry != tt.noRetry || (!tt.noRetry && pe.After != tt.wantAfter) {
				t.Errorf("got After %v NoRetry %v, want %v %v", pe.After, pe.NoRetry, tt.wantAfter, tt.noRetry)
			}
			if status.Code(got) != status.Code(tt.err) || !resiliencegrpc.Unavailable(got) {
				t.Errorf("code %v, want the call's %v", status.Code(got), status.Code(tt.err))
			}
			if tt.noRetry && pe.RetryAfter() != resiliencegrpc.MaxPushback {
				t.Errorf("RetryAfter %v on do-not-retry, want MaxPushback", pe.RetryAfter())
			}
		})
	}
}

// pushy is a health server whose Check fails with UNAVAILABLE and a
// pushback trailer until it has been called fails times.
type pushy struct {
	healthpb.UnimplementedHealthServer
	mu       sync.Mutex
	calls    []time.Time
	fails    int
	pushback string
}

func (p *pushy) Check(ctx context.Context, _ *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, time.Now())
	if len(p.calls) <= p.fails {
		_ = grpc.SetTrailer(ctx, metadata.Pairs(resiliencegrpc.PushbackTrailer, p.pushback))
		return nil, status.Error(codes.Unavailable, "overloaded")
	}
	return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}, nil
}

// TestPushbackOverLoopback runs a real gRPC server on 127.0.0.1 that
// pushes back for 20ms, and a client through UnaryClientInterceptor and
// middleware.Retry (1ms delay): the retry waits the pushback, and a
// do-not-retry pushback stops retrying at once.
func TestPushbackOverLoopback(t *testing.T) {
	for _, tt := range []struct {
		name      string
		pushback  string
		wantCalls int
		wantGap   time.Duration
	}{
		{"wait 20ms", "20", 2, 20 * time.Millisecond},
		{"do not retry", "-1", 1, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			lis, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			srv := grpc.NewServer()
			p := &pushy{fails: 1, pushback: tt.pushback}
			healthpb.RegisterHealthServer(srv, p)
			go func() { _ = srv.Serve(lis) }()
			defer srv.Stop()
			conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
				grpc.WithUnaryInterceptor(resiliencegrpc.UnaryClientInterceptor()))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			client := healthpb.NewHealthClient(conn)
			check := middleware.Retry(middleware.RetryConfig{MaxAttempts: 3, Delay: time.Millisecond, MaxDelay: time.Second, DisableJitter: true, Observer: middleware.Discard})(
				func(ctx context.Context, _ any) (any, error) {
					return client.Check(ctx, &healthpb.HealthCheckRequest{})
				})
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err = check(ctx, nil)
			p.mu.Lock()
			calls := append([]time.Time(nil), p.calls...)
			p.mu.Unlock()
			if len(calls) != tt.wantCalls {
				t.Fatalf("server saw %d calls (err %v), want %d", len(calls), err, tt.wantCalls)
			}
			if tt.wantCalls == 1 {
				if !resiliencegrpc.Unavailable(err) {
					t.Errorf("err = %v, want the server's UNAVAILABLE", err)
				}
				return
			}
			if err != nil {
				t.Errorf("err = %v, want the retry's success", err)
			}
			if gap := calls[1].Sub(calls[0]); gap < tt.wantGap {
				t.Errorf("retry came %v after the first call, want at least the pushback %v", gap, tt.wantGap)
			}
		})
	}
}
