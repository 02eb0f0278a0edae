package smtptlstest_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/smtptls/smtptls/smtptlstest"
)

const message = "From: a@sender.test\r\nTo: b@example.test\r\nSubject: hi\r\n\r\nHello.\r\n"

// send delivers message to host:25 in the World with go-smtp's client,
// with STARTTLS when cfg is not nil.
func send(t *testing.T, w *smtptlstest.World, host string, cfg *tls.Config) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := w.DialContext(ctx, "tcp", host+":25")
	if err != nil {
		return err
	}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	var c *smtp.Client
	if cfg != nil {
		c, err = smtp.NewClientStartTLS(conn, cfg)
		if err != nil {
			conn.Close()
			return err
		}
	} else {
		c = smtp.NewClient(conn)
	}
	defer c.Close()
	if err := c.SendMail("a@sender.test", []string{"b@example.test", "c@example.test"}, strings.NewReader(message)); err != nil {
		return err
	}
	return c.Quit()
}

func TestSMTPServer(t *testing.T) {
	t.Parallel()
	w := smtptlstest.New(t)
	w.AddZone("example.test", smtptlstest.ZoneConfig{Signing: smtptlstest.NSEC})
	self, err := smtptlstest.SelfSigned("dane.example.test")
	if err != nil {
		t.Fatal(err)
	}
	pinned := func(cert *tls.Certificate) *tls.Config {
		// DANE-EE style: no PKIX, the exact certificate.
		return &tls.Config{
			ServerName:         "dane.example.test",
			InsecureSkipVerify: true,
			VerifyConnection: func(cs tls.ConnectionState) error {
				if !bytes.Equal(cs.PeerCertificates[0].Raw, cert.Leaf.Raw) {
					return errors.New("certificate mismatch")
				}
				return nil
			},
		}
	}
	tests := []struct {
		name    string
		host    string
		cfg     smtptlstest.SMTPConfig
		client  *tls.Config
		wantErr bool
		tls     bool
	}{
		{"STARTTLS with a CA certificate", "mx.example.test", smtptlstest.SMTPConfig{},
			&tls.Config{ServerName: "mx.example.test", RootCAs: w.CA().Pool()}, false, true},
		{"STARTTLS with a pinned self-signed certificate", "dane.example.test", smtptlstest.SMTPConfig{Certificate: self},
			pinned(self), false, true},
		{"TLS 1.2", "tls12.example.test", smtptlstest.SMTPConfig{},
			&tls.Config{ServerName: "tls12.example.test", RootCAs: w.CA().Pool(), MaxVersion: tls.VersionTLS12}, false, true},
		{"no STARTTLS: clear text", "clear.example.test", smtptlstest.SMTPConfig{NoSTARTTLS: true}, nil, false, false},
		{"no STARTTLS: a client requiring TLS fails", "clear2.example.test", smtptlstest.SMTPConfig{NoSTARTTLS: true},
			&tls.Config{ServerName: "clear2.example.test", RootCAs: w.CA().Pool()}, true, false},
		{"broken handshake", "broken.example.test", smtptlstest.SMTPConfig{BrokenHandshake: true},
			&tls.Config{ServerName: "broken.example.test", RootCAs: w.CA().Pool()}, true, false},
		{"CA certificate, client pins another", "pin.example.test", smtptlstest.SMTPConfig{}, pinned(self), true, false},
	}
	servers := make([]*smtptlstest.SMTPServer, len(tests))
	for i, tt := range tests {
		servers[i] = w.AddMX(tt.host, tt.cfg)
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := servers[i]
			err := send(t, w, tt.host, tt.client)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			ds := s.Deliveries()
			if tt.wantErr {
				if len(ds) != 0 {
					t.Errorf("delivered despite the error: %+v", ds)
				}
				return
			}
			if len(ds) != 1 {
				t.Fatalf("%d deliveries", len(ds))
			}
			d := ds[0]
			if d.From != "a@sender.test" || len(d.To) != 2 || d.To[1] != "c@example.test" || string(d.Data) != message {
				t.Errorf("delivery %+v", d)
			}
			if d.TLS != tt.tls {
				t.Errorf("TLS = %v", d.TLS)
			}
			if tt.tls {
				if d.ServerName != tt.client.ServerName {
					t.Errorf("SNI %q, want %q", d.ServerName, tt.client.ServerName)
				}
				want := uint16(tls.VersionTLS13)
				if tt.client.MaxVersion != 0 {
					want = tt.client.MaxVersion
				}
				if d.TLSVersion != want {
					t.Errorf("TLS version %x, want %x", d.TLSVersion, want)
				}
			} else if d.ServerName != "" || d.TLSVersion != 0 {
				t.Errorf("TLS details without TLS: %+v", d)
			}
			if s.Connections() < 1 {
				t.Errorf("Connections() = %d", s.Connections())
			}
		})
	}
}

