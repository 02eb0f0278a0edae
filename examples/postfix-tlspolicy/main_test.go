package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smtptls/smtptls/smtptlstest"
)

func TestParseNextHop(t *testing.T) {
	t.Parallel()
	tests := []struct {
		key   string
		want  nextHop
		valid bool
	}{
		{"example.org", nextHop{host: "example.org", port: 25}, true},
		{"Example.ORG.", nextHop{host: "Example.ORG.", port: 25}, true},
		{"example.org:587", nextHop{host: "example.org", port: 587}, true},
		{"example.org:submission", nextHop{host: "example.org", port: 587}, true},
		{"[relay.example.org]", nextHop{host: "relay.example.org", relay: true, port: 25}, true},
		{"[relay.example.org]:smtps", nextHop{host: "relay.example.org", relay: true, port: 465}, true},
		{".example.org", nextHop{}, false},
		{"[relay.example.org]x", nextHop{}, false},
		{"[relay.example.org", nextHop{}, false},
		{"example.org:0", nextHop{}, false},
		{"example.org:+25", nextHop{}, false},
		{"example.org:imap", nextHop{}, false},
		{"[192.0.2.1]:25", nextHop{}, false},
		{"192.0.2.1", nextHop{}, false},
		{"[ipv6:::1]", nextHop{}, false},
		{"[::1]", nextHop{}, false},
		{"/var/lib/lmtp", nextHop{}, false},
		{"a b", nextHop{}, false},
		{"", nextHop{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.key, func(t *testing.T) {
			t.Parallel()
			got, ok := parseNextHop(tc.key)
			if ok != tc.valid || (ok && got != tc.want) {
				t.Errorf("parseNextHop(%q) = %+v, %v; want %+v, %v", tc.key, got, ok, tc.want, tc.valid)
			}
		})
	}
}

// TestShippedConfig: the example configuration file parses and holds the
// defaults, as it says.
func TestShippedConfig(t *testing.T) {
	t.Parallel()
	def, err := parseConfig(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	shipped, err := parseConfig([]string{"-config", "postfix-tlspolicy.conf"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if *def != *shipped {
		t.Errorf("postfix-tlspolicy.conf differs from the defaults:\n%+v\n%+v", shipped, def)
	}
}

func TestConfigFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.conf", "# comment\n\nlisten = unix:/run/x/socket\ntesting = enforce\nmatch=policy\nquery-timeout = 5s\n")
	tests := []struct {
		name    string
		args    []string
		check   func(*config) bool
		wantErr string
	}{
		{name: "defaults", args: nil, check: func(c *config) bool {
			return c.listen == "inet:127.0.0.1:8461" && c.testing == TestingNotFound && c.match == MatchMX && c.sni && c.queryTimeout == DefaultQueryTimeout
		}},
		{name: "file", args: []string{"-config", good}, check: func(c *config) bool {
			return c.listen == "unix:/run/x/socket" && c.testing == TestingEnforce && c.match == MatchPolicy && c.queryTimeout == 5*time.Second
		}},
		{name: "flags win over the file", args: []string{"-listen", "inet:127.0.0.1:1", "-config", good}, check: func(c *config) bool {
			return c.listen == "inet:127.0.0.1:1" && c.testing == TestingEnforce
		}},
		{name: "unknown setting", args: []string{"-config", write("unknown.conf", "listen = inet:127.0.0.1:1\nlisten_addr = x\n")}, wantErr: "unknown.conf:2: unknown setting"},
		{name: "bad value", args: []string{"-config", write("bad.conf", "mixed = sometimes\n")}, wantErr: "bad.conf:1: mixed"},
		{name: "no equals", args: []string{"-config", write("noeq.conf", "listen\n")}, wantErr: "noeq.conf:1: want"},
		{name: "config in config", args: []string{"-config", write("loop.conf", "config = x\n")}, wantErr: "unknown setting \"config\""},
		{name: "bad flag value", args: []string{"-testing", "maybe"}, wantErr: "want notfound or enforce"},
		{name: "stray argument", args: []string{"extra"}, wantErr: "unexpected arguments"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := parseConfig(tc.args, io.Discard)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one mentioning %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(cfg) {
				t.Errorf("config %+v", cfg)
			}
		})
	}
}

// syncBuffer is a bytes.Buffer for a logger written from several
// goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRun runs the command as installed: flags, start-up probe against a
// validating resolver (the kit's DNS front), a unix socket, a query, and
// a shutdown when the context ends (as on SIGTERM).
func TestRun(t *testing.T) {
	t.Parallel()
	w := smtptlstest.New(t)
	w.AddDomain("dane.test", smtptlstest.Scenario{DANE: smtptlstest.DANEEndEntity})
	dir := t.TempDir()
	sock := filepath.Join(dir, "socket")
	var logs syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	exited := make(chan int, 1)
	go func() {
		exited <- run(ctx, []string{"-listen", "unix:" + sock, "-dns", w.DNSAddr(), "-cache-dir", filepath.Join(dir, "cache"),
			"-log-format", "json", "-refresh", "0"}, &logs)
	}()
	var c net.Conn
	deadline := time.Now().Add(20 * time.Second)
	for {
		var err error
		if c, err = net.Dial("unix", sock); err == nil {
			break
		}
		select {
		case code := <-exited:
			t.Fatalf("run exited %d:\n%s", code, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no socket: %v\n%s", err, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	defer c.Close()
	if st, err := os.Stat(sock); err != nil || st.Mode().Perm() != 0o660 {
		t.Errorf("socket mode: %v %v", st.Mode(), err)
	}
	br := bufio.NewReader(c)
	for _, q := range []struct{ req, want string }{
		{"tlspolicy dane.test", "OK dane"},
		{"tlspolicy [192.0.2.1]", "NOTFOUND "},
		{"postfix dane.test", "PERM unknown map name postfix"},
	} {
		if got, err := query(c, br, q.req); err != nil || got != q.want {
			t.Errorf("%q: %q, %v; want %q", q.req, got, err, q.want)
		}
	}
	cancel()
	select {
	case code := <-exited:
		if code != 0 {
			t.Errorf("run exited %d", code)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("run did not stop")
	}
	for _, want := range []string{`"msg":"serving"`, `"msg":"tlspolicy: answer","key":"dane.test","answer":"OK dane"`, `"msg":"stopped"`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("logs lack %s:\n%s", want, logs.String())
		}
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("socket left behind: %v", err)
	}
}

// TestRunRefusesWithoutDNSSEC: a resolver that cannot validate would make
// every DANE domain look like an MTA-STS (or plain) one; the command then
// refuses to start unless told otherwise.
func TestRunRefusesWithoutDNSSEC(t *testing.T) {
	t.Parallel()
	// Nothing answers on this address: the root DNSKEY probe fails.
	l, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.LocalAddr().String()
	l.Close()
	var logs syncBuffer
	args := []string{"-dns", dead, "-listen", "unix:" + filepath.Join(t.TempDir(), "s"), "-cache-dir", ""}
	if code := run(context.Background(), args, &logs); code != 1 || !strings.Contains(logs.String(), "refusing to start") {
		t.Errorf("run = %d, want 1 and a refusal:\n%s", code, logs.String())
	}
	if code := run(context.Background(), append(args, "-check"), io.Discard); code != 1 {
		t.Errorf("run -check = %d, want 1", code)
	}
}
