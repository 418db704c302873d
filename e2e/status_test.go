//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromium returns the browser to drive: $CHROMIUM, or Debian's chromium.
func chromium(t *testing.T) string {
	t.Helper()
	for _, p := range []string{os.Getenv("CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Fatal("no chromium: install Debian's chromium (make e2e does) or set CHROMIUM")
	return ""
}

// startServe builds cmd/demo and starts `demo serve` on a free port, with
// the guide's delays scaled down 100× (the breaker half-opens 1.2s after it
// opens). It returns the page's URL; the server stops when the test ends.
func startServe(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "demo")
	build := exec.Command("go", "build", "-o", bin, "./cmd/demo")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/demo: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "serve", "-port", "0", "-scale", "100", "-rps", "20")
	cmd.Dir = ".."
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		re := regexp.MustCompile(`serving on (http://127\.0\.0\.1:\d+/)`)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
			}
		}
	}()
	select {
	case url := <-found:
		return url
	case <-time.After(30 * time.Second):
		t.Fatal("demo serve did not say where it listens within 30s")
		return ""
	}
}

// TestStatusPageShowsBreakerOpenAndClose drives the status page in headless
// Chromium: it raises the upstream's error rate through the page's control,
// waits for the page to show the breaker open (and the health report
// failing), saves a screenshot, lowers the rate, and waits for the page to
// show the breaker closed again.
func TestStatusPageShowsBreakerOpenAndClose(t *testing.T) {
	browser := chromium(t)
	url := startServe(t)

	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(browser),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1000),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	ctx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	ctx, cancelTab := chromedp.NewContext(ctx, chromedp.WithLogf(t.Logf))
	defer cancelTab()

	state := `document.querySelector("#state-embedding_api")?.textContent`
	waitState := func(want string, limit time.Duration) chromedp.Action[chromedp.Void] {
		return func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
			_, err := chromedp.Poll[bool](state+` === "`+want+`"`, chromedp.WithPollingTimeout(limit), chromedp.WithPollingInterval(100*time.Millisecond))(ctx, tg)
			if err != nil {
				got, _ := chromedp.Evaluate[string](state)(ctx, tg)
				return chromedp.Void{}, fmt.Errorf("breaker state on the page is %q, want %q: %w", got, want, err)
			}
			return chromedp.Void{}, nil
		}
	}
	waitHealth := func(want string, limit time.Duration) chromedp.Action[chromedp.Void] {
		return func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
			_, err := chromedp.Poll[bool](`document.querySelector("#health-status").textContent === "`+want+`"`, chromedp.WithPollingTimeout(limit))(ctx, tg)
			if err != nil {
				return chromedp.Void{}, fmt.Errorf("health on the page is not %q: %w", want, err)
			}
			return chromedp.Void{}, nil
		}
	}
	// setErrorRate types the rate into the page's field and clicks Apply,
	// as a person would.
	setErrorRate := func(percent string) chromedp.Action[chromedp.Void] {
		return chromedp.Steps(
			chromedp.SetValue(chromedp.CSS("#error-rate"), ""),
			chromedp.SendKeys(chromedp.CSS("#error-rate"), percent),
			chromedp.Click(chromedp.CSS("#apply")),
		)
	}

	start := time.Now()
	err := chromedp.Do(ctx,
		chromedp.Navigate(url),
		chromedp.WaitVisible(chromedp.CSS("#state-embedding_api")),
		waitState("closed", 10*time.Second),
	)
	if err != nil {
		t.Fatalf("page did not show a closed breaker: %v", err)
	}
	t.Logf("page up, breaker closed (%s)", time.Since(start).Round(time.Millisecond))

	err = chromedp.Do(ctx,
		setErrorRate("100"),
		waitState("open", 20*time.Second),
		waitHealth("fail", 5*time.Second),
		chromedp.Sleep(1500*time.Millisecond), // let the event stream show the open spell and a probe
	)
	if err != nil {
		t.Fatalf("after raising the error rate: %v", err)
	}
	applied, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#applied")))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(applied, "100% errors") {
		t.Errorf("page says %q, want the 100%% error rate applied", applied)
	}
	shot, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	if err := savePNG(shot); err != nil {
		t.Error(err)
	}
	t.Logf("breaker open, health fail, screenshot taken (%s)", time.Since(start).Round(time.Millisecond))

	err = chromedp.Do(ctx,
		setErrorRate("0"),
		waitState("closed", 30*time.Second),
		waitHealth("pass", 10*time.Second),
	)
	if err != nil {
		t.Fatalf("after lowering the error rate: %v", err)
	}
	events, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#event-rows")))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"closed → open", "open → half-open", "half-open → closed"} {
		if !strings.Contains(events, want) {
			t.Errorf("event stream lacks %q", want)
		}
	}
	t.Logf("breaker closed again (%s)", time.Since(start).Round(time.Millisecond))
}

// savePNG checks the screenshot and, when UPDATE_SCREENSHOT is set (make
// screenshot), writes it where the README shows it; a plain run leaves the
// tree as it found it.
func savePNG(b []byte) error {
	if len(b) < 8 || string(b[1:4]) != "PNG" {
		return errors.New("screenshot is not a PNG")
	}
	if os.Getenv("UPDATE_SCREENSHOT") == "" {
		return nil
	}
	return os.WriteFile(filepath.Join("..", "docs", "status.png"), b, 0o644)
}
