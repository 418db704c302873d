// Package e2e holds the browser tests of cmd/demo's status page. It is a
// module of its own, so that the browser driver (chromedp) never becomes a
// dependency of the toolkit. The tests carry the build tag e2e and need
// Debian's chromium: run them with `make e2e`, which installs it when
// missing.
package e2e
