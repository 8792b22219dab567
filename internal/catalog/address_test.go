package catalog

import (
	"regexp"
	"strings"
	"testing"
)

// An email address in a reply is chosen by people: the recipient's local part,
// our return path. What the reply decides must not depend on it. Every dev row
// of the corpus that names an address is classified again with each address's
// local part replaced by words the rules know ("spam", "relay", "sender",
// "unknown", …); the verdict must not move. Before the matcher skipped words
// inside addresses, 805 of these 11,458 probes moved.
func TestAddressesDoNotDecide(t *testing.T) {
	t.Parallel()
	c := setup(t)
	addr := regexp.MustCompile(`[A-Za-z0-9_%+-]+(\.[A-Za-z0-9_%+-]+)*@([A-Za-z0-9-]+\.)+[A-Za-z]{2,}`)
	locals := []string{"spam", "relay", "sender", "blocked", "policy", "quota", "full", "unknown", "invalid",
		"noreply", "user", "abuse", "mailbox.full", "no.such.user", "ip.team", "temp", "try.again"}
	probes, moved := 0, 0
	for _, r := range readReplies(t) {
		if r.split != "dev" || !addr.MatchString(r.reply) {
			continue
		}
		want := Verdict(c.Classify(r.reply, Hints{}))
		for _, local := range locals {
			probe := addr.ReplaceAllStringFunc(r.reply, func(a string) string {
				return local + a[strings.IndexByte(a, '@'):]
			})
			probes++
			if got := Verdict(c.Classify(probe, Hints{})); got != want {
				moved++
				if moved <= 10 {
					t.Errorf("%s: %s with the local part %q, %s without: %s", r.id, got, local, want, probe)
				}
			}
		}
	}
	if probes < 10000 {
		t.Fatalf("only %d probes: the corpus lost its addresses?", probes)
	}
	if moved > 0 {
		t.Errorf("%d of %d probes changed their verdict with the address's local part alone", moved, probes)
	}
}

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

func TestAddressSpans(t *testing.T) {
	for _, tc := range []struct {
		text string
		want []string
	}{
		{"550 <a@b.example> unknown", []string{"a@b.example"}},
		{"not allowed...x@yourdomain.com", []string{"x@yourdomain.com"}},
		{"<user@example.com>：未找到主機", []string{"user@example.com"}},
		{"「news@lists.example.com」というリスト", []string{"news@lists.example.com"}},
		{"to a@x.example and b@y.example", []string{"a@x.example", "b@y.example"}},
		{"no address", nil},
	} {
		var got []string
		for _, sp := range addressSpans(tc.text, nil) {
			got = append(got, tc.text[sp.lo:sp.hi])
		}
		if len(got) != len(tc.want) {
			t.Errorf("addressSpans(%q) = %q, want %q", tc.text, got, tc.want)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("addressSpans(%q) = %q, want %q", tc.text, got, tc.want)
			}
		}
	}
}
