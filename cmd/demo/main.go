// Command demo shows the resilience guide's patterns at work over real HTTP,
// through go-kit transports.
//
//	go run ./cmd/demo          # the scenario: a timeline and a summary, in about 5 seconds
//	go run ./cmd/demo serve    # a live status page on http://127.0.0.1:8080/
//
// The scenario starts an "embedding API" (a go-kit HTTP service whose faults
// a chaos.Chaos injects) and calls it through a go-kit HTTP client
// endpoint wrapped in the guide's combined stack, loaded from
// testdata/policies.yaml: healthy traffic, transient failures recovered by
// retries, an outage that opens the circuit breaker, the fallback value and
// the keyword-search degradation while it is open, half-open probes and
// recovery, a slow upstream cut by the timeout, and the startup health check.
// It prints a timeline, then a summary comparing the same traffic sent
// through a bare endpoint.
//
// serve runs the same service until interrupted, with the protected
// endpoint, health and debug endpoints and a status page whose controls
// change the upstream's error rate and latency. It listens on 127.0.0.1,
// answers loopback host names only (-allow-host adds one), refuses
// cross-origin and non-JSON state changes, and caps request bodies.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := cli(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

// cli runs the command line args.
func cli(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "serve" {
		fs := flag.NewFlagSet("serve", flag.ContinueOnError)
		fs.SetOutput(stderr)
		opts := defaultServeOptions
		fs.IntVar(&opts.port, "port", opts.port, "port to listen on, on 127.0.0.1 (0: any free port)")
		fs.IntVar(&opts.scale, "scale", opts.scale, "divide the policy file's delays by this (1: the guide's real delays)")
		fs.Float64Var(&opts.rps, "rps", opts.rps, "background calls per second through the protected endpoint (0: none)")
		fs.StringVar(&opts.redis, "redis", opts.redis, "share the breaker through the Redis server at this address (host:port), as replicas do")
		fs.Func("allow-host", "also answer requests for this host name (repeat for more); by default only loopback names are answered", func(name string) error {
			opts.hosts = append(opts.hosts, name)
			return nil
		})
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		return serve(ctx, opts, stdout, stderr)
	}
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: demo          run the scenario\n       demo serve    serve the live status page (demo serve -h for flags)\n")
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("unknown command %q", fs.Arg(0))
	}
	_, err := run(ctx, stdout, defaultDemoOptions)
	return err
}
