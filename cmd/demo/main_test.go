package main

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var update = flag.Bool("update", false, "rewrite testdata/demo.golden")

// TestDemoGolden pins the demo's whole output: the story a newcomer reads
// (a retried call recovering, a timeout, a fallback value served, the
// combined stack) and the structured events behind it.
func TestDemoGolden(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), &out); err != nil {
		t.Fatalf("run: %v", err)
	}
	golden := filepath.Join("testdata", "demo.golden")
	if *update {
		if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./cmd/demo -update to create it)", err)
	}
	if !bytes.Equal(out.Bytes(), want) {
		t.Errorf("demo output differs from %s (run go test ./cmd/demo -update after checking):\n%s", golden, out.String())
	}
}
