// Package e2e holds the end-to-end suites of the smtptls module; it has no
// code of its own. Each suite builds offline worlds with the public test kit
// (smtptlstest: signed DNS, a test CA, MTA-STS HTTPS and STARTTLS SMTP
// servers, all on loopback) and drives the root package's public API, with
// real sockets and real handshakes:
//
//   - attack_test.go: TestAttackMatrix, every domain configuration against
//     every attacker capability, alone and combined (security invariants
//     1, 2 and 5 of DESIGN.md).
//   - invariants_test.go: TestInvariant1 to TestInvariant6, one named test
//     per security invariant.
//   - hostile_smtp_test.go: TestHostileSMTP, SMTP peers that misbehave
//     after STARTTLS.
//   - cancel_test.go: TestCancelAtEveryStage, the caller's context ended at
//     each stage of a decision.
//   - load_test.go: TestLoad, TestConcurrentEvaluateOneDomain and
//     BenchmarkLoad (10,000 domains at concurrency 512 by default).
//   - latency_test.go: BenchmarkCriticalPath, sequential round trips of a
//     cold decision under a simulated round trip time.
//   - bench_test.go: BenchmarkEvaluateWarm, BenchmarkEvaluateCold and
//     BenchmarkDNSRoundTrip.
//   - coldcpu_test.go and procworld_test.go: BenchmarkColdCPU, the
//     library's own CPU per cold domain (Stub and Validating) against a
//     floor measured in the same run, with the load World served by a
//     child process (the test binary run again, TestProcWorld).
//   - warm_test.go: TestEvaluateWarmRotation and
//     BenchmarkEvaluateWarmRotation, the default caches holding a warm
//     rotation over 20,000 (test) and 100,000 (benchmark) domains served
//     by a small synthesizing DNS server; the benchmark times Evaluate on
//     the thread's CPU clock (threadcpu_*_test.go).
//
// The tests run with the rest of the module (go test ./...). Run one suite
// with, for example,
//
//	go test -run TestAttackMatrix -v ./internal/e2e
//	go test -run '^$' -bench CriticalPath -benchtime 15x ./internal/e2e -rtt 20ms
//	go test -run '^$' -bench ColdCPU ./internal/e2e -proc-domains 2000
//
// and see BENCHMARKS.md for the benchmarks' flags and figures. Under the race
// detector the load tests scale themselves down (race_test.go).
//
// The root package keeps its own API tests (the decision table, Check,
// reports, the warm path through an unexported hook) and its Examples.
package e2e
