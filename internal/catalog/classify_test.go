package catalog

import (
	"strconv"
	"strings"
	"testing"
)

type classifyCase struct {
	name      string
	reply     string
	hints     Hints
	class     Class
	scope     Scope
	permanent bool
	rule      string // optional: the deciding rule
}

func runClassify(t *testing.T, cases []classifyCase) {
	t.Helper()
	c := setup(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := c.Classify(tc.reply, tc.hints)
			if got.Class != tc.class || got.Scope != tc.scope || got.Permanent != tc.permanent {
				t.Errorf("Classify(%q) = %s/%s permanent=%v (rule %s), want %s/%s permanent=%v",
					tc.reply, got.Class, got.Scope, got.Permanent, got.Rule, tc.class, tc.scope, tc.permanent)
			}
			if tc.rule != "" && got.Rule != tc.rule {
				t.Errorf("Classify(%q) decided by %s, want %s", tc.reply, got.Rule, tc.rule)
			}
			if got.Confidence < 0 || got.Confidence > 1 {
				t.Errorf("confidence %v outside 0..1", got.Confidence)
			}
		})
	}
}

// TestClassifyKeyCases are the cases the worker's policy depends on most.
func TestClassifyKeyCases(t *testing.T) {
	t.Parallel()
	runClassify(t, []classifyCase{
		{"530 auth required", "530 5.7.0 Authentication Required", Hints{}, ClassAuthRequired, ScopeSender, true, ""},
		{"530 bare", "530 Authentication required", Hints{}, ClassAuthRequired, ScopeSender, true, ""},
		{"530 code only", "530", Hints{}, ClassAuthRequired, ScopeSender, true, "basic.530"},
		{"530 starttls", "530 5.7.0 Must issue a STARTTLS command first", Hints{}, ClassTLSRequired, ScopeSender, true, "generic.starttls_required"},
		{"535", "535 5.7.8 Error: authentication failed: UGFzc3dvcmQ6", Hints{}, ClassAuthFailed, ScopeSender, true, ""},
		{"535 code only", "535", Hints{}, ClassAuthFailed, ScopeSender, true, "basic.535"},
		{"534", "534 5.7.9 Authentication mechanism is too weak", Hints{}, ClassAuthFailed, ScopeSender, true, ""},
		{"538", "538", Hints{}, ClassAuthRequired, ScopeSender, true, "basic.538"},
		{"454 4.7.0", "454 4.7.0 Temporary authentication failure", Hints{}, ClassAuthFailed, ScopeSender, false, ""},
		{"454 code only", "454 4.7.0", Hints{}, ClassAuthFailed, ScopeSender, false, "basic.454"},
		{"5.1.1", "550 5.1.1 <x@example.com>: Recipient address rejected: User unknown in virtual mailbox table", Hints{}, ClassRecipientUnknown, ScopeRecipient, true, ""},
		{"5.1.1 code only", "550 5.1.1", Hints{}, ClassRecipientUnknown, ScopeRecipient, true, "enhanced.5.1.1"},
		{"5.1.10 null MX", "556 5.1.10 Recipient address has null MX", Hints{}, ClassDomainInvalid, ScopeRecipient, true, ""},
		{"5.1.2", "550 5.1.2 Bad destination system address", Hints{}, ClassDomainInvalid, ScopeRecipient, true, ""},
		{"5.2.1", "550 5.2.1 mailbox disabled", Hints{}, ClassMailboxDisabled, ScopeRecipient, true, ""},
		{"4.2.2 full", "452 4.2.2 Mailbox full", Hints{}, ClassMailboxFull, ScopeRecipient, false, ""},
		{"5.2.2 full is transient", "552 5.2.2 Mailbox full", Hints{}, ClassMailboxFull, ScopeRecipient, false, ""},
		{"5.2.2 code only", "552 5.2.2", Hints{}, ClassMailboxFull, ScopeRecipient, false, "enhanced.5.2.2"},
		{"Yahoo TSS04", "421 4.7.0 [TSS04] Messages from 192.0.2.1 temporarily deferred due to unexpected volume or user complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes", Hints{}, ClassRateLimited, ScopeSender, false, "yahoo.tss04"},
		{"Gmail 4.7.28", "421-4.7.28 [192.0.2.1] Our system has detected an unusual rate of unsolicited mail originating from your IP address. - gsmtp", Hints{}, ClassRateLimited, ScopeSender, false, "gmail.unsolicited_rate"},
		{"DMARC 5.7.26", "550-5.7.26 Unauthenticated email from example.com is not accepted due to domain's DMARC policy. - gsmtp", Hints{}, ClassSenderAuthPolicy, ScopeSender, true, ""},
		{"5.7.26 code only", "550 5.7.26", Hints{}, ClassSenderAuthPolicy, ScopeSender, true, "enhanced.5.7.26"},
		{"5.7.23 SPF", "550 5.7.23", Hints{}, ClassSenderAuthPolicy, ScopeSender, true, ""},
		{"5.7.25 PTR", "550 5.7.25", Hints{}, ClassSenderAuthPolicy, ScopeSender, true, ""},
		{"5.7.27", "550 5.7.27", Hints{}, ClassSenderAuthPolicy, ScopeSender, true, ""},
		{"5.3.4", "552 5.3.4 Message size exceeds fixed limit", Hints{}, ClassMessageTooLarge, ScopeMessage, true, ""},
		{"5.3.4 code only", "552 5.3.4", Hints{}, ClassMessageTooLarge, ScopeMessage, true, "enhanced.5.3.4"},
		{"Spamhaus", "554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org; https://www.spamhaus.org/query/ip/192.0.2.1", Hints{}, ClassReputationBlock, ScopeSender, true, "dnsbl.listed"},
		{"4.4.1", "451 4.4.1 No answer from host", Hints{}, ClassNetworkError, ScopeInfrastructure, false, ""},
		{"4.4.2", "421 4.4.2 Connection dropped", Hints{}, ClassNetworkError, ScopeInfrastructure, false, ""},
		{"4.4.7 expired", "4.4.7 Delivery time expired", Hints{}, ClassExpired, ScopeInfrastructure, false, ""},
		{"greylisting", "450 4.2.0 <x@example.com>: Recipient address rejected: Greylisted, see http://postgrey.schweikert.ch/help/example.com.html", Hints{}, ClassGreylisted, ScopeInfrastructure, false, "generic.greylisted"},
		{"greylisting 451", "451 4.7.1 Greylisting in action, please come back later", Hints{}, ClassGreylisted, ScopeInfrastructure, false, ""},
		{"relay denied", "554 5.7.1 <x@example.org>: Relay access denied", Hints{}, ClassRelayDenied, ScopeSender, true, ""},
		{"unknown text", "something odd happened", Hints{}, ClassUnknown, ScopeUnknown, false, "fallback.unknown"},
		{"unknown 5xx", "599 weird", Hints{}, ClassUnknown, ScopeUnknown, true, "fallback.unknown"},
		{"empty", "", Hints{}, ClassUnknown, ScopeUnknown, false, "fallback.unknown"},
		{"bare 550", "550 Requested action not taken", Hints{}, ClassUnknown, ScopeUnknown, true, "basic.550"},
		// Servers give 551 for refusals of us as often as for a moved user: alone it decides nothing.
		{"bare 551", "551 Try another server", Hints{}, ClassUnknown, ScopeUnknown, true, "basic.551"},
		{"551 user not local", "551 User not local; please try <ana@example.net>", Hints{}, ClassRecipientMoved, ScopeRecipient, true, "generic.moved"},
		{"hint only", "", Hints{Code: 550, Enhanced: "5.1.1"}, ClassRecipientUnknown, ScopeRecipient, true, "enhanced.5.1.1"},
		{"hint enhanced fills gap", "550 user unknown", Hints{Enhanced: "4.1.1"}, ClassRecipientUnknown, ScopeRecipient, false, ""},
		{"text beats hint", "550 5.7.1 blocked using zen.spamhaus.org", Hints{Enhanced: "5.1.1"}, ClassReputationBlock, ScopeSender, true, ""},
		{"auto reply", "I am out of the office until Monday", Hints{}, ClassAutoReply, ScopeMessage, false, ""},
		{"unregistered detail", "550 5.7.509 some new policy", Hints{}, ClassPolicyRejected, ScopeSender, true, "enhanced.5.7.0"},
	})
}

