//go:build race

package e2e_test

// raceEnabled is true when the tests run under the race detector, which
// makes the load test scale itself down.
const raceEnabled = true
