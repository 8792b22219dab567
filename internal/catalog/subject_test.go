package catalog

import (
	"fmt"
	"strings"
	"testing"
)

// TestSubjectRails: a permanent recipient decision whose text names our side and no
// recipient becomes a sender-side one, one that names a part of the message and no
// recipient, mailbox or address the message's, whatever decided it (a rule, an
// enhanced code); a recipient word, or the rails' words inside an email address, leave
// it alone.
func TestSubjectRails(t *testing.T) {
	t.Parallel()
	c, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		reply     string
		wantClass Class
		wantRule  string // "" when any rule but the rail's may decide
	}{
		{"550 Reply-To address does not exist", ClassSenderAddressRejected, "scope.our_side"},
		{"550 SMTP account is disabled", ClassSenderAddressRejected, "scope.our_side"},
		{"The SMTP account is inactive", ClassSenderAddressRejected, ""},
		{"553 Return path address has been suspended", ClassSenderAddressRejected, "scope.our_side"},
		{"550 Originator rejected: no such user", ClassSenderAddressRejected, "scope.our_side"},
		{"554 5.7.1 From address rejected: no such user", ClassSenderAddressRejected, "scope.our_side"},
		// The recipient named: the recipient's failure, even beside our side's words.
		{"550 5.1.1 <user@example.com>: Recipient address rejected: User unknown; from=<bounce@example.org> helo=<mx.example.org>", ClassRecipientUnknown, ""},
		// Our-side words inside an address are no one's side.
		{"550 sorry, sender@example.org mailbox <user@example.com> is inactive on this domain (#5.2.1)", ClassMailboxDisabled, ""},
		{"550 5.1.1 <helo-desk@example.com>: user unknown", ClassRecipientUnknown, ""},
		// "this address" is the recipient's, "your account" then only whose list it is.
		{"Amazon SES did not send the message to this address because it is on the suppression list for your account.", ClassMailboxDisabled, ""},
		// The message named, by a code that alone would say the recipient is unknown.
		{"550 5.1.1 Subject not found", ClassContentRejected, "scope.message"},
		{"550 5.1.1 Message header is invalid", ClassContentRejected, "scope.message"},
		{"554 5.2.1 Attachment type not allowed", ClassContentRejected, ""},
		// A holder word keeps the message rail off; bare "message" is prose around the code.
		{"550 5.1.1 user unknown in header To:", ClassRecipientUnknown, ""},
		{"550 5.1.1 message not delivered", ClassRecipientUnknown, ""},
		// Our side named beside the message: ours.
		{"550 5.1.1 Sender address in the From header does not exist", ClassSenderAddressRejected, ""},
		// Our side's quota or rate, worded like a full mailbox: ours, not a soft bounce.
		{"452 Sender quota exceeded", ClassRateLimited, "scope.our_side"},
		{"452 4.2.2 SMTP account storage full", ClassRateLimited, "scope.our_side"},
		{"452 4.2.2 The email account that you tried to reach is over quota", ClassMailboxFull, ""},
		// Not a recipient decision to begin with: the rail does not touch it.
		{"552 Your mailbox is full, you cannot send messages", ClassSenderAddressRejected, ""},
	} {
		cl := c.Classify(tc.reply, Hints{})
		if cl.Class != tc.wantClass || (tc.wantRule != "" && cl.Rule != tc.wantRule) {
			t.Errorf("%q: %s by %s, want %s %s", tc.reply, cl.Class, cl.Rule, tc.wantClass, tc.wantRule)
		}
		if (cl.Rule == ruleOurSide && cl.Scope != ScopeSender) || (cl.Rule == ruleMessage && cl.Scope != ScopeMessage) ||
			(strings.HasPrefix(cl.Rule, "scope.") && cl.Reason == "") {
			t.Errorf("%q: rail %s decided with scope %s, reason %q", tc.reply, cl.Rule, cl.Scope, cl.Reason)
		}
	}
}

// TestSubjectProbes crosses nouns with predicates and codes ("<code> <noun> <predicate>")
// and holds what the verdict may be: our side's nouns with the recipient rules'
// predicates (792 replies) and the message's parts (800) never suppress; our side's
// nouns with quota and rate words (756) do not even soft-bounce, which counts toward the
// recipient's soft-threshold suppression; and the same predicates after the recipient's
// nouns (216) all still suppress, so the rails cost no recipient failure of this shape.
// Before the rails 126 of the 792, 222 of the 800 and 310 of the 756 went wrong.
func TestSubjectProbes(t *testing.T) {
	t.Parallel()
	c, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	ours := []string{"Sender address", "Sender", "Your sender address", "MAIL FROM address", "Envelope sender",
		"Return-Path", "Return path address", "Originator", "From address", "From: header address",
		"Reply-To address", "Sender domain", "Your domain", "Sending domain", "Your account", "SMTP account",
		"Your IP address", "Client host", "HELO hostname", "EHLO name", "Bounce address",
		"Envelope from domain", "Sender mailbox", "Authenticated user"}
	preds := []string{"does not exist", "unknown", "is invalid", "not found", "is disabled", "has been suspended",
		"is not valid", "rejected: no such user", "unverified", "is not registered", "is blacklisted"}
	notSuppress := func(v string) bool { return v != "suppress" }
	for _, g := range []struct {
		name                string
		nouns, preds, codes []string
		ok                  func(verdict string) bool
		want                int // probes in the grid
	}{
		{"our side", ours, preds, []string{"550", "553", "554 5.7.1"}, notSuppress, 792},
		{"the message", []string{"Message header", "Subject", "Subject line", "Attachment", "Message body",
			"Message-ID", "Date header", "MIME structure", "Header", "Line length", "Message size", "Encoding",
			"Character set", "Attachment type", "File name", "Message format"},
			[]string{"is invalid", "not allowed", "rejected", "unknown", "not found", "is missing",
				"does not exist", "is not valid", "is disabled", "not accepted"},
			[]string{"550", "554", "550 5.1.1", "554 5.2.1", "550 5.6.0"}, notSuppress, 800},
		{"our quota", []string{"Sender", "Sender mailbox", "Your account", "SMTP account", "Sending account",
			"Your domain", "Sending domain", "Your IP", "Client host", "Authenticated user", "Sender address",
			"Originator", "Return-Path address", "Envelope sender"},
			[]string{"quota exceeded", "is over quota", "is full", "mailbox full", "rate limit exceeded",
				"has exceeded its quota", "storage full", "too many messages", "receiving too fast"},
			[]string{"452", "552", "452 4.2.2", "552 5.2.2", "450", "550"},
			func(v string) bool { return v != "soft" && v != "suppress" }, 756},
		{"the recipient", []string{"Recipient address", "Recipient", "Mailbox", "User", "Addressee",
			"Destination address", "The email account that you tried to reach", "RCPT TO address", "Address"},
			preds[:8], // "unverified", "not registered", "blacklisted" are not a dead recipient
			[]string{"550", "553", "550 5.1.1"}, func(v string) bool { return v == "suppress" }, 216},
	} {
		probes := 0
		for _, n := range g.nouns {
			for _, p := range g.preds {
				for _, code := range g.codes {
					probes++
					reply := fmt.Sprintf("%s %s %s", code, n, p)
					if cl := c.Classify(reply, Hints{}); !g.ok(Verdict(cl)) {
						t.Errorf("%s: %q: %s (rule %s)", g.name, reply, Verdict(cl), cl.Rule)
					}
				}
			}
		}
		if probes != g.want {
			t.Errorf("%s: %d probes, want %d", g.name, probes, g.want)
		}
	}
}