// TestClassifyTraps are the known traps of SMTP-CATALOG.md §5.4, each a
// reply whose code points one way and whose meaning is another.
func TestClassifyTraps(t *testing.T) {
	t.Parallel()
	runClassify(t, []classifyCase{
		{"GoDaddy IB607 is throttling despite 5.1.1",
			"550 5.1.1 <x@example.com> - 192.0.2.1 has sent to too many recipients this hour. IB607 <http://x.co/rlbounce>",
			Hints{}, ClassRateLimited, ScopeSender, false, "godaddy.ib607"},
		{"QQ frequency limited despite 550",
			"550 Ip frequency limited [V2VkIEFw Blocked IP 192.0.2.22]. http://service.mail.qq.com/cgi-bin/help?subtype=1&&id=20022",
			Hints{}, ClassRateLimited, ScopeSender, false, "qq.frequency"},
		{"Microsoft DBEB is an unknown recipient",
			"550 5.4.1 Recipient address rejected: Access denied. AS(201806281) [DB5EUR03FT.eop-EUR03.prod.protection.outlook.com]",
			Hints{}, ClassRecipientUnknown, ScopeRecipient, true, "microsoft.dbeb"},
		{"5.4.1 relay access denied",
			"550 5.4.1 Relay Access Denied ATTR35 [AM0PR01.prod.protection.outlook.com]",
			Hints{}, ClassRelayDenied, ScopeSender, true, "microsoft.relay_541"},
		{"550 5.7.1 alone is not the recipient",
			"550 5.7.1", Hints{}, ClassPolicyRejected, ScopeSender, true, "enhanced.5.7.1"},
		{"Gmail 5.7.1 low reputation",
			"550-5.7.1 [192.0.2.22 18] Our system has detected that this message is likely suspicious due to the very low reputation of the sending IP address. - gsmtp",
			Hints{}, ClassReputationBlock, ScopeSender, true, "gmail.low_reputation"},
		{"Gmail 5.7.1 unsolicited",
			"550-5.7.1 Our system has detected that this message is likely unsolicited mail. - gsmtp",
			Hints{}, ClassContentRejected, ScopeMessage, true, ""},
		{"Gmail 5.7.1 RFC 5322",
			"550-5.7.1 This message is not RFC 5322 compliant. There are multiple Subject headers. - gsmtp",
			Hints{}, ClassContentRejected, ScopeMessage, true, "gmail.format"},
		{"Outlook S3150 block list",
			"550 5.7.1 Unfortunately, messages from [192.0.2.1] weren't sent. Please contact your Internet service provider since part of their network is on our block list (S3150).",
			Hints{}, ClassReputationBlock, ScopeSender, true, "microsoft.blocklist_s3150"},
		{"iCloud CS01 content",
			"550 5.7.1 [CS01] Message rejected due to local policy. Please visit https://support.apple.com/en-us/HT204137",
			Hints{}, ClassContentRejected, ScopeMessage, true, "icloud.cs01"},
		{"Cox 5.1.0 sender rejected is sender side",
			"550 5.1.0 <bounce@mailer.example.com> sender rejected. Refer to Error Codes section at https://www.cox.com/residential/support/email-error-codes.html for more information. AUP#CXSNDR",
			Hints{}, ClassPolicyRejected, ScopeSender, true, "cox.sender_rejected"},
		{"Gmail 4.7.27 is SPF, not null MX",
			"421-4.7.27 Your email has been rate limited because SPF authentication didn't pass for this message. - gsmtp",
			Hints{RemoteHost: "gmail-smtp-in.l.google.com"}, ClassSenderAuthPolicy, ScopeSender, false, ""},
		{"Gmail 5.7.29 is TLS, not ARC",
			"550-5.7.29 Your email has been blocked because this message wasn't sent over a TLS connection. - gsmtp",
			Hints{RemoteHost: "gmail-smtp-in.l.google.com"}, ClassTLSRequired, ScopeSender, true, "gmail.tls"},
		{"Gmail 5.7.30 is DKIM, not REQUIRETLS",
			"550-5.7.30 Your email has been blocked because DKIM checks did not pass. - gsmtp",
			Hints{RemoteHost: "gmail-smtp-in.l.google.com"}, ClassSenderAuthPolicy, ScopeSender, true, "gmail.auth_codes"},
		{"452 too many recipients is throttling",
			"452 4.5.3 Too many recipients", Hints{}, ClassRateLimited, ScopeSender, false, ""},
		{"552 too many recipients is throttling, not quota",
			"552 Too many recipients", Hints{}, ClassRateLimited, ScopeSender, false, ""},
		{"Yahoo TSS09 permanent reputation",
			"553 5.7.2 [TSS09] All messages from 192.0.2.25 will be permanently deferred; Retrying will NOT succeed.",
			Hints{}, ClassReputationBlock, ScopeSender, true, "yahoo.tss09"},
		{"Yahoo TSS04 transient throttle",
			"421 4.7.0 [TSS04] Messages from 192.0.2.25 temporarily deferred", Hints{}, ClassRateLimited, ScopeSender, false, "yahoo.tss04"},
		{"Yahoo BL21 Spamhaus",
			"553 5.7.1 [BL21] Connections will not be accepted from 192.0.2.25, because the ip is in Spamhaus's list",
			Hints{}, ClassReputationBlock, ScopeSender, true, "yahoo.blocklist"},
		{"Yahoo dd unknown user",
			"554 delivery error: dd This user doesn't have a yahoo.com account (x@yahoo.com) [0] - mta1061.mail.ne1.yahoo.com",
			Hints{}, ClassRecipientUnknown, ScopeRecipient, true, "yahoo.user_unknown"},
		{"trailing 503 ignored",
			"550 5.2.1 The email account that you tried to reach is disabled. 503 5.5.1 RCPT first.",
			Hints{}, ClassMailboxDisabled, ScopeRecipient, true, "gmail.disabled"},
		{"trailing 503 ignored, code decides",
			"550 5.1.1 <x@example.com>... 503 5.5.1 RCPT first", Hints{}, ClassRecipientUnknown, ScopeRecipient, true, "enhanced.5.1.1"},
		{"GMX last line case URL",
			"554-gmx.net (mxgmx017) Nemesis ESMTP Service not available\n554-No SMTP service\n554-IP address is block listed.\n554 For explanation visit https://postmaster.gmx.net/en/case?c=r0201&ip=192.0.2.1",
			Hints{}, ClassReputationBlock, ScopeSender, true, ""},
		{"530 auth vs starttls (auth)", "530 5.7.0 Authentication Required", Hints{}, ClassAuthRequired, ScopeSender, true, ""},
		{"530 auth vs starttls (tls)", "530 5.7.0 Must issue a STARTTLS command first", Hints{}, ClassTLSRequired, ScopeSender, true, ""},
		{"Yandex 5.7.1 No such user",
			"550 5.7.1 No such user!", Hints{}, ClassRecipientUnknown, ScopeRecipient, true, "yandex.no_such_user"},
		{"Exim sender verify says Unrouteable address",
			"550-Verification failed for <bounce@mail.example.com>\n550-Unrouteable address\n550 Sender verify failed",
			Hints{}, ClassSenderAddressRejected, ScopeSender, true, "exim.sender_verify"},
		{"4xx user unknown is never permanent",
			"450 4.1.1 <x@example.org>: Recipient address rejected: User unknown in virtual alias table",
			Hints{}, ClassRecipientUnknown, ScopeRecipient, false, ""},
		{"4xx with permanent-looking enhanced code",
			"451 5.1.1 user unknown", Hints{}, ClassRecipientUnknown, ScopeRecipient, false, ""},
		{"no code and temporary words is not permanent",
			"User unknown; will retry", Hints{}, ClassRecipientUnknown, ScopeRecipient, false, "generic.user_unknown"},
		{"a 5xx stays permanent whatever it adds",
			"550 User unknown; will retry", Hints{}, ClassRecipientUnknown, ScopeRecipient, true, "generic.user_unknown"},
		{"no code and no temporary words is permanent",
			"User unknown", Hints{}, ClassRecipientUnknown, ScopeRecipient, true, "generic.user_unknown"},
		{"X.7 without mailbox words is not recipient",
			"550 5.7.1 <x@example.ch>: Recipient address rejected: Access denied", Hints{}, ClassPolicyRejected, ScopeSender, true, ""},
		{"X.7.13 code alone is not recipient",
			"525 5.7.13", Hints{}, ClassAuthFailed, ScopeSender, true, ""},
		{"X.7.13 disabled recipient text",
			"525 5.7.13 Disabled recipient address", Hints{}, ClassMailboxDisabled, ScopeRecipient, true, ""},
		{"reply to MAIL FROM is about the sender",
			"host mx.example.jp[192.0.2.1] said: 550 5.1.1 <bounce@example.com>... User unknown (in reply to MAIL FROM command)",
			Hints{}, ClassSenderAddressRejected, ScopeSender, true, "stage.mail_from"},
		{"a failed verification of our sender wraps our own server's user unknown",
			"sender address does not accept mail: 550 5.1.1 <bounce@example.com>: Recipient address rejected: User unknown in virtual mailbox table",
			Hints{}, ClassSenderAddressRejected, ScopeSender, true, "stage.sender_check"},
		{"prose without a sender check leaves the recipient's user unknown",
			"host mx.example.jp[192.0.2.1] said: 550 5.1.1 <ana@example.jp>: Recipient address rejected: User unknown in virtual mailbox table",
			Hints{}, ClassRecipientUnknown, ScopeRecipient, true, "generic.user_unknown"},
		{"Gmail out of storage and inactive is dead",
			"552-5.2.2 The recipient's inbox is out of storage space and inactive. - gsmtp",
			Hints{}, ClassMailboxDisabled, ScopeRecipient, true, "gmail.overquota_inactive"},
		{"DNS SERVFAIL never blames the domain, whatever the preamble says",
			"** Address not found ** Your message wasn't delivered to ana@shop.example.net because the domain shop.example.net couldn't be found. The response was: DNS Error: 5521 DNS type 'mx' lookup of shop.example.net responded with code SERVFAIL",
			Hints{}, ClassNetworkError, ScopeInfrastructure, false, "dns.temporary_failure"},
		{"Postfix try-again lookup is not a dead domain",
			"Name service error for domain shop.example.net: Host not found, try again",
			Hints{}, ClassNetworkError, ScopeInfrastructure, false, ""},
		{"Gmail-relayed NXDOMAIN is a soft bounce",
			"** Address not found ** Your message wasn't delivered to ana@shop.example.net because the domain shop.example.net couldn't be found. The response was: DNS Error: 5521 DNS type 'mx' lookup of shop.example.net responded with code NXDOMAIN Domain name not found: shop.example.net",
			Hints{}, ClassDomainInvalid, ScopeRecipient, false, "gmail.dns_answer"},
		{"null MX is the owner's own word",
			"** Address not found ** Your message wasn't delivered to ana@nomail.example because the domain nomail.example couldn't be found. The response was: DNS Error: 7730 DNS type 'mx' lookup of nomail.example responded with code NOERROR The domain nomail.example doesn't receive email according to the administrator: returned Null MX",
			Hints{}, ClassDomainInvalid, ScopeRecipient, true, "gmail.domain_not_found"},
		{"authoritative host unknown suppresses",
			"550 5.1.2 <ana@shop.example.net>... Host unknown (Name server: shop.example.net: host not found)",
			Hints{}, ClassDomainInvalid, ScopeRecipient, true, ""},
	})
}

