package alert

import "testing"

func TestIDCarries(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		id   string
		want bool
	}{
		{"ses:0100-feedback:bob@example.com", true},
		{"ses:0100-feedback:Bob@Example.COM", true},
		{"ses:0100-feedback:jimbob@example.com", false},
		{"ses:0100-feedback:bob@example.com.au", false},
		{"resend:msg_1:bob@example.com:x", true},
		{"generic:abc", false},
	} {
		if got := idCarries(tt.id, "bob@example.com"); got != tt.want {
			t.Errorf("idCarries(%q) = %v, want %v", tt.id, got, tt.want)
		}
	}
}