// TestSMTPBrokenHandshake checks that the failure happens in the TLS
// handshake, after the server accepted STARTTLS.
func TestSMTPBrokenHandshake(t *testing.T) {
	t.Parallel()
	w := smtptlstest.New(t)
	s := w.AddMX("mx.example.test", smtptlstest.SMTPConfig{BrokenHandshake: true})
	conn, err := w.DialContext(context.Background(), "tcp", "mx.example.test:25")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(conn)
	expect := func(prefix string) {
		t.Helper()
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(line, prefix) {
				t.Fatalf("got %q, want %q", line, prefix)
			}
			if len(line) < 4 || line[3] != '-' {
				return
			}
		}
	}
	expect("220 ")
	fmt.Fprintf(conn, "EHLO client.test\r\n")
	expect("250")
	fmt.Fprintf(conn, "STARTTLS\r\n")
	expect("220 ")
	tc := tls.Client(conn, &tls.Config{ServerName: "mx.example.test", RootCAs: w.CA().Pool()})
	err = tc.Handshake()
	var rhe tls.RecordHeaderError
	if !errors.As(err, &rhe) {
		t.Errorf("want a TLS record error, got %v", err)
	}
	// SetConfig repairs the server for the next connection.
	s.SetConfig(smtptlstest.SMTPConfig{})
	if err := send(t, w, "mx.example.test", &tls.Config{ServerName: "mx.example.test", RootCAs: w.CA().Pool()}); err != nil {
		t.Fatal(err)
	}
	if ds := s.Deliveries(); len(ds) != 1 || !ds[0].TLS {
		t.Errorf("%+v", ds)
	}
	if s.Connections() != 2 {
		t.Errorf("Connections() = %d, want 2", s.Connections())
	}
}

// TestSMTPSetConfig switches STARTTLS off and back on at run time.
func TestSMTPSetConfig(t *testing.T) {
	t.Parallel()
	w := smtptlstest.New(t)
	s := w.AddMX("mx.example.test", smtptlstest.SMTPConfig{})
	cfg := &tls.Config{ServerName: "mx.example.test", RootCAs: w.CA().Pool()}
	s.SetConfig(smtptlstest.SMTPConfig{NoSTARTTLS: true})
	if err := send(t, w, "mx.example.test", cfg); err == nil {
		t.Errorf("STARTTLS offered after NoSTARTTLS")
	}
	other, err := w.CA().Issue(smtptlstest.CertOptions{}, "other.example.test")
	if err != nil {
		t.Fatal(err)
	}
	s.SetConfig(smtptlstest.SMTPConfig{Certificate: other})
	if err := send(t, w, "mx.example.test", cfg); err == nil {
		t.Errorf("certificate for another name accepted")
	}
	s.SetConfig(smtptlstest.SMTPConfig{})
	if err := send(t, w, "mx.example.test", cfg); err != nil {
		t.Error(err)
	}
	// Deliveries returns copies.
	ds := s.Deliveries()
	ds[0].Data[0] = 'X'
	if s.Deliveries()[0].Data[0] == 'X' {
		t.Errorf("Deliveries shares memory")
	}
}

func TestSMTPOversizeMessage(t *testing.T) {
	t.Parallel()
	w := smtptlstest.New(t)
	s := w.AddMX("mx.example.test", smtptlstest.SMTPConfig{NoSTARTTLS: true})
	conn, err := w.DialContext(context.Background(), "tcp", "mx.example.test:25")
	if err != nil {
		t.Fatal(err)
	}
	c := smtp.NewClient(conn)
	defer c.Close()
	big := strings.Repeat(strings.Repeat("x", 998)+"\r\n", 11<<10)
	err = c.SendMail("a@sender.test", []string{"b@example.test"}, strings.NewReader(big))
	var se *smtp.SMTPError
	if !errors.As(err, &se) || se.Code != 552 {
		t.Errorf("want 552, got %v", err)
	}
	if len(s.Deliveries()) != 0 {
		t.Errorf("oversize message recorded")
	}
}