// TestSuppressibleInvariants checks, over every rule example and every
// code entry, the two promises policy relies on: a 4xx is never a
// permanent recipient fault, and unknown is never suppressible.
func TestSuppressibleInvariants(t *testing.T) {
	t.Parallel()
	c := setup(t)
	check := func(reply string, h Hints) {
		cl := c.Classify(reply, h)
		r := ParseReply(reply)
		if cl.Suppressible() && (r.Code/100 == 4 || strings.HasPrefix(r.Enhanced, "4.")) {
			t.Errorf("%q: 4xx classified suppressible (%s)", reply, cl.Rule)
		}
		if cl.Class == ClassUnknown && (cl.Suppressible() || cl.Scope != ScopeUnknown) {
			t.Errorf("%q: unknown with scope %s suppressible=%v", reply, cl.Scope, cl.Suppressible())
		}
		if cl.Class != ClassUnknown && cl.Scope == ScopeUnknown {
			t.Errorf("%q: scope unknown for class %s", reply, cl.Class)
		}
	}
	for _, rl := range c.rules {
		for _, ex := range append(append([]string{}, rl.spec.Examples...), rl.spec.NotExamples...) {
			check(ex, Hints{})
		}
	}
	for _, e := range c.Entries() {
		check(e.Code, Hints{})
		check(e.Code+" "+e.Title, Hints{})
		if strings.HasPrefix(e.Code, "5.7.") || strings.HasPrefix(e.Code, "4.7.") {
			if cl := c.Classify("550 "+e.Code, Hints{}); cl.Scope == ScopeRecipient {
				t.Errorf("%s alone classified as recipient (%s)", e.Code, cl.Rule)
			}
		}
	}
}

