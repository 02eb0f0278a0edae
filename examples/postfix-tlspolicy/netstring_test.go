package main

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestReadNetstring(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    []string // payloads read before the end
		wantErr protocolKind
	}{
		{name: "one", in: "21:tlspolicy example.org,", want: []string{"tlspolicy example.org"}},
		{name: "pipelined", in: "3:a b,3:c d,", want: []string{"a b", "c d"}},
		{name: "empty payload", in: "0:,", want: []string{""}},
		{name: "clean end", in: "", want: nil},
		{name: "leading zero", in: "01:a,", wantErr: kindBadLength},
		{name: "no digits", in: ":a,", wantErr: kindBadLength},
		{name: "sign", in: "+1:a,", wantErr: kindBadLength},
		{name: "space in length", in: "1 :a,", wantErr: kindBadLength},
		{name: "over the cap", in: "1025:", wantErr: kindTooLong},
		{name: "huge length", in: strings.Repeat("9", 40) + ":", wantErr: kindTooLong},
		{name: "no comma", in: "1:ab", wantErr: kindNoComma},
		{name: "truncated payload", in: "5:ab", wantErr: kindIO},
		{name: "truncated length", in: "12", wantErr: kindIO},
		{name: "missing comma at end", in: "1:a", wantErr: kindIO},
		{name: "garbage after a good one", in: "1:a,x", want: []string{"a"}, wantErr: kindBadLength},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			br := bufio.NewReader(strings.NewReader(tc.in))
			var got []string
			var err error
			for {
				var p []byte
				p, err = readNetstring(br, DefaultMaxRequest)
				if err != nil {
					break
				}
				got = append(got, string(p))
			}
			if strings.Join(got, "|") != strings.Join(tc.want, "|") || len(got) != len(tc.want) {
				t.Errorf("payloads %q, want %q", got, tc.want)
			}
			if tc.wantErr == 0 {
				if err != io.EOF {
					t.Errorf("error %v, want io.EOF", err)
				}
				return
			}
			var pe *protocolError
			if !errors.As(err, &pe) || pe.Kind != tc.wantErr {
				t.Errorf("error %v, want kind %v", err, tc.wantErr)
			}
		})
	}
}

func TestAppendNetstring(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"NOTFOUND ", "9:NOTFOUND ,"},
		{"OK dane", "7:OK dane,"},
		{"", "0:,"},
	} {
		if got := string(appendNetstring(nil, tc.in)); got != tc.want {
			t.Errorf("appendNetstring(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// FuzzNetstring feeds arbitrary bytes to the request parser: it must
// never panic, never return a payload over the cap, and every payload it
// returns must be exactly what re-encoding reproduces from the input
// (the parser accepts only the canonical form).
func FuzzNetstring(f *testing.F) {
	for _, s := range []string{"21:tlspolicy example.org,", "0:,", "3:a b,3:c d,", "01:a,", "1025:", "5:ab"} {
		f.Add([]byte(s))
	}
	const max = 64
	f.Fuzz(func(t *testing.T, in []byte) {
		br := bufio.NewReader(bytes.NewReader(in))
		consumed := 0
		for {
			p, err := readNetstring(br, max)
			if err != nil {
				var pe *protocolError
				if err != io.EOF && !errors.As(err, &pe) {
					t.Fatalf("untyped error %T %v", err, err)
				}
				return
			}
			if len(p) > max {
				t.Fatalf("payload of %d bytes over the cap %d", len(p), max)
			}
			enc := appendNetstring(nil, string(p))
			if !bytes.HasPrefix(in[consumed:], enc) {
				t.Fatalf("payload %q does not re-encode to the input %q", p, in[consumed:])
			}
			consumed += len(enc)
		}
	})
}
