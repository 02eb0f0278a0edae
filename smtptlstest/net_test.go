package smtptlstest_test

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/smtptls/smtptls/smtptlstest"
)

func TestDialContext(t *testing.T) {
	t.Parallel()
	w := smtptlstest.New(t)
	z := w.AddZone("example.test", smtptlstest.ZoneConfig{Signing: smtptlstest.NSEC})
	z.MustAdd("mx A 192.0.2.25", "alias CNAME mx", "v6 AAAA 2001:db8::25", "noaddr TXT nothing")
	mx := w.AddMX("mx.example.test", smtptlstest.SMTPConfig{})
	v6 := w.AddMX("v6.example.test", smtptlstest.SMTPConfig{})
	// A server of the test's own, plugged in at a World address.
	own, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer own.Close()
	go func() {
		for {
			c, err := own.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("own server\r\n"))
			c.Close()
		}
	}()
	w.Listen(netip.MustParseAddr("198.51.100.7"), 587, own)

	banner := func(t *testing.T, network, addr string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := w.DialContext(ctx, network, addr)
		if err != nil {
			return "", err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		return strings.TrimSpace(line), err
	}
	for _, tt := range []struct {
		name, network, addr, want string
	}{
		{"host name", "tcp", "mx.example.test:25", "220 mx.example.test"},
		{"host name with dot and case", "tcp", "MX.Example.Test.:25", "220 mx.example.test"},
		{"CNAME", "tcp", "alias.example.test:25", "220 mx.example.test"},
		{"IPv4 address", "tcp4", "192.0.2.25:25", "220 mx.example.test"},
		{"IPv6 name", "tcp", "v6.example.test:25", "220 v6.example.test"},
		{"IPv6 address", "tcp6", "[2001:db8::25]:25", "220 v6.example.test"},
		{"registered listener", "tcp", "198.51.100.7:587", "own server"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := banner(t, tt.network, tt.addr)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(got, tt.want) {
				t.Errorf("banner %q, want %q", got, tt.want)
			}
		})
	}
	for _, tt := range []struct {
		name, network, addr string
		refused             bool
	}{
		{"unregistered port", "tcp", "mx.example.test:587", true},
		{"unregistered address", "tcp", "203.0.113.1:25", true},
		{"wrong family", "tcp6", "mx.example.test:25", true},
		{"no such host", "tcp", "nothing.example.test:25", false},
		{"name without address", "tcp", "noaddr.example.test:25", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := banner(t, tt.network, tt.addr)
			if tt.refused {
				if !errors.Is(err, syscall.ECONNREFUSED) {
					t.Errorf("want connection refused, got %v", err)
				}
				return
			}
			var de *net.DNSError
			if !errors.As(err, &de) || !de.IsNotFound {
				t.Errorf("want a not-found DNSError, got %v", err)
			}
		})
	}
	t.Run("udp", func(t *testing.T) {
		var ue net.UnknownNetworkError
		if _, err := w.DialContext(context.Background(), "udp", "mx.example.test:25"); !errors.As(err, &ue) {
			t.Errorf("%v", err)
		}
	})
	t.Run("unregister", func(t *testing.T) {
		w.Register(netip.MustParseAddr("198.51.100.7"), 587, "")
		if _, err := banner(t, "tcp", "198.51.100.7:587"); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("%v", err)
		}
	})
	if mx.Addr() == v6.Addr() || mx.Host() != "mx.example.test" {
		t.Errorf("servers: %s %s %s", mx.Addr(), v6.Addr(), mx.Host())
	}
}

// TestAddMXAllocatesAddresses checks that AddMX adds an address for a host
// that has none, and that it resolves over the wire.
func TestAddMXAllocatesAddresses(t *testing.T) {
	t.Parallel()
	w := smtptlstest.New(t)
	w.AddZone("example.test", smtptlstest.ZoneConfig{Signing: smtptlstest.NSEC})
	a := w.AddMX("mx1.example.test", smtptlstest.SMTPConfig{})
	b := w.AddMX("mx2.example.test", smtptlstest.SMTPConfig{})
	ips := map[string]bool{}
	for _, s := range []*smtptlstest.SMTPServer{a, b} {
		r := exchange(t, w, q{name: s.Host(), qtype: dns.TypeA, do: true})
		if len(r.Answer) != 2 || !r.AuthenticatedData {
			t.Fatalf("%s: %v", s.Host(), r)
		}
		addr, _ := netip.ParseAddr(strings.Fields(r.Answer[0].String())[4])
		ips[addr.String()] = true
		if !addr.IsLoopback() || addr == netip.MustParseAddr("127.0.0.1") {
			t.Errorf("address %v", addr)
		}
	}
	if len(ips) != 2 {
		t.Errorf("hosts share an address")
	}
}
