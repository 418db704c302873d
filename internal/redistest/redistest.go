// Package redistest runs a real redis-server for tests, on a free loopback
// port, with no persistence.
package redistest

import (
	"fmt"
	"net"
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

// Start starts a redis-server on a free loopback port, with extra
// arguments (such as "--requirepass", "secret"), and stops it when the test
// ends. The test fails, with a message saying to run `make redis`, when
// redis-server is not installed.
func Start(tb testing.TB, args ...string) *Server {
	tb.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		tb.Fatalf("redis-server is not installed (%v): run `make redis` (it installs it with apt-get)", err)
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
