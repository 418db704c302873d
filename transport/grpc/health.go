package grpc

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/resiliencekit/resilience/health"
	"github.com/resiliencekit/resilience/middleware"
)

// DefaultWatchInterval is how often a [HealthServer]'s Watch asks the
// checker again when [HealthConfig].WatchInterval is 0.
const DefaultWatchInterval = 5 * time.Second

// MinWatchInterval is the shortest [HealthConfig].WatchInterval accepted:
// a shorter one would make every Watch a busy loop over the checker.
const MinWatchInterval = time.Millisecond

// HealthConfig configures a [HealthServer]. The zero value is the defaults.
type HealthConfig struct {
	// WatchInterval is how often Watch asks the checker for the watched
	// status, to push a new message when it changes. Default (0):
	// [DefaultWatchInterval], 5s; otherwise at least [MinWatchInterval]. After
	// health.Checker.Start the checker answers from its cache, so a short
	// interval costs no probe of a dependency.
	WatchInterval time.Duration
}

// Validate reports a problem with cfg as a *middleware.ConfigError
// matching middleware.ErrInvalidConfig, or nil.
func (cfg HealthConfig) Validate() error {
	if cfg.WatchInterval < 0 || (cfg.WatchInterval > 0 && cfg.WatchInterval < MinWatchInterval) {
		return &middleware.ConfigError{Path: "grpc_health.watch_interval", Field: "HealthConfig.WatchInterval",
			Value: cfg.WatchInterval, Reason: fmt.Sprintf("must be 0 (the default, %v) or at least %v", DefaultWatchInterval, MinWatchInterval)}
	}
	return nil
}

// HealthServer serves a health.Checker as the standard gRPC health service,
// grpc.health.v1.Health: it implements grpc_health_v1.HealthServer. The
// empty service name is the whole report, SERVING unless a critical check
// fails (a warning serves); any other name is the check registered under
// it, SERVING when it passes or warns and NOT_SERVING when it fails. Make
// one with [NewHealthServer] and register it with [RegisterHealth].
type HealthServer struct {
	healthpb.UnimplementedHealthServer
	checker  *health.Checker
	interval time.Duration
}

var _ healthpb.HealthServer = (*HealthServer)(nil)

// NewHealthServer returns a HealthServer for c, configured by cfg. It
// panics with an error matching middleware.ErrInvalidConfig when c is nil
// or cfg is not valid.
func NewHealthServer(c *health.Checker, cfg HealthConfig) *HealthServer {
	if c == nil {
		panic(fmt.Errorf("%w: grpc.NewHealthServer: nil checker", middleware.ErrInvalidConfig))
	}
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	hs := &HealthServer{checker: c, interval: cfg.WatchInterval}
	if hs.interval == 0 {
		hs.interval = DefaultWatchInterval
	}
	return hs
}

// RegisterHealth registers hs on s as the grpc.health.v1.Health service;
// it is grpc_health_v1.RegisterHealthServer.
func RegisterHealth(s grpc.ServiceRegistrar, hs *HealthServer) {
	healthpb.RegisterHealthServer(s, hs)
}

// servingStatus returns the serving status of service, SERVICE_UNKNOWN for
// a name never registered, or ctx's status error when ctx ends first.
func (hs *HealthServer) servingStatus(ctx context.Context, service string) (healthpb.HealthCheckResponse_ServingStatus, error) {
	st := healthpb.HealthCheckResponse_SERVING
	if service == "" {
		for _, s := range hs.checker.CheckAll(ctx) {
			if s.Critical && !s.Healthy {
				st = healthpb.HealthCheckResponse_NOT_SERVING
			}
		}
	} else {
		s, err := hs.checker.Check(ctx, service)
		switch {
		case errors.Is(err, health.ErrUnknownCheck):
			st = healthpb.HealthCheckResponse_SERVICE_UNKNOWN
		case !s.Healthy:
			st = healthpb.HealthCheckResponse_NOT_SERVING
		}
	}
	// A caller that left gets no verdict: the checker reports checks it
	// did not wait for as not checked, which says nothing of them.
	if err := ctx.Err(); err != nil {
		return healthpb.HealthCheckResponse_UNKNOWN, status.FromContextError(ctx.Err()).Err()
	}
	return st, nil
}

// Check answers the status of req.Service: the whole report for "", the
// named check otherwise, and a NOT_FOUND error for a name never
// registered. The checks run under ctx, so a caller's deadline bounds the
// call; when ctx ends first the answer is ctx's status (DEADLINE_EXCEEDED
// or CANCELLED).
func (hs *HealthServer) Check(ctx context.Context, req *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	st, err := hs.servingStatus(ctx, req.GetService())
	if err != nil {
		return nil, err
	}
	if st == healthpb.HealthCheckResponse_SERVICE_UNKNOWN {
		return nil, status.Errorf(codes.NotFound, "unknown service %q", req.GetService())
	}
	return &healthpb.HealthCheckResponse{Status: st}, nil
}

// List answers the status of every check, by name, and of the whole
// report under "". It runs every check, as health.Checker.CheckAll does.
func (hs *HealthServer) List(ctx context.Context, _ *healthpb.HealthListRequest) (*healthpb.HealthListResponse, error) {
	all := hs.checker.CheckAll(ctx)
	if ctx.Err() != nil {
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	out := &healthpb.HealthListResponse{Statuses: make(map[string]*healthpb.HealthCheckResponse, len(all)+1)}
	whole := healthpb.HealthCheckResponse_SERVING
	for name, s := range all {
		st := healthpb.HealthCheckResponse_SERVING
		if !s.Healthy {
			st = healthpb.HealthCheckResponse_NOT_SERVING
			if s.Critical {
				whole = healthpb.HealthCheckResponse_NOT_SERVING
			}
		}
		out.Statuses[name] = &healthpb.HealthCheckResponse{Status: st}
	}
	out.Statuses[""] = &healthpb.HealthCheckResponse{Status: whole}
	return out, nil
}

// Watch sends the status of req.Service at once, then again each time it
// changes, asking the checker every [HealthConfig].WatchInterval. A name
// never registered is SERVICE_UNKNOWN, not an error (as the gRPC health
// protocol says), and turns to its status if a check of that name is
// registered later. Watch ends, with the context's status error, when the
// stream's context ends, or with the error of a failed send.
func (hs *HealthServer) Watch(req *healthpb.HealthCheckRequest, stream grpc.ServerStreamingServer[healthpb.HealthCheckResponse]) error {
	ctx := stream.Context()
	tick := time.NewTicker(hs.interval)
	defer tick.Stop()
	last := healthpb.HealthCheckResponse_UNKNOWN
	sent := false
	for {
		st, err := hs.servingStatus(ctx, req.GetService())
		if err != nil {
			return err
		}
		if !sent || st != last {
			if err := stream.Send(&healthpb.HealthCheckResponse{Status: st}); err != nil {
				return err
			}
			last, sent = st, true
		}
		select {
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		case <-tick.C:
		}
	}
}
