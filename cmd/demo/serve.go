package main

import (
	"context"
	"io"
)

type serveOptions struct {
	port  int
	scale int
	rps   float64
}

var defaultServeOptions = serveOptions{port: 8080, scale: 10, rps: 10}

func serve(ctx context.Context, opts serveOptions, stdout, stderr io.Writer) error { return nil }
