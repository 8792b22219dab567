package guard

import (
	stdjson "encoding/json"
	"testing"

	gojson "github.com/goccy/go-json"

	"github.com/reboundhq/rebound/internal/suppress"
)

// TestHeldChangeJSON holds the held change's encoding (goccy/go-json, for speed) to
// encoding/json's, byte for byte, so pending changes read the same whichever wrote them.
func TestHeldChangeJSON(t *testing.T) {
	for _, c := range []suppress.Change{
		{},
		{EventID: "sendgrid:abc-123", ESP: "sendgrid", Tenant: "t7", Address: "h:0123456789abcdef", Action: suppress.ActionSuppress,
			Reason: "recipient_unknown", Class: "recipient_unknown", Rule: "rfc3463.5.1.1", Code: "5.1.1",
			Reply: "550 5.1.1 \"quoted\" <a@b.example> \u2028 \\ é \x01", SuppressTTL: 3600e9, SoftWindow: 7 * 24 * 3600e9, SoftThreshold: 3,
			Protected: true, EventTenant: "t7", At: 1764490000000, Released: true, ExpiresAt: 1764490001234},
	} {
		want, err := stdjson.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		got, err := gojson.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("goccy/go-json wrote\n%s\nencoding/json\n%s", got, want)
		}
	}
}
