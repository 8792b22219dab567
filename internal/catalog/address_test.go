package catalog

import (
	"regexp"
	"strings"
	"testing"

	"github.com/reboundhq/rebound/internal/catalog/internal/opaque"
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

// A receiver names its machines as it likes ("spam-in1.mx.example.net",
// "relay.mail.example.org"), and a reply that names a host is about what happened
// there, not about its name. Every dev row that names a host (found here by a
// pattern of its own, not by hostSpans) is classified again with each host's first
// label replaced by words the rules know; the verdict must not move. The names of
// block lists (zen.spamhaus.org) are what their replies say, so they are not
// probed. Before the matcher and the fallback model skipped words inside host
// names, 320 of these 9,095 probes moved.
func TestHostNamesDoNotDecide(t *testing.T) {
	t.Parallel()
	c := setup(t)
	host := regexp.MustCompile(`[A-Za-z][A-Za-z0-9-]*((\.[A-Za-z0-9-]+)*\.(com|net|org|edu|de|fr|uk|jp|cn|ru|nl|it|es|pl|br|example|info|biz|io|cz|hu|at|ch|be|se|no|dk|fi|au|ca|kr|tw|in))\b`)
	words := []string{"spam", "relay", "sender", "blocked", "policy", "quota", "full", "unknown", "invalid",
		"user", "abuse", "mailbox-full", "no-such-user", "ip", "temp", "smtp-auth", "tls"}
	probes, moved := 0, 0
	for _, r := range readReplies(t) {
		if r.split != "dev" {
			continue
		}
		// Whole host names only: not a part of an address, a path or a longer
		// dotted word ("help/quota.com.html").
		var names [][]int
		for _, m := range host.FindAllStringSubmatchIndex(r.reply, -1) {
			lo, hi := m[0], m[1]
			if lo > 0 && strings.ContainsRune("@.-/=_", rune(r.reply[lo-1])) || lo > 0 && isAlnum(r.reply[lo-1]) ||
				hi < len(r.reply) && (r.reply[hi] == '@' || r.reply[hi] == '.' && hi+1 < len(r.reply) && isAlnum(r.reply[hi+1])) ||
				opaque.NamesAList(r.reply[lo:hi]) {
				continue
			}
			names = append(names, m)
		}
		if len(names) == 0 {
			continue
		}
		want := Verdict(c.Classify(r.reply, LabelledHints(r.reply)))
		for _, w := range words {
			var b strings.Builder
			last := 0
			for _, m := range names {
				b.WriteString(r.reply[last:m[0]])
				b.WriteString(w)
				last = m[2] // the name from its second label on
			}
			b.WriteString(r.reply[last:])
			probe := b.String()
			probes++
			if got := Verdict(c.Classify(probe, LabelledHints(probe))); got != want {
				moved++
				if moved <= 10 {
					t.Errorf("%s: %s with the first label %q, %s without: %s", r.id, got, w, want, probe)
				}
			}
		}
	}
	if probes < 8000 {
		t.Fatalf("only %d probes: the corpus lost its host names?", probes)
	}
	if moved > 0 {
		t.Errorf("%d of %d probes changed their verdict with a host name's first label alone", moved, probes)
	}
}

func isAlnum(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9'
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