func TestSuppressible(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		cl   Classification
		want bool
	}{
		{Classification{Class: ClassRecipientUnknown, Scope: ScopeRecipient, Permanent: true}, true},
		{Classification{Class: ClassRecipientUnknown, Scope: ScopeRecipient, Permanent: false}, false},
		{Classification{Class: ClassAuthRequired, Scope: ScopeSender, Permanent: true}, false},
		{Classification{Class: ClassUnknown, Scope: ScopeRecipient, Permanent: true}, false},
	} {
		if got := tc.cl.Suppressible(); got != tc.want {
			t.Errorf("%+v.Suppressible() = %v, want %v", tc.cl, got, tc.want)
		}
	}
}

func TestEntry(t *testing.T) {
	t.Parallel()
	c := setup(t)
	for _, tc := range []struct {
		in, want string
	}{
		{"530", "530"}, {"5.1.1", "5.1.1"}, {"4.2.2", "4.2.2"}, {"X.7.26", "5.7.26"}, {"x.1.10", "5.1.10"},
		{"550 5.1.1", "5.1.1"}, {"550-5.1.1", "5.1.1"}, {" 421 ", "421"}, {"554 5.9.9", "554"},
	} {
		e, ok := c.Entry(tc.in)
		if !ok || e.Code != tc.want {
			t.Errorf("Entry(%q) = %q, %v; want %q", tc.in, e.Code, ok, tc.want)
		}
	}
	if _, ok := c.Entry("999"); ok {
		t.Error("Entry(999) found")
	}

	e, _ := c.Entry("530")
	if e.Class != ClassAuthRequired || e.Scope != ScopeSender || !e.Permanent || e.Severity != "critical" ||
		!strings.Contains(e.RFC, "4954") || len(e.Causes) < 3 || len(e.Fix) < 3 || len(e.Meaning) < 300 {
		t.Errorf("530 entry is not fit for on-call: %+v", e)
	}
	if e, _ := c.Entry("5.2.2"); e.Permanent {
		t.Error("5.2.2 entry must not be permanent")
	}
}

