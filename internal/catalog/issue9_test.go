package catalog

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestClassifyIssue9Families pins the seven families of issue #9 with the
// wordings the issue names (each paraphrased into a realistic reply). They
// are regression cases, not the measurement: testdata/replies.tsv is.
func TestClassifyIssue9Families(t *testing.T) {
	t.Parallel()
	runClassify(t, []classifyCase{
		// 1. A transient reply never becomes permanent, whatever class.
		{"4xx 4.1.1 verification in progress", "421 4.1.1 <x@example.com>: Recipient address rejected: Address verification in progress", Hints{}, ClassGreylisted, ScopeInfrastructure, false, "infra.verification_pending"},
		{"4xx 4.1.1 too many recent messages", "452 4.1.1 <x@example.com>: Too many recent messages for this recipient", Hints{}, ClassRecipientRateLimited, ScopeRecipient, false, "recipient.rate_limited"},
		{"4xx with an inner 5xx verification result", "450 4.1.1 <x@example.org>: Recipient address rejected: unverified address: host mx.example.org[192.0.2.10] said: 550 5.1.1 <x@example.org>: User unknown (in reply to RCPT TO command)", Hints{}, ClassRecipientUnknown, ScopeRecipient, false, ""},
		{"4xx hint never permanent", "452 4.2.1 mailbox temporarily disabled: x@example.com", Hints{Enhanced: "5.2.1"}, ClassMailboxDisabled, ScopeRecipient, false, ""},
		// 2. Sender-side faults worded with an address.
		{"5.7.27 sender null MX", "550 5.7.27 Sender address has null MX", Hints{}, ClassSenderAddressRejected, ScopeSender, true, "sender.code_names_sender"},
		{"recipient in brackets, our DNS", "550 5.7.1 <ana@example.org>: Rejected, your domain mail.example.com has no valid DNS records", Hints{}, ClassSenderAddressRejected, ScopeSender, true, "sender.our_dns"},
		{"5.1.7 invalid address is ours", "550 5.1.7 Invalid address", Hints{}, ClassSenderAddressRejected, ScopeSender, true, ""},
		// 3. Plain-text recipient failures, several languages.
		{"not a known user", "550 <ana@example.org>: ana is not a known user", Hints{}, ClassRecipientUnknown, ScopeRecipient, true, ""},
		{"no longer valid", "554 delivery error: dd ana@yahoo.com is no longer valid. [-5]", Hints{}, ClassRecipientUnknown, ScopeRecipient, true, ""},
		{"recipient rejected", "550 <ana@example.org> recipient rejected", Hints{}, ClassRecipientUnknown, ScopeRecipient, true, ""},
		{"not an active address", "550 <ana@example.org> is not an active address at this host", Hints{}, ClassRecipientUnknown, ScopeRecipient, true, ""},
		{"BAD_RECIPIENT", "550 BAD_RECIPIENT", Hints{}, ClassRecipientUnknown, ScopeRecipient, true, ""},
		{"mailbox currently suspended", "550 [suspend] Mailbox currently suspended--Please contact correspondent directly.", Hints{}, ClassMailboxDisabled, ScopeRecipient, true, ""},
		{"badrcptto", "553 sorry, your envelope recipient is in my badrcptto list (#5.7.1)", Hints{}, ClassRecipientUnknown, ScopeRecipient, true, ""},
		{"mail-box not found", "553 <ana@example.org> mail-box not found", Hints{}, ClassRecipientUnknown, ScopeRecipient, true, ""},
		{"es", "550 5.1.1 Destinatario desconocido", Hints{}, ClassRecipientUnknown, ScopeRecipient, true, ""},
		{"de", "550 5.1.1 Benutzer unbekannt", Hints{}, ClassRecipientUnknown, ScopeRecipient, true, ""},
		{"fr", "550 5.1.1 <ana@example.fr>: Utilisateur inconnu", Hints{}, ClassRecipientUnknown, ScopeRecipient, true, ""},
		{"it", "550 5.1.1 Utente sconosciuto", Hints{}, ClassRecipientUnknown, ScopeRecipient, true, ""},
		{"pt", "550 5.1.1 Usuário desconhecido", Hints{}, ClassRecipientUnknown, ScopeRecipient, true, ""},
		{"nl", "550 5.1.1 Gebruiker onbekend", Hints{}, ClassRecipientUnknown, ScopeRecipient, true, ""},
		{"ru", "550 Пользователь не найден", Hints{}, ClassRecipientUnknown, ScopeRecipient, true, ""},
		{"pl", "550 5.1.1 Użytkownik nie istnieje", Hints{}, ClassRecipientUnknown, ScopeRecipient, true, ""},
		{"ja", "550 5.1.1 宛先のメールアドレスは存在しません", Hints{}, ClassRecipientUnknown, ScopeRecipient, true, ""},
		{"zh", "550 收件人地址不存在", Hints{}, ClassRecipientUnknown, ScopeRecipient, true, ""},
		// 4. 5.7.x with recipient wording is the recipient.
		{"5.7.1 invalid recipient", "550 5.7.1 Recipient address rejected: ana@example.org is invalid", Hints{}, ClassRecipientUnknown, ScopeRecipient, true, ""},
		{"5.7.1 no mailbox found", "550 5.7.1 No mailbox found", Hints{}, ClassRecipientUnknown, ScopeRecipient, true, ""},
		{"5.7.1 banned recipient", "550 5.7.505 Access denied, banned recipient", Hints{}, ClassMailboxDisabled, ScopeRecipient, true, ""},
		{"5.7.1 marked as invalid", "550 5.7.1 <x@example.com>: Recipient address rejected: User email address is marked as invalid.", Hints{}, ClassRecipientUnknown, ScopeRecipient, true, ""},
		{"5.7.1 access denied stays policy", "550 5.7.1 <x@example.ch>: Recipient address rejected: Access denied", Hints{}, ClassPolicyRejected, ScopeSender, true, ""},
		// 5. Whose rate limit.
		{"recipient message rate", "452 4.2.1 The recipient has exceeded message rate limit. Try again later.", Hints{}, ClassRecipientRateLimited, ScopeRecipient, false, ""},
		{"recipient thread limit", "432 4.3.2 STOREDRV.Deliver; recipient thread limit exceeded", Hints{}, ClassRecipientRateLimited, ScopeRecipient, false, ""},
		{"our daily sending limit", "550 5.4.5 Daily user sending limit exceeded.", Hints{}, ClassRateLimited, ScopeSender, false, ""},
		{"our relay limit despite 4.2.1", "450 4.2.1 Peak SMTP relay limit exceeded for customer.", Hints{}, ClassRateLimited, ScopeSender, false, ""},
		{"our submission quota", "554 5.2.2 mailbox full; STOREDRV.Submission.Exception:SubmissionQuotaExceededException; Submission quota exceeded", Hints{}, ClassRateLimited, ScopeSender, false, ""},
		// 6. Sender blocks without a code.
		{"ip blocked", "550 Access from ip address 192.0.2.1 blocked.", Hints{}, ClassPolicyRejected, ScopeSender, true, ""},
		{"spam sender", "550 Suspected spam sender", Hints{}, ClassReputationBlock, ScopeSender, true, ""},
		{"spam filter sending address", "550 Sending address not accepted due to spam filter", Hints{}, ClassPolicyRejected, ScopeSender, true, ""},
		{"spam list", "550 Denied due to spam list", Hints{}, ClassReputationBlock, ScopeSender, true, ""},
		{"envelope blocked", "550 Administrative prohibition - envelope blocked", Hints{}, ClassPolicyRejected, ScopeSender, true, ""},
		{"blocked senders", "550 Rejected by header-based Blocked Senders - block policy for Header From", Hints{}, ClassPolicyRejected, ScopeSender, true, ""},
		{"sender address blocked", "421 Sender address blocked", Hints{}, ClassPolicyRejected, ScopeSender, false, ""},
		{"confirmation challenge", "550 5.7.1 Your server requires confirmation", Hints{}, ClassPolicyRejected, ScopeSender, true, ""},
		// 7. TLS at the receiver, greylisting, connection caps, size as policy.
		{"receiver certificate", "450 4.7.325 certificate-host-mismatch: Remote certificate MUST have a common name or subject alternative name matching the hostname (DANE)", Hints{}, ClassRemoteError, ScopeInfrastructure, false, ""},
		{"come back later", "451 4.7.1 Sorry, the service is currently unavailable. Please come back later.", Hints{}, ClassGreylisted, ScopeInfrastructure, false, ""},
		{"messages per connection", "421 Max message per connection reached, closing transmission channel", Hints{}, ClassRemoteError, ScopeInfrastructure, false, ""},
		{"size as 5.7.1", "550 5.7.1 Message rejected: Class=size limit", Hints{}, ClassMessageTooLarge, ScopeMessage, true, ""},
	})
}

