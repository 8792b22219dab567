package suppress

import (
	"encoding/json"
	"testing"
)

func TestHistoryJSONMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	for _, h := range []historyEntry{
		{At: 1, EventID: "generic:1", ESP: "generic", Action: "record"},
		{At: 1767225600000, Seq: 7, EventID: "sendgrid:x", ESP: "sendgrid", Action: "suppress", Class: "recipient_unknown", Rule: "generic.user_unknown", Code: "5.1.1", Reply: `550 5.1.1 <a@b.c>: "quoted" \ back & <tags>` + "\n\t\x01 é \u2028 \xff"},
	} {
		want, _ := json.Marshal(h)
		if got := h.appendJSON(nil); string(got) != string(want) {
			t.Errorf("appendJSON = %s\nencoding/json = %s", got, want)
		}
	}
}

func FuzzHistoryJSON(f *testing.F) {
	f.Add("550 5.1.1 <a@b.c>", "rule", int64(1), 0)
	f.Add("\xff\xfe<>&\u2028\"\\", "", int64(-5), 3)
	f.Fuzz(func(t *testing.T, reply, rule string, at int64, seq int) {
		h := historyEntry{At: at, Seq: seq, EventID: "generic:" + rule, ESP: "generic", Action: "soft", Rule: rule, Reply: reply}
		want, _ := json.Marshal(h)
		if got := h.appendJSON(nil); string(got) != string(want) {
			t.Fatalf("appendJSON = %q\nencoding/json = %q", got, want)
		}
	})
}
