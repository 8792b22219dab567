package catalog

import "testing"

func TestParseReply(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in string
		want     Reply
	}{
		{"plain", "550 5.1.1 <x@example.com>: Recipient address rejected: User unknown",
			Reply{550, "5.1.1", "<x@example.com>: Recipient address rejected: User unknown"}},
		{"basic only", "530 Authentication required", Reply{530, "", "Authentication required"}},
		{"code only", "421", Reply{421, "", ""}},
		{"SES smtp;", "smtp;550 5.1.1 user unknown", Reply{550, "5.1.1", "user unknown"}},
		{"SES smtp; space", "smtp; 550 5.1.1 user unknown", Reply{550, "5.1.1", "user unknown"}},
		{"dns;", "dns; no MX for example.invalid", Reply{0, "", "no MX for example.invalid"}},
		// A first line that lost its basic code: the reply starts at its enhanced code.
		{"enhanced first line, continued", "5.1.1 The email account does not exist. Please try 550-5.1.1 double-checking the address",
			Reply{550, "5.1.1", "The email account does not exist. Please try double-checking the address"}},
		{"enhanced first line, quoting", "4.1.1 <x@example.com>: Recipient address rejected: unverified address: host mx.example.com[192.0.2.1] said: 550 5.1.1 <x@example.com>: User unknown",
			Reply{0, "4.1.1", "<x@example.com>: Recipient address rejected: unverified address: host mx.example.com[192.0.2.1] said:"}},
		{"status heading its description", "5.1.0 - Unknown address error 550-'5.1.1 <x@example.com>: User unknown'",
			Reply{550, "5.1.1", "'5.1.1 <x@example.com>: User unknown'"}},
		{"Postfix said", "host mx.example.com[192.0.2.1] said: 550 5.1.1 <x@example.com>: Recipient address rejected: User unknown in local recipient table (in reply to RCPT TO command)",
			Reply{550, "5.1.1", "<x@example.com>: Recipient address rejected: User unknown in local recipient table"}},
		{"Postfix said, no code", "host gmail-smtp-in.l.google.com[64.233.189.27] said: The email account that you tried to reach does not exist. (in reply to RCPT TO command)",
			Reply{0, "", "The email account that you tried to reach does not exist."}},
		{"JavaMail exception chain", "javax.mail.SendFailedException: Invalid Addresses; nested exception is: com.sun.mail.smtp.SMTPAddressFailedException: 554 Message looping (received 6 times)",
			Reply{554, "", "Message looping (received 6 times)"}},
		{"MailKit exception", "MailKit.Net.Smtp.SmtpCommandException: 550 5.1.1 No such user",
			Reply{550, "5.1.1", "No such user"}},
		{"Exchange's own Exception: is no wrapper", "554 5.2.0 STOREDRV.Deliver.Exception:ObjectNotFoundException; Failed to process message",
			Reply{554, "5.2.0", "STOREDRV.Deliver.Exception:ObjectNotFoundException; Failed to process message"}},
		{"double and no-break spaces", "550  5.1.1\u00a0user   unknown", Reply{550, "5.1.1", "user unknown"}},
		{"HTML escaped", "550 5.1.1 &lt;x@example.com&gt;: user doesn&#39;t exist", Reply{550, "5.1.1", "<x@example.com>: user doesn't exist"}},
		{"Microsoft returned", "Remote Server returned '550 5.1.1 RESOLVER.ADR.RecipNotFound; not found'",
			Reply{550, "5.1.1", "RESOLVER.ADR.RecipNotFound; not found"}},
		{"Microsoft returned with apostrophe", "Remote Server returned '550 5.7.1 Sender doesn't have permission'",
			Reply{550, "5.7.1", "Sender doesn't have permission"}},
		{"Microsoft returned with a quotation inside", "Remote Server returned '554 5.7.1 Please supply 'From' header field' Attempted failover",
			Reply{554, "5.7.1", "Please supply 'From' header field"}},
		{"Exchange relaying the remote reply", "Remote Server returned '554 5.4.4 <mx.example.de #5.4.4 smtp; 550 5.4.4 Unable to relay>'",
			Reply{550, "5.4.4", "Unable to relay>"}},
		{"Exchange relaying, no space", "554 5.1.0 < #5.1.10 smtp;550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient x@example.ch not found by SMTP address lookup>",
			Reply{550, "5.1.10", "RESOLVER.ADR.RecipientNotFound; Recipient x@example.ch not found by SMTP address lookup>"}},
		{"Brevo", " RecipientError: 550 5.5.0 Requested action not taken: mailbox unavailable",
			Reply{550, "5.5.0", "Requested action not taken: mailbox unavailable"}},
		{"Exchange hash", "#550 5.1.1 RESOLVER.ADR.RecipNotFound; not found ##", Reply{550, "5.1.1", "RESOLVER.ADR.RecipNotFound; not found ##"}},
		{"qmail hash enhanced", "Sorry, I couldn't find any host named cx.example.com. (#5.1.2)",
			Reply{0, "5.1.2", "Sorry, I couldn't find any host named cx.example.com. (#5.1.2)"}},
		{"enhanced after hash", "550 #5.1.0 Address rejected.", Reply{550, "5.1.0", "Address rejected."}},
		{"enhanced later in text", "550 sorry, no mailbox here by that name (#5.1.1 - chkusr)", Reply{550, "5.1.1", "sorry, no mailbox here by that name (#5.1.1 - chkusr)"}},
		{"leading enhanced", "5.2.2 <x@example.jp>... Mailbox Full", Reply{0, "5.2.2", "<x@example.jp>... Mailbox Full"}},
		{"multi-line", "550-5.1.1 The email account that you tried to reach does not exist. Please try\r\n550-5.1.1 double-checking the recipient's email address for typos or\r\n550 5.1.1 unnecessary spaces. https://support.google.com/mail/?p=NoSuchUser - gsmtp",
			Reply{550, "5.1.1", "The email account that you tried to reach does not exist. Please try double-checking the recipient's email address for typos or unnecessary spaces. https://support.google.com/mail/?p=NoSuchUser - gsmtp"}},
		{"multi-line folded by ESP", "550-5.7.26 Unauthenticated email is not accepted 550-5.7.26 due to DMARC policy 550 5.7.26 - gsmtp",
			Reply{550, "5.7.26", "Unauthenticated email is not accepted due to DMARC policy - gsmtp"}},
		{"multi-line without enhanced", "554-mx.gmx.net Nemesis ESMTP Service not available\n554-No SMTP service\n554 IP address is block listed.",
			Reply{554, "", "mx.gmx.net Nemesis ESMTP Service not available No SMTP service IP address is block listed."}},
		{"trailing 503 ignored", "550 5.2.1 The email account that you tried to reach is disabled. 503 5.5.1 RCPT first.",
			Reply{550, "5.2.1", "The email account that you tried to reach is disabled."}},
		{"leading 2xx skipped", "354 End data with <CR><LF>.<CR><LF> 451 4.3.0 Error: queue file write error",
			Reply{451, "4.3.0", "Error: queue file write error"}},
		{"Sendmail nested reply", "554 <x@example.org>... 550 Host unknown (Authoritative answer from name server)",
			Reply{554, "", "<x@example.org>... 550 Host unknown (Authoritative answer from name server)"}},
		{"Exim wrapper", "SMTP error from remote mail server after RCPT TO:<x@example.jp>: host mx.example.jp [192.0.2.153]: 550 5.1.1 <x@example.jp>... User Unknown",
			Reply{550, "5.1.1", "<x@example.jp>... User Unknown"}},
		{"IP address is not an enhanced code", "421 4.7.0 [TSS04] Messages from 192.0.2.25 temporarily deferred - 4.16.55.1",
			Reply{421, "4.7.0", "[TSS04] Messages from 192.0.2.25 temporarily deferred - 4.16.55.1"}},
		{"number in prose is not a code", "Message rejected: limit of 500 recipients reached", Reply{0, "", "Message rejected: limit of 500 recipients reached"}},
		{"Microsoft 550 4.4.7", "Remote Server at x (10.1.1.3) returned '550 4.4.7 QUEUE.Expired; message expired'",
			Reply{550, "4.4.7", "QUEUE.Expired; message expired"}},
		{"empty", "", Reply{}},
		{"whitespace", " \r\n\t ", Reply{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := ParseReply(tc.in); got != tc.want {
				t.Errorf("ParseReply(%q)\n got %#v\nwant %#v", tc.in, got, tc.want)
			}
		})
	}
}

func TestRemoteHostIn(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"host gmail-smtp-in.l.google.com[64.233.189.27] said: 550":   "gmail-smtp-in.l.google.com",
		"SMTP error ... host mx.example.jp [192.0.2.153]: 550 5.1.1": "mx.example.jp",
		"Remote host said: 550 5.1.1":                                "",
		"host 192.0.2.22 [192.0.2.22] SMTP error":                    "",
		"no host here": "",
		"Connected to 192.0.2.1 but host mta5.am0.yahoodns.net [x] said": "mta5.am0.yahoodns.net",
	} {
		if got := remoteHostIn(in); got != want {
			t.Errorf("remoteHostIn(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseReplyAllocs(t *testing.T) {
	in := "host mx.example.com[192.0.2.1] said: 550 5.1.1 <x@example.com>: User unknown (in reply to RCPT TO command)"
	if n := testing.AllocsPerRun(100, func() { _ = ParseReply(in) }); n != 0 {
		t.Errorf("ParseReply allocates %v times on a single-line reply, want 0", n)
	}
}
