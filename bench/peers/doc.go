// Package peers compares smtptls with a peer implementation, mox
// (github.com/mjl-/mox), on the same inputs: benchmarks of the parsers and
// verifiers an MTA runs per delivery, and a differential test that runs
// the shared peer vectors through both and explains every disagreement
// with the RFC section that settles it.
//
// This is a separate module so that the library never depends on mox; it
// has no API and nothing imports it. Everything lives in its tests:
//
//	go test -run . -bench . -benchmem -count 5
//
// runs the differential test and the benchmarks. The test reads the shared
// vectors from ../shared beside the main module's root (or from
// $SMTPTLS_SHARED); it is skipped when they are absent, and fails when
// CI=true. `go test -run TestDisagreements -update` regenerates the
// disagreement table in README.md.
package peers
