package endpoint_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"

	kitendpoint "github.com/go-kit/kit/endpoint"
	httptransport "github.com/go-kit/kit/transport/http"

	"github.com/resiliencekit/resilience/endpoint"
)

// Compile-time proof that our Endpoint and Middleware are go-kit's types, not
// look-alikes: two distinct named types are never assignable to each other,
// and slices of them are only assignable when the element types are identical.
var (
	_ kitendpoint.Endpoint     = endpoint.Endpoint(nil)
	_ endpoint.Endpoint        = kitendpoint.Endpoint(nil)
	_ kitendpoint.Middleware   = endpoint.Middleware(nil)
	_ endpoint.Middleware      = kitendpoint.Middleware(nil)
	_ []kitendpoint.Endpoint   = []endpoint.Endpoint(nil)
	_ []endpoint.Endpoint      = []kitendpoint.Endpoint(nil)
	_ []kitendpoint.Middleware = []endpoint.Middleware(nil)
	_ []endpoint.Middleware    = []kitendpoint.Middleware(nil)
	_ kitendpoint.Middleware   = endpoint.Chain(kitendpoint.Middleware(identity))
	_ kitendpoint.Endpoint     = endpoint.FromTyped(func(context.Context, int) (int, error) { return 0, nil })
	_ kitendpoint.Endpoint     = endpoint.Nop
)

func identity(e kitendpoint.Endpoint) kitendpoint.Endpoint { return e }

// kitMiddleware is a go-kit middleware, declared with go-kit's types only.
func kitMiddleware(r *recorder, name string) kitendpoint.Middleware {
	return func(next kitendpoint.Endpoint) kitendpoint.Endpoint {
		return func(ctx context.Context, req any) (any, error) {
			r.add(name + " pre")
			defer r.add(name + " post")
			return next(ctx, req)
		}
	}
}

func TestTypesAreGoKits(t *testing.T) {
	tests := []struct {
		name       string
		ours, kits reflect.Type
	}{
		{name: "Endpoint", ours: reflect.TypeFor[endpoint.Endpoint](), kits: reflect.TypeFor[kitendpoint.Endpoint]()},
		{name: "Middleware", ours: reflect.TypeFor[endpoint.Middleware](), kits: reflect.TypeFor[kitendpoint.Middleware]()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.ours != tt.kits {
				t.Errorf("type = %v, want go-kit's %v (an alias)", tt.ours, tt.kits)
			}
			if got, want := tt.ours.PkgPath(), "github.com/go-kit/kit/endpoint"; got != want {
				t.Errorf("package = %q, want %q", got, want)
			}
		})
	}
}

// TestGoKitValuesFlowBothWays passes go-kit values into our Chain and our
// values into go-kit's Chain, with no conversion anywhere.
func TestGoKitValuesFlowBothWays(t *testing.T) {
	var rec recorder

	// go-kit values in, our Chain.
	var kitMW kitendpoint.Middleware = kitMiddleware(&rec, "kit")
	var kitEP kitendpoint.Endpoint = rec.innermost()
	var ours endpoint.Endpoint = endpoint.Chain(kitMW, rec.mw("ours"))(kitEP)

	// Our values in, go-kit's Chain; and the result back into ours.
	var back kitendpoint.Endpoint = kitendpoint.Chain(endpoint.Chain(rec.mw("outer")), kitMW)(ours)
	var again endpoint.Endpoint = back

	resp, err := again(t.Context(), "x")
	if err != nil {
		t.Fatalf("err = %v, want nil", err)
	}
	if resp != "x" {
		t.Errorf("resp = %v, want x", resp)
	}
	if got, want := rec.got(), nesting("outer", "kit", "kit", "ours"); !slices.Equal(got, want) {
		t.Errorf("lines = %q, want %q", got, want)
	}
}

type upperRequest struct {
	S string `json:"s"`
}

type upperResponse struct {
	V string `json:"v"`
}

var errEmpty = errors.New("empty string")

// TestGoKitHTTPTransport runs a request through go-kit's HTTP transport on
// both sides: a client endpoint from httptransport.NewClient, wrapped by our
// Chain, talks over loopback to an httptransport.NewServer serving an endpoint
// that is itself wrapped by our Chain.
func TestGoKitHTTPTransport(t *testing.T) {
	tests := []struct {
		name      string
		req       upperRequest
		want      upperResponse
		wantErr   bool
		wantLines []string
	}{
		{
			name:      "success",
			req:       upperRequest{S: "hello"},
			want:      upperResponse{V: "HELLO"},
			wantLines: nesting("client-outer", "client-inner", "server-outer", "server-inner"),
		},
		{
			name:      "service error",
			req:       upperRequest{S: ""},
			wantErr:   true,
			wantLines: nesting("client-outer", "client-inner", "server-outer", "server-inner"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var rec recorder
			service := func(_ context.Context, req upperRequest) (upperResponse, error) {
				rec.add("endpoint")
				if req.S == "" {
					return upperResponse{}, errEmpty
				}
				return upperResponse{V: strings.ToUpper(req.S)}, nil
			}

			// Server: our Chain around our typed bridge, handed to go-kit.
			serverEP := endpoint.Chain(rec.mw("server-outer"), rec.mw("server-inner"))(endpoint.FromTyped(service))
			handler := httptransport.NewServer(
				serverEP,
				func(_ context.Context, r *http.Request) (any, error) {
					var req upperRequest
					err := json.NewDecoder(r.Body).Decode(&req)
					return req, err
				},
				httptransport.EncodeJSONResponse,
			)
			srv := httptest.NewServer(handler)
			defer srv.Close()

			// Client: go-kit's client endpoint, wrapped by our Chain.
			u, err := url.Parse(srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			client := httptransport.NewClient(http.MethodPost, u,
				httptransport.EncodeJSONRequest,
				func(_ context.Context, r *http.Response) (any, error) {
					if r.StatusCode != http.StatusOK {
						body, _ := io.ReadAll(r.Body)
						return nil, fmt.Errorf("status %d: %s", r.StatusCode, body)
					}
					var resp upperResponse
					err := json.NewDecoder(r.Body).Decode(&resp)
					return resp, err
				},
				httptransport.SetClient(srv.Client()),
			)
			var clientEP kitendpoint.Endpoint = client.Endpoint()
			wrapped := endpoint.Chain(rec.mw("client-outer"), rec.mw("client-inner"))(clientEP)
			call := endpoint.Typed[upperRequest, upperResponse](wrapped)

			got, err := call(t.Context(), tt.req)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("resp = %+v, want %+v", got, tt.want)
			}
			if lines := rec.got(); !slices.Equal(lines, tt.wantLines) {
				t.Errorf("lines = %q, want %q", lines, tt.wantLines)
			}
		})
	}
}
