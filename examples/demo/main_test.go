package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/smtptls/smtptls/examples/internal/demoworld"
)

func TestDemo(t *testing.T) {
	var out bytes.Buffer
	if code := run(&out, false); code != 0 {
		t.Fatalf("demo exited %d:\n%s", code, out.String())
	}
	if want := fmt.Sprintf("%d cases, %d as the RFCs say, 0 not", len(demoworld.Cases), len(demoworld.Cases)); !strings.Contains(out.String(), want) {
		t.Errorf("unexpected summary:\n%s", out.String())
	}
}