// TestClassificationReason: every decision says why, without allocating
// once warm, and the JSON carries it next to the contract's fields.
func TestClassificationReason(t *testing.T) {
	t.Parallel()
	c := setup(t)
	for _, tc := range []struct{ reply, want string }{
		{"550 5.7.1 <x@example.com>: Recipient address rejected: User email address is marked as invalid.",
			`text rule recipient.unknown_words matched "recipient" with "invalid", overriding enhanced code 5.7.1 (policy_rejected, sender)`},
		{"451 5.1.1 user unknown",
			`text rule generic.user_unknown matched "user unknown", in line with enhanced code 5.1.1; not permanent because the reply is a 4xx`},
		{"550 5.1.1", "enhanced code 5.1.1 (Bad destination mailbox address) means recipient_unknown"},
		{"451 5.1.1", "enhanced code 5.1.1 (Bad destination mailbox address) means recipient_unknown; not permanent because the reply is a 4xx"},
		{"550 5.7.509 some new policy", "enhanced code with an unregistered detail, read as its subject entry 5.7.0 (Other or undefined security status): policy_rejected"},
		{"something odd happened", reasonFallbackUnknown},
		{"host mx.example.jp[192.0.2.1] said: 550 5.1.1 <bounce@example.com>... User unknown (in reply to MAIL FROM command)", reasonStageMailFrom},
	} {
		if got := c.Classify(tc.reply, Hints{}).Reason; got != tc.want {
			t.Errorf("Classify(%q).Reason =\n  %q\nwant\n  %q", tc.reply, got, tc.want)
		}
	}
	for _, r := range readReplies(t) {
		if cl := c.Classify(r.reply, Hints{}); cl.Reason == "" || cl.Confidence < 0 || cl.Confidence > 1 {
			t.Errorf("%s: reason %q, confidence %v", r.id, cl.Reason, cl.Confidence)
		}
	}
	b, err := json.Marshal(c.Classify("550 5.1.1 User unknown", Hints{}))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{`"class":`, `"scope":`, `"permanent":`, `"code":`, `"rule":`, `"confidence":`, `"reason":`} {
		if !strings.Contains(string(b), k) {
			t.Errorf("JSON %s lacks %s", b, k)
		}
	}
}

