package grpc_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/resiliencekit/resilience/errclass"
	"github.com/resiliencekit/resilience/health"
	resiliencegrpc "github.com/resiliencekit/resilience/transport/grpc"
)

// Register makes the gRPC classes usable by name in a policy file
// (policy.Config{Classes: &classes}).
func ExampleRegister() {
	var classes errclass.Set
	if err := resiliencegrpc.Register(&classes); err != nil {
		panic(err)
	}
	match, _ := classes.Lookup("grpc_unavailable")
	fmt.Println(match(status.Error(codes.Unavailable, "down")))
	fmt.Println(match(status.Error(codes.Internal, "bug")))
	// Output:
	// true
	// false
}

// NewHealthServer serves a health.Checker as the standard gRPC health
// service, which grpc_health_probe, Kubernetes' gRPC probes and load
// balancers ask.
func ExampleNewHealthServer() {
	checker := health.NewChecker(health.Config{})
	checker.MustRegister(health.Check{Name: "db", Func: func(context.Context) error { return nil }})
	checker.MustRegister(health.Check{Name: "cache", Func: func(context.Context) error { return errors.New("down") }})

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	srv := grpc.NewServer()
	resiliencegrpc.RegisterHealth(srv, resiliencegrpc.NewHealthServer(checker, resiliencegrpc.HealthConfig{}))
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()

	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	client := healthpb.NewHealthClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, service := range []string{"db", "cache", "", "nope"} {
		resp, err := client.Check(ctx, &healthpb.HealthCheckRequest{Service: service})
		if err != nil {
			fmt.Printf("%q: %v\n", service, status.Code(err))
			continue
		}
		fmt.Printf("%q: %v\n", service, resp.GetStatus())
	}
	// Output:
	// "db": SERVING
	// "cache": NOT_SERVING
	// "": NOT_SERVING
	// "nope": NotFound
}
