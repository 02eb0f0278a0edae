package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/smtptls/smtptls/internal/dnsname"
)

// hostileServer serves one connection with script and returns its
// address.
func hostileServer(t *testing.T, script func(c net.Conn)) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				script(c)
			}()
		}
	}()
	return netip.MustParseAddrPort(ln.Addr().String())
}

// TestProbeHostile: a probe of a hostile SMTP server ends within its time
// limit and reads a bounded amount, whatever the server sends or does
// not send.
func TestProbeHostile(t *testing.T) {
	t.Parallel()
	endless := func(prefix string) func(net.Conn) {
		return func(c net.Conn) {
			io.WriteString(c, prefix)
			chunk := bytes.Repeat([]byte("a"), 32<<10)
			for {
				if _, err := c.Write(chunk); err != nil {
					return
				}
			}
		}
	}
	stall := func(script string) func(net.Conn) {
		return func(c net.Conn) {
			io.WriteString(c, script)
			io.Copy(io.Discard, c) // reads, never answers
		}
	}
	for _, c := range []struct {
		name   string
		script func(net.Conn)
		want   string
	}{
		{"endless greeting line", endless("220 "), probeUnreachable},
		{"endless multi-line greeting", endless("220-a\r\n220-"), probeUnreachable},
		{"silent", stall(""), probeUnreachable},
		{"stalls after the greeting", stall("220 hi\r\n"), probeUnreachable},
		{"endless EHLO reply", func(c net.Conn) {
			io.WriteString(c, "220 hi\r\n")
			endless("250-")(c)
		}, probeUnreachable},
		{"STARTTLS accepted, then silence", func(c net.Conn) {
			io.WriteString(c, "220 hi\r\n")
			buf := make([]byte, 512)
			c.Read(buf)
			io.WriteString(c, "250-hi\r\n250 STARTTLS\r\n")
			c.Read(buf)
			io.WriteString(c, "220 go ahead\r\n")
			io.Copy(io.Discard, c)
		}, probeFailed},
		{"STARTTLS refused", func(c net.Conn) {
			io.WriteString(c, "220 hi\r\n")
			buf := make([]byte, 512)
			c.Read(buf)
			io.WriteString(c, "250-hi\r\n250 starttls\r\n")
			c.Read(buf)
			io.WriteString(c, "454 TLS not available\r\n")
		}, probeFailed},
		{"EHLO refused", func(c net.Conn) {
			io.WriteString(c, "220 hi\r\n")
			buf := make([]byte, 512)
			c.Read(buf)
			io.WriteString(c, "502 EHLO? HELO only\r\n")
			c.Read(buf)
			io.WriteString(c, "221 bye\r\n")
		}, probeNotOffered},
		{"STARTTLS only in the greeting line", func(c net.Conn) {
			io.WriteString(c, "220 hi\r\n")
			buf := make([]byte, 512)
			c.Read(buf)
			io.WriteString(c, "250 STARTTLS\r\n")
			c.Read(buf)
			io.WriteString(c, "221 bye\r\n")
		}, probeNotOffered},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ap := hostileServer(t, c.script)
			const limit = 2 * time.Second
			ctx, cancel := context.WithTimeout(context.Background(), limit)
			defer cancel()
			start := time.Now()
			got, _, err := runProbe(ctx, (&net.Dialer{}).DialContext, "mx.example.test", ap)
			if el := time.Since(start); el > limit+time.Second {
				t.Errorf("probe took %v, limit %v", el, limit)
			}
			if got != c.want {
				t.Errorf("probe: %q (%v), want %q", got, err, c.want)
			}
		})
	}
}

// FuzzReadList: whatever a list holds, readList neither panics nor
// passes on anything but normalised mail domains, and reports bad lines
// with numbers in order.
func FuzzReadList(f *testing.F) {
	for _, s := range []string{
		"example.org\n1,example.com\n# comment\n\n",
		"\ufeff1,google.com\r\n2,facebook.com\r\n",
		"0,x.test\nx,y.test\nbad..name\nlocalhost\n192.0.2.1\n",
		strings.Repeat("a", 5000) + "\nok.test",
		"3 , Spaced.Example. \n\x00\xff,\x1b[31m.test\n",
		"Bücher.example\nxn--bcher-kva.example\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		last := 0
		lines := bytes.Count(data, []byte("\n")) + 1
		err := readList(bytes.NewReader(data), func(n int, reason string) {
			if n <= last || n > lines {
				t.Errorf("bad line %d after %d (of %d lines)", n, last, lines)
			}
			last = n
			if reason == "" || strings.ContainsAny(reason, "\n\r\x1b") {
				t.Errorf("line %d: reason %q", n, reason)
			}
		}, func(e entry) error {
			d, err := dnsname.Mail.Normalize(e.domain)
			if err != nil || d != e.domain || !strings.Contains(d, ".") || e.rank < 0 {
				t.Errorf("entry %+v passed on (%v)", e, err)
			}
			return nil
		})
		if err != nil {
			t.Errorf("readList: %v", err)
		}
	})
}
