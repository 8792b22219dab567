package catalog

import (
	"fmt"
	"strings"

	"github.com/reboundhq/rebound/internal/catalog/internal/opaque"
)

// Whose failure is it: rails after every decision. A suppression cuts a
// customer off, so it needs a reply that is about the recipient. Whatever
// decided a permanent recipient class (a rule, an enhanced code, a basic
// code; for our side also a transient one), the reply's own text may name
// another subject:
//   - our side (the sender, its address, domain or account, the return
//     path, the Reply-To, our IP or HELO, the login) and no recipient: the
//     failure is ours, "550 Reply-To address does not exist", "550 SMTP
//     account is disabled" (rule scope.our_side, an alert). This one also
//     covers the transient recipient classes: "452 Sender quota exceeded" is
//     our quota, not a full mailbox whose soft bounces would add up to a
//     suppression;
//   - a part of the message (its subject, a header, an attachment, its
//     encoding) and no recipient, mailbox, user, account or address: the
//     message's, "554 5.2.1 Subject is mandatory" (rule scope.message).
// The rules' unless lists carry many of these words already; the rails make
// the whole family hold for every rule and code, including the ones written
// later. Only the reply's text is read: the prose of a bounce around it
// talks about "the sender" when it means whoever gets the bounce.

// The rails' rule IDs in a classification.
const (
	ruleOurSide    = "scope.our_side"
	ruleMessage    = "scope.message"
	ruleOurAddress = "scope.our_address"
)

const reasonOurAddress = "the reply is about our envelope sender's address and names no other, so the failure is ours, not the recipient's"

// aboutAddress reports whether a reply's text is about addr (our envelope
// sender, Hints.Sender): it opens with that address, as a server's answer about
// one address does ("<x@example.org>... User unknown", "<x@example.org>:
// Recipient address rejected"), and names no other. An address further in is
// not enough: "Hello <ours>, the group you tried to contact may not exist"
// greets us and is about the recipient. Compared without regard to case.
func aboutAddress(text, addr string) bool {
	var buf [8]opaque.Span
	spans := opaque.Addresses(text, buf[:0])
	if len(spans) == 0 || strings.TrimLeft(text[:spans[0].Lo], " <[\"'") != "" {
		return false
	}
	for _, sp := range spans {
		if !strings.EqualFold(sp.Address(text), addr) {
			return false
		}
	}
	return true
}

// ourSideWords name our side as a reply's subject. Each is a noun phrase,
// never a bare "from" or "account", which recipient failures use too ("no
// mail from the outside", "account disabled").
var ourSideWords = []string{
	// English
	"sender", "return path", "return-path", "returnpath", "return address", "return email", "return domain",
	"reply-to", "reply to address",
	"originator", "mail from", "mailfrom", "envelope from", "envelope-from", "from address",
	"from: address", "from header", "from: header", "bounce address", "smtp account",
	"your account", "your ip", "client host", "helo", "ehlo", "your domain", "mailer domain",
	"sending domain", "authenticated user", "authentication", "login", "password",
	"your email address", "your e-mail address", "your address", "address you sent from",
	// Other languages: the sender nouns of sender.our_dns
	"expéditeur", "expediteur", "absender", "remitente", "mittente", "remetente", "afzender",
	"отправител", "nadawc", "发件人", "寄件人", "送信者", "مرسل", "فرستنده",
	"שולח", "αποστολέ", "ผู้ส่ง", "відправник", "발신자", "보낸 사람", "발송자", "प्रेषक",
}

// messageWords name a part of the message as a reply's subject. Not
// "message" alone: "550 5.1.1 message not delivered" is prose around a code that
// says the recipient is unknown.
var messageWords = []string{
	"subject", "header", "attachment", "message body", "body of the message", "message content",
	"message-id", "message id", "mime", "line length", "encoding", "charset", "character set",
	"file name", "filename", "file type", "message size", "message format",
}

// recipientWords name the recipient; any of them keeps the decision with the
// recipient ("Recipient address rejected: … sender=<…>").
var recipientWords = []string{
	"recipient", "rcpt", "addressee", "this address", "destinat", "empfänger", "empfaenger", "收件人", "受信者",
	"宛先", "получател", "odbiorc", "ontvanger", "adresat", "mottagar", "modtager",
	"vastaanottaj", "alıcı", "수신자", "받는 사람", "người nhận", "penerima", "مستلم",
	"گیرنده", "נמען", "παραλήπτ", "ผู้รับ", "одержувач", "प्राप्तकर्ता",
}

// holderWords name whom an address or mailbox belongs to without saying
// whose: enough to keep the message rail off ("550 5.1.1 user unknown in
// header To:"), not to keep our side's off ("sender address").
var holderWords = []string{"mailbox", "user", "account", "address", "domain", "host", "e-mail", "email"}

// The word groups of sideMatcher.
type wordGroup uint8

const (
	groupOurs wordGroup = iota
	groupMessage
	groupRecipient
	groupHolder
)

// sideWord is what a sideMatcher pattern stands for: a word of a group, by its
// index in the group's list (a word may have several case forms).
type sideWord struct {
	group wordGroup
	index int32
}

var (
	sideWords   []sideWord // by pattern ID
	sideMatcher = func() *matcher {
		var patterns []string
		for g, list := range [][]string{ourSideWords, messageWords, recipientWords, holderWords} {
			for i, w := range list {
				// Folded and spelled as the rules' patterns are (load.go), since
				// classify reads the text so before either looks at it, and in
				// each of its spellings, as the rules' any-of lists read it
				// (spellingVariants): "destinatario" for "destinatário", "return
				// e-mail" for "return email".
				for _, v := range spellingVariants(spellingForm(foldCase(w))) {
					patterns = append(patterns, v)
					sideWords = append(sideWords, sideWord{wordGroup(g), int32(i)})
				}
			}
		}
		return newMatcher(patterns)
	}()
)

// The rails' reasons, built once so a classification allocates nothing for
// its reason: one per our-side word, one per message word.
var ourSideReasons, messageReasons = reasons(ourSideWords,
	"the reply names our side (%q) and no recipient, so the failure is ours, not the recipient's"),
	reasons(messageWords, "the reply names the message (%q) and no recipient, mailbox or address, so the failure is the message's, not the recipient's")

func reasons(words []string, format string) []string {
	out := make([]string, len(words))
	for i, w := range words {
		out[i] = fmt.Sprintf(format, w)
	}
	return out
}

// replySubject says whose failure a reply's text names: our side (ruleOurSide),
// the message (ruleMessage) or neither (""), with the rail's reason. Words
// inside an email address or a host name (opaque.Spans) do not count.
func replySubject(text string) (rule, reason string) {
	first := [4]int32{-1, -1, -1, -1} // per group, the first word seen outside an address or host name
	// Hits come in text order, so the opaque spans are walked once.
	var buf [8]opaque.Span
	spans := opaque.Spans(text, buf[:0])
	next := 0
	sideMatcher.run(text, func(id int32, end int) {
		for next < len(spans) && spans[next].Hi < end {
			next++
		}
		if w := sideWords[id]; first[w.group] < 0 && !(next < len(spans) && spans[next].Lo < end) {
			first[w.group] = w.index
		}
	})
	switch {
	case first[groupRecipient] >= 0:
		return "", ""
	case first[groupOurs] >= 0:
		return ruleOurSide, ourSideReasons[first[groupOurs]]
	case first[groupMessage] >= 0 && first[groupHolder] < 0:
		return ruleMessage, messageReasons[first[groupMessage]]
	}
	return "", ""
}
