package policy

// Disagreement is one event on which a shadow policy would have decided otherwise.
type Disagreement struct {
	EventID    string `json:"event_id"`
	Recipient  string `json:"recipient"` // local part redacted
	Class      string `json:"class"`
	Live       Action `json:"live"`
	Shadow     Action `json:"shadow"`
	LiveRule   string `json:"live_rule"`
	ShadowRule string `json:"shadow_rule"`
}

// Differs reports whether two decisions have a different effect.
func Differs(a, b Decision) bool {
	return a.Action != b.Action || (a.Action == ActionSuppress && (a.SuppressTTL != b.SuppressTTL || a.Global != b.Global))
}
