// Package gates holds the repository's own checks: tests about the tests,
// such as every package running goleak in its TestMain. It has no API.
package gates
