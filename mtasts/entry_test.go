package mtasts

import (
	"bytes"
	"context"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/smtptls/smtptls/tlsrpt"
)

// marshalV1 is the version 1 encoder, kept to test that version 1 entries
// (a DirCache written by an older version) are still read.
func marshalV1(e *entry) []byte {
	var b bytes.Buffer
	line := func(k, v string) {
		b.WriteString(k + " " + v + "\n")
	}
	fmtTime := func(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
	b.WriteString(entryMagicV1)
	line("expires", fmtTime(e.expires))
	line("mode", string(e.policy.Mode))
	line("domain", e.domain)
	line("id", e.id)
	line("fetched", fmtTime(e.fetched))
	line("used", fmtTime(e.used))
	fail := "- - - 0"
	if !e.failAt.IsZero() {
		fail = fmtTime(e.failAt) + " " + e.failID + " " + string(e.failType) + " " + strconv.Itoa(int(e.failKind))
	}
	line("fail", fail)
	line("body", strconv.Itoa(len(e.body)))
	b.Write(e.body)
	return b.Bytes()
}

func sameEntry(a, b *entry) bool {
	return a.domain == b.domain && a.id == b.id && a.fetched.Equal(b.fetched) && a.expires.Equal(b.expires) &&
		a.used.Equal(b.used) && a.failAt.Equal(b.failAt) && a.failID == b.failID && a.failType == b.failType &&
		a.failKind == b.failKind && bytes.Equal(a.body, b.body) && a.policy.Mode == b.policy.Mode
}

// TestEntryVersions: both encodings decode to the same entry, with times
// to the nanosecond, and peekEntry reads both.
func TestEntryVersions(t *testing.T) {
	t.Parallel()
	fetched := t0.Add(123456789 * time.Nanosecond)
	failed := testEntry(t, "example.com", Testing, 24*time.Hour, fetched)
	failed.failAt, failed.failID, failed.failType, failed.failKind = fetched.Add(90*time.Second+500*time.Millisecond), "id2", tlsrpt.STSPolicyFetchError, KindHTTPStatus
	old := testEntry(t, "old.example", None, time.Hour, time.Date(1969, 7, 20, 20, 17, 40, 5, time.UTC))
	for _, tt := range []struct {
		name string
		e    *entry
	}{
		{"plain", testEntry(t, "example.com", Enforce, time.Hour, t0)},
		{"nanoseconds and a failed fetch", failed},
		{"before 1970", old},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, v := range []struct {
				name string
				data []byte
			}{{"v2", tt.e.marshal()}, {"v1", marshalV1(tt.e)}} {
				got, err := unmarshalEntry(v.data)
				if err != nil {
					t.Fatalf("%s: %v\n%q", v.name, err, v.data)
				}
				if !sameEntry(got, tt.e) {
					t.Errorf("%s round trip:\n got %+v\nwant %+v", v.name, got, tt.e)
				}
				exp, mode, ok := peekEntry(v.data)
				if !ok || !exp.Equal(tt.e.expires) || mode != tt.e.policy.Mode {
					t.Errorf("%s: peekEntry = %v %q %v", v.name, exp, mode, ok)
				}
			}
		})
	}
}

// TestEntryV1Upgrade: a Client reads a version 1 entry from its Cache and
// applies the policy; the next write stores version 2.
func TestEntryV1Upgrade(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := t0
	m := NewMemoryCache(0)
	e := testEntry(t, "example.com", Enforce, time.Hour, now.Add(-time.Hour/2))
	if err := m.Put(ctx, "example.com", marshalV1(e)); err != nil {
		t.Fatal(err)
	}
	c := &Client{Cache: m, Now: func() time.Time { return now }, Logger: slog.New(slog.DiscardHandler)}
	c.init()
	got := c.load(ctx, "example.com")
	if got == nil || !sameEntry(got, e) {
		t.Fatalf("version 1 entry not read: %+v", got)
	}
	c.put(ctx, got)
	data, err := m.Get(ctx, "example.com")
	if err != nil || !bytes.HasPrefix(data, []byte(entryMagic)) {
		t.Fatalf("rewritten entry %q, %v", data, err)
	}
}

func TestParseTime(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"0", time.Unix(0, 0), true},
		{"1772366400", time.Unix(1772366400, 0), true},
		{"1772366400.5", time.Unix(1772366400, 500000000), true},
		{"1772366400.000000001", time.Unix(1772366400, 1), true},
		{"-1.5", time.Unix(-1, 500000000), true},
		{"", time.Time{}, false},
		{"-", time.Time{}, false},
		{"+1", time.Time{}, false},
		{"1.", time.Time{}, false},
		{".5", time.Time{}, false},
		{"1.1234567890", time.Time{}, false},
		{"1.-5", time.Time{}, false},
		{"1e9", time.Time{}, false},
		{"99999999999999999999", time.Time{}, false},
	} {
		t.Run(tt.in, func(t *testing.T) {
			got, ok := parseTime(tt.in)
			if ok != tt.ok || (ok && !got.Equal(tt.want)) {
				t.Errorf("parseTime(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
			}
			if ok {
				if back := string(appendTime(nil, got)); back != tt.in {
					t.Errorf("appendTime(%v) = %q, want %q", got, back, tt.in)
				}
			}
		})
	}
}
