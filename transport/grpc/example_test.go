package grpc_test

import (
	"fmt"

	"github.com/resiliencekit/resilience/errclass"
	resiliencegrpc "github.com/resiliencekit/resilience/transport/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
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
