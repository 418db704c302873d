package grpc_test

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	grpctransport "github.com/go-kit/kit/transport/grpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/resiliencekit/resilience/endpoint"
	"github.com/resiliencekit/resilience/middleware"
	"github.com/resiliencekit/resilience/registry"
	resiliencegrpc "github.com/resiliencekit/resilience/transport/grpc"
)

// echoService is the server side of a hand-written gRPC service, test.Echo,
// whose one method takes and returns a wrapperspb.StringValue: no code
// generation.
type echoService interface {
	Echo(context.Context, *wrapperspb.StringValue) (*wrapperspb.StringValue, error)
}

var echoDesc = grpc.ServiceDesc{
	ServiceName: "test.Echo",
	HandlerType: (*echoService)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Echo",
		Handler: func(srv any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			in := new(wrapperspb.StringValue)
			if err := dec(in); err != nil {
				return nil, err
			}
			return srv.(echoService).Echo(ctx, in)
		},
	}},
	Metadata: "test/echo.proto",
}

// kitEcho serves test.Echo with a go-kit grpctransport server, counting
// the calls that reach it.
type kitEcho struct {
	h     grpctransport.Handler
	calls atomic.Int32
}

func (k *kitEcho) Echo(ctx context.Context, in *wrapperspb.StringValue) (*wrapperspb.StringValue, error) {
	k.calls.Add(1)
	_, resp, err := k.h.ServeGRPC(ctx, in)
	if err != nil {
		return nil, err
	}
	return resp.(*wrapperspb.StringValue), nil
}

func passThrough(_ context.Context, v any) (any, error) { return v, nil }

// TestGoKitRejectionOverLoopback runs a go-kit gRPC service on 127.0.0.1
// whose endpoint is guarded by the toolkit (a rate limit, a circuit
// breaker) under ServerErrors, and a go-kit client through
// UnaryClientInterceptor and middleware.Retry: the rejection arrives with
// the status code EncodeError documents and the Retry-After the server
// sent, and the client's Retry (on UNAVAILABLE and RESOURCE_EXHAUSTED),
// whose MaxDelay is shorter than that wait, gives up at once instead of
// hammering the server.
func TestGoKitRejectionOverLoopback(t *testing.T) {
	down := errors.New("down")
	for _, tt := range []struct {
		name      string
		guard     endpoint.Middleware
		base      error // the endpoint's own error
		firstCode codes.Code
		code      codes.Code
		afterMin  time.Duration
		afterMax  time.Duration
	}{
		{
			name:      "rate limited: RESOURCE_EXHAUSTED",
			guard:     middleware.RateLimit(middleware.RateLimitConfig{Rate: 0.001, Burst: 1, Observer: middleware.Discard}),
			firstCode: codes.OK,
			code:      codes.ResourceExhausted,
			afterMin:  900 * time.Second, // a token every 1000s
			afterMax:  1000 * time.Second,
		},
		{
			name: "circuit open: UNAVAILABLE",
			guard: middleware.CircuitBreaker("echo", middleware.BreakerConfig{
				Registry: registry.New(registry.Config{}), FailureThreshold: 1, ResetTimeout: 3 * time.Second, Observer: middleware.Discard,
			}),
			base:      down,
			firstCode: codes.Unknown, // the endpoint's own plain error
			code:      codes.Unavailable,
			afterMin:  2 * time.Second, // half-open 3s after opening
			afterMax:  3 * time.Second,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			base := func(_ context.Context, req any) (any, error) {
				if tt.base != nil {
					return nil, tt.base
				}
				return wrapperspb.String("echo: " + req.(*wrapperspb.StringValue).GetValue()), nil
			}
			svc := &kitEcho{h: grpctransport.NewServer(
				endpoint.Chain(resiliencegrpc.ServerErrors(), tt.guard)(base),
				passThrough, passThrough)}

			lis, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			srv := grpc.NewServer()
			srv.RegisterService(&echoDesc, svc)
			served := make(chan struct{})
			go func() { defer close(served); _ = srv.Serve(lis) }()
			defer func() { srv.Stop(); <-served }()
			conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
				grpc.WithUnaryInterceptor(resiliencegrpc.UnaryClientInterceptor()))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()

			client := grpctransport.NewClient(conn, "test.Echo", "Echo",
				func(_ context.Context, req any) (any, error) { return wrapperspb.String(req.(string)), nil },
				func(_ context.Context, resp any) (any, error) { return resp.(*wrapperspb.StringValue).GetValue(), nil },
				&wrapperspb.StringValue{}).Endpoint()
			call := middleware.Retry(middleware.RetryConfig{
				MaxAttempts: 3, Delay: time.Millisecond, MaxDelay: 100 * time.Millisecond, DisableJitter: true,
				RetryIf: resiliencegrpc.Code(codes.Unavailable, codes.ResourceExhausted), Observer: middleware.Discard,
			})(client)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()

			resp, err := call(ctx, "hi")
			if status.Code(err) != tt.firstCode {
				t.Fatalf("first call: %v, %v; want code %v", resp, err, tt.firstCode)
			}
			if tt.firstCode == codes.OK && resp != "echo: hi" {
				t.Fatalf("first call answered %q", resp)
			}
			before := svc.calls.Load()

			_, err = call(ctx, "again")
			if status.Code(err) != tt.code {
				t.Fatalf("rejected call: %v, want code %v", err, tt.code)
			}
			var pe *resiliencegrpc.PushbackError
			if !errors.As(err, &pe) {
				t.Fatalf("rejected call: %v, want a *PushbackError", err)
			}
			if pe.NoRetry || pe.After < tt.afterMin || pe.After > tt.afterMax {
				t.Errorf("pushback %v (no retry %v), want in [%v, %v]", pe.After, pe.NoRetry, tt.afterMin, tt.afterMax)
			}
			if n := svc.calls.Load() - before; n != 1 {
				t.Errorf("the rejected call reached the server %d times, want once (Retry's MaxDelay is below the pushback)", n)
			}
		})
	}
}
