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

func sameEntry(a, b *entry) bool {
	return a.domain == b.domain && a.id == b.id && a.fetched.Equal(b.fetched) && a.expires.Equal(b.expires) &&
		a.used.Equal(b.used) && a.failAt.Equal(b.failAt) && a.failID == b.failID && a.failType == b.failType &&
		a.failKind == b.failKind && bytes.Equal(a.body, b.body) && a.policy.Mode == b.policy.Mode
}

// TestEntryRoundTrip: an entry decodes to itself, with times to the
// nanosecond, and peekEntryString reads its expiry and mode.
func TestEntryRoundTrip(t *testing.T) {
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
			data := tt.e.marshal()
			got, err := unmarshalEntry(data)
			if err != nil {
				t.Fatalf("%v\n%q", err, data)
			}
			if !sameEntry(got, tt.e) {
				t.Errorf("round trip:\n got %+v\nwant %+v", got, tt.e)
			}
			exp, mode, ok := peekEntryString(string(data))
			if !ok || !exp.Equal(tt.e.expires) || mode != tt.e.policy.Mode {
				t.Errorf("peekEntryString = %v %q %v", exp, mode, ok)
			}
		})
	}
}

// TestEntryOtherVersionIsMiss: a Client that finds an entry in another
// format in its Cache (here the line-per-field format of an unreleased
// development version) treats it as a miss: it fetches the policy and
// overwrites the entry with the current format.
func TestEntryOtherVersionIsMiss(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := testEntry(t, "example.com", Enforce, time.Hour, t0.Add(-time.Hour/2))
	other := []byte("smtptls-mtasts 1\nexpires " + e.expires.Format(time.RFC3339) + "\nmode enforce\ndomain example.com\nid " + e.id +
		"\nfetched " + e.fetched.Format(time.RFC3339) + "\nused " + e.used.Format(time.RFC3339) + "\nfail - - - 0\nbody " +
		strconv.Itoa(len(e.body)) + "\n" + string(e.body))
	if _, err := unmarshalEntry(other); err == nil {
		t.Fatal("entry in another format decoded")
	}
	if _, _, ok := peekEntryString(string(other)); ok {
		t.Error("peekEntryString read an entry in another format")
	}
	m := NewMemoryCache(0)
	if err := m.Put(ctx, "example.com", other); err != nil {
		t.Fatal(err)
	}
	c := &Client{Cache: m, Now: func() time.Time { return t0 }, Logger: slog.New(slog.DiscardHandler)}
	c.init()
	if got := c.load(ctx, "example.com"); got != nil {
		t.Fatalf("entry in another format loaded: %+v", got)
	}
	c.put(ctx, e)
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
