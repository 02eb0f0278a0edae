package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestDemo(t *testing.T) {
	var out bytes.Buffer
	if code := run(&out, false); code != 0 {
		t.Fatalf("demo exited %d:\n%s", code, out.String())
	}
	if !strings.Contains(out.String(), "13 cases, 13 as the RFCs say, 0 not") {
		t.Errorf("unexpected summary:\n%s", out.String())
	}
}
