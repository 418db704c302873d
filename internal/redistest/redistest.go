// Package redistest runs a real redis-server for tests, on a free loopback
// port, with no persistence.
//
// When redis-server is not installed, a test that needs it is skipped with a
// message saying how to install it (`make redis`), except under CI (the
// environment variable CI set to a true value, as CI=true): there it fails,
// so that a CI machine without Redis never passes by skipping.
package redistest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// Server is a redis-server started by a test. Stop it, or let the test's
// cleanup do it.
type Server struct {
	// Addr is the server's "127.0.0.1:port".
	Addr string
	port int
	args []string
	cmd  *exec.Cmd
}

// Verdict is what a test does about redis-server: run, skip or fail.
type Verdict int

// The verdicts of [Decide].
const (
	Run  Verdict = iota // redis-server is installed
	Skip                // absent on a developer's machine: skip the test
	Fail                // absent under CI: fail the test
)

// Decide returns what a test that needs redis-server does, given the error
// of looking it up (exec.LookPath; nil when it is installed) and the value of
// the CI environment variable: [Run] when it is installed; when it is not,
// [Fail] if ci is a true value (strconv.ParseBool: "true", "1", ...) and
// [Skip] otherwise. The message says why and how to install it.
func Decide(lookErr error, ci string) (Verdict, string) {
	if lookErr == nil {
		return Run, ""
	}
	msg := fmt.Sprintf("redis-server is not installed (%v): run `make redis` (it installs it with apt-get)", lookErr)
	if on, err := strconv.ParseBool(ci); err == nil && on {
		return Fail, msg + "; CI is set, so the test fails instead of skipping"
	}
	return Skip, msg + "; skipping (under CI=true this fails)"
}

// Start starts a redis-server on a free loopback port, with extra
// arguments (such as "--requirepass", "secret"), and stops it when the test
// ends. When redis-server is not installed, the test is skipped, or fails
// under CI (see [Decide]), with a message saying to run `make redis`.
func Start(tb testing.TB, args ...string) *Server {
	tb.Helper()
	_, err := exec.LookPath("redis-server")
	switch v, msg := Decide(err, os.Getenv("CI")); v {
	case Skip:
		tb.Skip(msg)
	case Fail:
		tb.Fatal(msg)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("finding a free port: %v", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	s := &Server{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), port: port, args: args}
	if err := s.start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Stop)
	return s
}

func (s *Server) start() error {
	args := append([]string{"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no"}, s.args...)
	s.cmd = exec.Command("redis-server", args...)
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("starting redis-server: %w", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.Addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			s.Stop()
			return fmt.Errorf("redis-server on %s did not start: %w", s.Addr, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Stop kills the server (as a crash would: its data is lost) and waits for
// it to exit. It does nothing if the server is not running.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	s.cmd.Wait()
	s.cmd = nil
}

// Restart starts the server again on the same port, empty (redis-server
// binds with SO_REUSEADDR, so the port is free at once).
func (s *Server) Restart(tb testing.TB) {
	tb.Helper()
	s.Stop()
	if err := s.start(); err != nil {
		tb.Fatal(err)
	}
}

// Pause freezes the server (SIGSTOP): connections are accepted by the
// kernel but nothing answers, as with a Redis that hangs. Resume undoes it;
// the test's cleanup stops a paused server too.
func (s *Server) Pause() { s.cmd.Process.Signal(syscall.SIGSTOP) }

// Resume lets a paused server run again (SIGCONT).
func (s *Server) Resume() { s.cmd.Process.Signal(syscall.SIGCONT) }
