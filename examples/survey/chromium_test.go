package main

import (
	"context"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// chromium finds a Chromium to render the HTML report with, or skips
// the test (fails it with SMTPTLS_REQUIRE_PEERS=1, as the project's CI,
// which installs Debian's chromium package, sets it).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	const why = "chromium is not installed: the HTML report is not rendered (apt-get install chromium; .ci/run does)"
	if os.Getenv("SMTPTLS_REQUIRE_PEERS") == "1" {
		t.Fatal(why)
	}
	t.Skip(why)
	return ""
}

// TestHTMLRendersInChromium surveys a small world with -html, renders the
// page in headless Chromium and checks the screenshot: not blank, and
// every chart colour painted, so that the inline SVG charts were drawn.
func TestHTMLRendersInChromium(t *testing.T) {
	t.Parallel()
	bin := chromium(t)
	sw := newSynthWorld(t, 2*len(kinds))
	dir := t.TempDir()
	list := sw.list(t, dir, sw.domains)
	page := filepath.Join(dir, "report.html")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	runSurvey(t, ctx, sw.args("-html", page, list), sw.hooks())

	shot := filepath.Join(dir, "report.png")
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
		"--no-first-run", "--disable-extensions", "--user-data-dir="+filepath.Join(dir, "profile"),
		"--window-size=1000,1600", "--screenshot="+shot, "file://"+page)
	cmd.Env = append(os.Environ(), "HOME="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", cmd, err, out)
	}
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	// The MX and MTA-STS charts have five bars: the first five colours.
	used := chartColors[:5]
	colors, painted := countColors(img, used)
	t.Logf("%v screenshot: %d distinct colours; chart colours painted (pixels): %v", img.Bounds().Size(), colors, painted)
	if colors < 16 {
		t.Errorf("%d distinct colours: the page is blank or nearly", colors)
	}
	for _, c := range used {
		if painted[c] < 200 {
			t.Errorf("chart colour %s painted on %d pixels: the charts were not drawn", c, painted[c])
		}
	}
}

// countColors counts the distinct colours of img, and the pixels within
// a small distance of each of want (colour management may shift a
// channel by a step or two).
func countColors(img image.Image, want []string) (int, map[string]int) {
	type rgb struct{ r, g, b int }
	targets := map[string]rgb{}
	for _, c := range want {
		v, _ := strconv.ParseUint(c[1:], 16, 32)
		targets[c] = rgb{int(v >> 16), int(v >> 8 & 0xff), int(v & 0xff)}
	}
	seen := map[rgb]bool{}
	painted := map[string]int{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			p := rgb{int(r >> 8), int(g >> 8), int(bl >> 8)}
			seen[p] = true
			for name, t := range targets {
				if abs(p.r-t.r) <= 3 && abs(p.g-t.g) <= 3 && abs(p.b-t.b) <= 3 {
					painted[name]++
				}
			}
		}
	}
	return len(seen), painted
}

func abs(x int) int { return max(x, -x) }