// TestClassifyReasonAllocs: a reason, once its rule×code combination has
// been seen, costs no allocation; nor does a code decision.
func TestClassifyReasonAllocs(t *testing.T) {
	c := setup(t)
	for _, in := range []string{
		"550 5.7.1 <x@example.com>: Recipient address rejected: User email address is marked as invalid.",
		"550 Access from ip address 192.0.2.1 blocked.",
		"550 5.1.1",
		"451 5.7.509",
	} {
		if n := testing.AllocsPerRun(100, func() { sinkClass = c.Classify(in, Hints{}) }); n > 0 {
			t.Errorf("Classify(%q) allocates %v times, want 0", in, n)
		}
	}
}

// TestParseKeepsOuterTransientReply: a 4xx whose text quotes a remote 5xx
// ("unverified address: host … said: 550 …") is the 4xx.
func TestParseKeepsOuterTransientReply(t *testing.T) {
	t.Parallel()
	r := ParseReply("450 4.1.1 <x@example.org>: Recipient address rejected: unverified address: host mx.example.org[192.0.2.10] said: 550 5.1.1 User unknown (in reply to RCPT TO command)")
	if r.Code != 450 || r.Enhanced != "4.1.1" {
		t.Errorf("parsed %d %s, want 450 4.1.1", r.Code, r.Enhanced)
	}
	r = ParseReply("host mx.example.org[192.0.2.10] said: 550 5.1.1 User unknown (in reply to RCPT TO command)")
	if r.Code != 550 || r.Enhanced != "5.1.1" || r.Text != "User unknown" {
		t.Errorf("parsed %+v", r)
	}
}
