package catalog

import "testing"

func TestSenderHint(t *testing.T) {
	t.Parallel()
	c := setup(t)
	const ours = "bounces@mail.acme.example"
	for _, tc := range []struct {
		name, reply, sender string
		want, rule          string
	}{
		{"our address opens the reply", "553 <bounces@mail.acme.example> Invalid email address.", ours, "alert", ruleOurAddress},
		{"case does not matter", "550 <Bounces@Mail.Acme.Example>... User unknown", ours, "alert", ruleOurAddress},
		{"no sender known", "553 <bounces@mail.acme.example> Invalid email address.", "", "suppress", ""},
		{"another address", "553 <jdoe@example.org> Invalid email address.", ours, "suppress", ""},
		{"ours and the recipient's", "550 <bounces@mail.acme.example>: <jdoe@example.org> user unknown", ours, "suppress", ""},
		{"a greeting names us", "550 Hello bounces@mail.acme.example, the account you tried to reach does not exist", ours, "suppress", ""},
		{"transient: our quota, not a soft bounce", "452 <bounces@mail.acme.example> mailbox full", ours, "alert", ruleOurAddress},
		{"already ours by its words", "550 <bounces@mail.acme.example>: Sender address rejected: Domain not found", ours, "alert", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cl := c.Classify(tc.reply, Hints{Sender: tc.sender})
			if got := Verdict(cl); got != tc.want || (tc.rule != "" && cl.Rule != tc.rule) {
				t.Fatalf("Classify(%q, sender %q) = %s by %s (%s); want %s by %q", tc.reply, tc.sender, got, cl.Rule, cl.Reason, tc.want, tc.rule)
			}
		})
	}
}

func TestLabelledHints(t *testing.T) {
	for reply, want := range map[string]string{
		"553 <sender@example.org> Invalid email address.":    "sender@example.org",
		"550 <user@example.com>: from <Sender@Example.COM>.": "Sender@Example.COM",
		"550 <user@example.com> unknown":                     "",
		"550 mysender@example.com unknown":                   "",
		"no address at all":                                  "",
	} {
		if got := LabelledHints(reply).Sender; got != want {
			t.Errorf("LabelledHints(%q).Sender = %q, want %q", reply, got, want)
		}
	}
}
