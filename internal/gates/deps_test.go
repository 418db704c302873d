package gates_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestMiddlewareNoGRPC: middleware, with everything it depends on, builds
// without gRPC; transport/grpc is where gRPC belongs.
func TestMiddlewareNoGRPC(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	cmd := exec.Command("go", "list", "-deps", "./middleware")
	cmd.Dir = moduleRoot(t)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps ./middleware: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if strings.HasPrefix(pkg, "google.golang.org/grpc") {
			t.Errorf("middleware depends on %s", pkg)
		}
	}
}
