package events

import (
	"strings"
	"testing"
)

func TestRedactAddresses(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"550 5.1.1 <dave@example.com>: User unknown", "550 5.1.1 <***@example.com>: User unknown"},
		{"to a.b+c@x.org and d@y.net", "to ***@x.org and ***@y.net"},
		{"no address here", "no address here"},
		{"lone @ sign and trailing@", "lone @ sign and trailing@"},
		{"530 5.7.0 Authentication required", "530 5.7.0 Authentication required"},
	}
	for _, tt := range tests {
		if got := RedactAddresses(tt.in); got != tt.want {
			t.Errorf("RedactAddresses(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func FuzzRedactAddresses(f *testing.F) {
	f.Add("550 <a@b.c> x@y.z")
	f.Fuzz(func(t *testing.T, s string) {
		got := RedactAddresses(s)
		if strings.Count(got, "@") != strings.Count(s, "@") {
			t.Fatalf("changed the number of @: %q -> %q", s, got)
		}
		if a, err := NormalizeAddress(s); err == nil && !strings.Contains(got, "***@") && !strings.HasPrefix(a, "\"") {
			t.Fatalf("an address survived: %q -> %q", s, got)
		}
	})
}
