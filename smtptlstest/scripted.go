package smtptlstest

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
)

// scripted is the SMTP server of SMTPConfig.BrokenHandshake, Stall, EHLO
// and the greeting and EHLO Replies: a small cleartext server whose every step a test can
// take away. It stops at the Stall stage and holds the connection until
// the client closes it or the World closes.
func (s *SMTPServer) scripted(c net.Conn, cfg SMTPConfig) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(60 * time.Second))
	br := bufio.NewReaderSize(io.LimitReader(c, maxMessageBytes+(64<<10)), 1024)
	stall := func() {
		// Read (and discard) until the client gives up.
		io.Copy(io.Discard, br)
	}
	reply := func(stage, def string) {
		if r := cfg.Replies[stage]; r != "" {
			def = r
		}
		io.WriteString(c, def+"\r\n")
	}
	if cfg.Stall == "greeting" {
		stall()
		return
	}
	reply("greeting", "220 "+s.host+" ESMTP smtptlstest")
	ehlo := cfg.EHLO
	if ehlo == nil {
		ehlo = []string{"PIPELINING", "8BITMIME", "STARTTLS"}
	}
	var d Delivery
	hello := ""
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return
		}
		cmd := strings.TrimRight(string(line), "\r\n")
		verb, arg, _ := strings.Cut(cmd, " ")
		switch verb = strings.ToUpper(verb); verb {
		case "EHLO":
			hello = arg
			if cfg.Stall == "EHLO" {
				stall()
				return
			}
			if r := cfg.Replies["EHLO"]; r != "" {
				io.WriteString(c, r+"\r\n")
				continue
			}
			var b strings.Builder
			b.WriteString("250")
			if len(ehlo) > 0 {
				b.WriteString("-")
			} else {
				b.WriteString(" ")
			}
			b.WriteString(s.host + "\r\n")
			for i, e := range ehlo {
				sep := "-"
				if i == len(ehlo)-1 {
					sep = " "
				}
				b.WriteString("250" + sep + e + "\r\n")
			}
			io.WriteString(c, b.String())
		case "HELO":
			hello = arg
			io.WriteString(c, "250 "+s.host+"\r\n")
		case "STARTTLS":
			io.WriteString(c, "220 2.0.0 Ready to start TLS\r\n")
			if cfg.BrokenHandshake {
				// Wait for the ClientHello, so that the client reads
				// our garbage rather than a reset.
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				buf := make([]byte, 4096)
				br.Read(buf)
				io.WriteString(c, "this is not TLS\r\n\x00\x00\x00\x00")
				return
			}
			stall()
			return
		case "MAIL":
			d = Delivery{From: addrArg(arg), Hello: hello}
			reply("MAIL", "250 2.1.0 OK")
		case "RCPT":
			to := addrArg(arg)
			r := cfg.Replies["RCPT "+to]
			if r == "" {
				r = cfg.Replies["RCPT"]
			}
			if r == "" {
				r = "250 2.1.5 OK"
				d.To = append(d.To, to)
			}
			io.WriteString(c, r+"\r\n")
		case "DATA":
			io.WriteString(c, "354 Go ahead\r\n")
			var data bytes.Buffer
			for {
				l, err := br.ReadSlice('\n')
				if err != nil {
					return
				}
				if string(l) == ".\r\n" {
					break
				}
				data.Write(bytes.TrimPrefix(l, []byte(".")))
			}
			if cfg.Stall == "DATA" {
				stall()
				return
			}
			d.Data = data.Bytes()
			if r := cfg.Replies["DATA"]; r != "" && r[0] != '2' {
				io.WriteString(c, r+"\r\n")
				continue
			}
			s.mu.Lock()
			s.deliveries = append(s.deliveries, d)
			s.mu.Unlock()
			reply("DATA", "250 2.0.0 OK")
		case "RSET", "NOOP":
			io.WriteString(c, "250 2.0.0 OK\r\n")
		case "QUIT":
			io.WriteString(c, "221 2.0.0 Bye\r\n")
			return
		default:
			fmt.Fprintf(c, "502 5.5.1 %s not implemented\r\n", verb)
		}
	}
}

// addrArg returns the address between the angle brackets of a MAIL or
// RCPT argument.
func addrArg(arg string) string {
	_, a, _ := strings.Cut(arg, "<")
	a, _, _ = strings.Cut(a, ">")
	return a
}