// TestEntriesComplete checks the catalog covers every code the brief
// requires and that each entry is fully written.
func TestEntriesComplete(t *testing.T) {
	t.Parallel()
	c := setup(t)
	want := []string{"421", "450", "451", "452", "453", "454", "455", "500", "501", "502", "503", "504",
		"521", "530", "534", "535", "538", "550", "551", "552", "553", "554", "555", "556"}
	for _, cls := range []string{"4", "5"} {
		for subj, max := range []int{0, 10, 4, 6, 7, 6, 10, 30} {
			for d := 0; d <= max; d++ {
				want = append(want, cls+"."+itoa(subj)+"."+itoa(d))
			}
		}
	}
	for _, code := range want {
		e, ok := c.Entry(code)
		if !ok || e.Code != code {
			t.Errorf("missing entry %s", code)
			continue
		}
		if e.Title == "" || e.RFC == "" || e.Meaning == "" || len(e.Causes) == 0 || len(e.Fix) == 0 || e.Category == "" {
			t.Errorf("entry %s incomplete", code)
		}
	}
	if n := len(c.Entries()); n < len(want) {
		t.Errorf("Entries() = %d, want at least %d", n, len(want))
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestFixStepsAndDescriptions(t *testing.T) {
	t.Parallel()
	c := setup(t)
	// Rule steps first.
	cl := c.Classify("554 5.7.1 [CS01] Message rejected", Hints{})
	if steps := c.FixSteps(cl); len(steps) == 0 {
		t.Errorf("no fix steps for %+v", cl)
	}
	// Class steps when the rule has none.
	cl = c.Classify("530 5.7.0 Authentication required", Hints{})
	if steps := c.FixSteps(cl); len(steps) == 0 || !strings.Contains(strings.Join(steps, " "), "AUTH") {
		t.Errorf("530 fix steps = %q", steps)
	}
	// Entry steps when neither rule nor class is known.
	if steps := c.FixSteps(Classification{Class: "nope", Code: "421", Rule: "x"}); len(steps) == 0 {
		t.Error("no entry fallback for fix steps")
	}
	for _, cl := range c.Classes() {
		if c.ClassDescription(cl) == "" {
			t.Errorf("class %s has no description", cl)
		}
	}
	if c.ClassDescription("nope") != "" {
		t.Error("description for unknown class")
	}
}
