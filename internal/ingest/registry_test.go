package ingest

import (
	"errors"
	"strings"
	"testing"
)

func TestAdaptersChecksTheList(t *testing.T) {
	t.Parallel()
	generic := func(Env) (Adapter, error) { return NewGeneric(""), nil }
	broken := func(Env) (Adapter, error) { return nil, errors.New("bad setting") }
	for _, tc := range []struct {
		name    string
		entries []Entry
		want    string // "" when the list builds
	}{
		{"one entry", []Entry{{"generic", generic}}, ""},
		{"named otherwise", []Entry{{"acme", generic}}, `webhook acme: its adapter answers to "generic"`},
		{"listed twice", []Entry{{"generic", generic}, {"generic", generic}}, "webhook generic: listed twice"},
		{"factory fails", []Entry{{"acme", broken}}, "webhook acme: bad setting"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			as, err := Adapters(Env{Getenv: func(string) string { return "" }}, tc.entries)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Adapters: %v", err)
			case tc.want == "" && len(as) != len(tc.entries):
				t.Fatalf("Adapters built %d adapters, want %d", len(as), len(tc.entries))
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Adapters error = %v, want %q", err, tc.want)
			}
		})
	}
}
