package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/smtptls/smtptls/smtptlstest"
)

var memLines = flag.Int("mem-lines", 100000, "lines of the list of BenchmarkMemory")

// memWorld is the cheap World of BenchmarkMemory: one domain in a
// hundred of the list exists (an MX to a shared host in an unsigned
// zone), the others are NXDOMAIN, in the unsigned zone u.test.
func memWorld(b *testing.B, n int) (*smtptlstest.World, string) {
	w := smtptlstest.New(b)
	w.AddZone("plainhost.test", smtptlstest.ZoneConfig{}).MustAdd("mx1 A 192.0.2.11")
	z := w.AddZone("u.test", smtptlstest.ZoneConfig{})
	var zb, list strings.Builder
	for i := range n {
		if i%100 == 0 {
			fmt.Fprintf(&zb, "%s MX 10 mx1.plainhost.test.\n", label(i))
		}
		fmt.Fprintf(&list, "%d,%s.u.test\n", i+1, label(i))
	}
	z.MustAdd(zb.String())
	file := filepath.Join(b.TempDir(), "list.csv")
	if err := os.WriteFile(file, []byte(list.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	return w, file
}

// BenchmarkMemory surveys a list of -mem-lines lines (100,000) with the
// defaults (in-process validation, concurrency 32), and its first tenth,
// each in a process of its own (the test binary), and reports the peak
// Go heap and the peak resident set of each, and the ratios: memory must
// grow with the concurrency and the summary's lists, not with the list
// (ratios near 1, not 10).
func BenchmarkMemory(b *testing.B) {
	w, list := memWorld(b, *memLines)
	dir := b.TempDir()
	small := filepath.Join(dir, "small.csv")
	data, _ := os.ReadFile(list)
	lines := strings.SplitAfter(string(data), "\n")
	os.WriteFile(small, []byte(strings.Join(lines[:*memLines/10], "")), 0o644)
	anchors := writeAnchors(b, w, dir)
	survey := func(list string, n int) (heap, rss uint64, el time.Duration) {
		js := filepath.Join(dir, "s.json")
		cmd := exec.Command(os.Args[0], "-test.run=^$", "--", "-resolver", w.DNSAddr(), "-anchors", anchors, "-timeout", "3m",
			"-out", filepath.Join(dir, "out.jsonl"), "-json-summary", js, list)
		cmd.Env = append(os.Environ(), envChild+"=1")
		var stderr strings.Builder
		cmd.Stderr = &stderr
		start := time.Now()
		if err := cmd.Run(); err != nil {
			b.Fatalf("%v\n%s", err, stderr.String())
		}
		el = time.Since(start)
		if s := readSummary(b, js); s.Domains != n || s.Errors != 0 {
			b.Fatalf("summary: %d domains, %d errors; want %d, 0", s.Domains, s.Errors, n)
		}
		if _, err := fmt.Sscanf(stderr.String()[strings.LastIndex(stderr.String(), "peak-heap"):], "peak-heap %d", &heap); err != nil {
			b.Fatalf("no peak heap reported: %v\n%s", err, stderr.String())
		}
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			rss = uint64(ru.Maxrss) << 10 // kilobytes on Linux
		}
		return heap, rss, el
	}
	mib := func(v uint64) float64 { return float64(v) / (1 << 20) }
	for b.Loop() {
		hSmall, rSmall, elSmall := survey(small, *memLines/10)
		hLarge, rLarge, elLarge := survey(list, *memLines)
		b.ReportMetric(mib(hLarge), "peak-heap-MiB")
		b.ReportMetric(mib(hSmall), "tenth-peak-heap-MiB")
		b.ReportMetric(float64(hLarge)/float64(hSmall), "heap-ratio")
		b.ReportMetric(mib(rLarge), "peak-rss-MiB")
		b.ReportMetric(mib(rSmall), "tenth-peak-rss-MiB")
		b.ReportMetric(float64(*memLines)/elLarge.Seconds(), "domains/s")
		b.Logf("%d lines: peak heap %.1f MiB, peak RSS %.1f MiB, %v; %d lines: %.1f MiB, %.1f MiB, %v",
			*memLines, mib(hLarge), mib(rLarge), elLarge.Round(time.Second), *memLines/10, mib(hSmall), mib(rSmall), elSmall.Round(time.Second))
	}
	b.ReportMetric(0, "ns/op")
}
