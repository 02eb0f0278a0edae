package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// protocolKind says how a request broke the netstring framing.
type protocolKind uint8

const (
	// kindBadLength: the length is empty, has a leading zero or a byte
	// that is not a digit.
	kindBadLength protocolKind = iota + 1
	// kindTooLong: the length exceeds the server's request cap.
	kindTooLong
	// kindNoComma: the payload is not followed by ",".
	kindNoComma
	// kindIO: the connection failed or ended inside a netstring.
	kindIO
)

var protocolKindNames = [...]string{
	kindBadLength: "bad netstring length",
	kindTooLong:   "netstring too long",
	kindNoComma:   "netstring not terminated by a comma",
	kindIO:        "read failed inside a netstring",
}

func (k protocolKind) String() string {
	if int(k) < len(protocolKindNames) && protocolKindNames[k] != "" {
		return protocolKindNames[k]
	}
	return "protocolKind(" + strconv.Itoa(int(k)) + ")"
}

// protocolError is a request that breaks the netstring framing. The
// stream cannot be resynchronised after one: the connection is closed.
type protocolError struct {
	Kind protocolKind
	// Max is the request cap, for kindTooLong.
	Max int
	// Err is the read error, for kindIO.
	Err error
}

func (e *protocolError) Error() string {
	switch {
	case e.Kind == kindTooLong:
		return fmt.Sprintf("socketmap: %s (cap %d bytes)", e.Kind, e.Max)
	case e.Err != nil:
		return "socketmap: " + e.Kind.String() + ": " + e.Err.Error()
	}
	return "socketmap: " + e.Kind.String()
}

func (e *protocolError) Unwrap() error { return e.Err }

// readNetstring reads one netstring ("<length>:<payload>,") of at most max
// payload bytes. The length must be decimal without leading zeros (a
// lone "0" is fine), as D. J. Bernstein's definition, which Postfix's
// socketmap_table(5) uses, requires. The length is checked against max
// digit by digit, so a hostile length can neither overflow nor make the
// server allocate more than max bytes.
//
// It returns io.EOF when the stream ends cleanly before the first byte,
// and a *protocolError for everything else that is not a netstring.
func readNetstring(br *bufio.Reader, max int) ([]byte, error) {
	n, digits := 0, 0
	for {
		c, err := br.ReadByte()
		if err != nil {
			if digits == 0 && errors.Is(err, io.EOF) {
				return nil, io.EOF
			}
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, &protocolError{Kind: kindIO, Err: err}
		}
		if c == ':' {
			if digits == 0 {
				return nil, &protocolError{Kind: kindBadLength}
			}
			break
		}
		if c < '0' || c > '9' || (digits == 1 && n == 0) {
			return nil, &protocolError{Kind: kindBadLength}
		}
		n = n*10 + int(c-'0')
		digits++
		if n > max {
			return nil, &protocolError{Kind: kindTooLong, Max: max}
		}
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(br, buf); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, &protocolError{Kind: kindIO, Err: err}
	}
	c, err := br.ReadByte()
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, &protocolError{Kind: kindIO, Err: err}
	}
	if c != ',' {
		return nil, &protocolError{Kind: kindNoComma}
	}
	return buf, nil
}

// appendNetstring appends s as a netstring to dst.
func appendNetstring(dst []byte, s string) []byte {
	dst = strconv.AppendInt(dst, int64(len(s)), 10)
	dst = append(dst, ':')
	dst = append(dst, s...)
	return append(dst, ',')
}
