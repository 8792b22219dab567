package catalog

// The our-side rail. A suppression cuts a customer off, so it needs a reply
// that is about the recipient. Whatever decided a permanent recipient class
// (a rule, an enhanced code, a basic code), when the reply's own text names
// our side as its subject (the sender, its address, domain or account, the
// return path, the Reply-To, our IP or HELO, the login) and names no
// recipient, the failure is ours: "550 Reply-To address does not exist",
// "550 SMTP account is disabled", "553 Return path address is invalid". The
// rules' unless lists carry many of these words already; the rail makes the
// whole family hold for every rule and code, including the ones written
// later. Only the reply's text is read: the prose of a bounce around it
// talks about "the sender" when it means whoever gets the bounce.

// ruleOurSide is the rail's rule ID in a classification.
const ruleOurSide = "scope.our_side"

// ourSideWords name our side as a reply's subject. Each is a noun phrase,
// never a bare "from" or "account", which recipient failures use too ("no
// mail from the outside", "account disabled").
var ourSideWords = []string{
	// English
	"sender", "return path", "return-path", "returnpath", "return address", "return email", "return domain",
	"reply-to", "reply to address",
	"originator", "mail from", "mailfrom", "envelope from", "envelope-from", "from address",
	"from: address", "from header", "from: header", "bounce address", "smtp account",
	"your account", "your ip", "client host", "helo", "ehlo", "your domain",
	"sending domain", "authenticated user", "authentication", "login", "password",
	"your email address", "your e-mail address", "your address", "address you sent from",
	// Other languages: the sender nouns of sender.our_dns
	"expéditeur", "expediteur", "absender", "remitente", "mittente", "remetente", "afzender",
	"отправител", "Отправител", "nadawc", "发件人", "寄件人", "送信者", "مرسل", "فرستنده",
	"שולח", "αποστολέ", "ผู้ส่ง", "відправник", "발신자", "보낸 사람", "발송자", "प्रेषक",
}

// recipientWords name the recipient; any of them keeps the decision with the
// recipient ("Recipient address rejected: … sender=<…>").
var recipientWords = []string{
	"recipient", "rcpt", "addressee", "this address", "destinat", "empfänger", "empfaenger", "收件人", "受信者",
	"宛先", "получател", "Получател", "odbiorc", "ontvanger", "adresat", "mottagar", "modtager",
	"vastaanottaj", "alıcı", "수신자", "받는 사람", "người nhận", "penerima", "مستلم",
	"گیرنده", "נמען", "παραλήπτ", "ผู้รับ", "одержувач", "प्राप्तकर्ता",
}

// sideMatcher finds both lists in one pass: IDs below len(ourSideWords) are
// our side, the rest the recipient.
var sideMatcher = newMatcher(append(append([]string(nil), ourSideWords...), recipientWords...))

// ourSideReasons are the rail's reasons, one per our-side word, built once so
// a classification allocates nothing for its reason.
var ourSideReasons = func() []string {
	out := make([]string, len(ourSideWords))
	for i, w := range ourSideWords {
		out[i] = "the reply names our side (\"" + w + "\") and no recipient, so the failure is ours, not the recipient's"
	}
	return out
}()

// ourSideSubject reports whether text names our side and not the recipient,
// and the rail's reason for the first our-side word it found.
func ourSideSubject(text string) (string, bool) {
	ours, theirs := int32(-1), false
	sideMatcher.run(text, func(id int32, end int) {
		if inAddress(text, end) {
			return // "sender@example.org" names no one's side
		}
		if id >= int32(len(ourSideWords)) {
			theirs = true
		} else if ours < 0 {
			ours = id
		}
	})
	if theirs || ours < 0 {
		return "", false
	}
	return ourSideReasons[ours], true
}

// inAddress reports whether the word that ends at end is part of an email
// address: the run of non-separator bytes around it holds an '@'.
func inAddress(text string, end int) bool {
	for i := end; i < len(text) && !addressStop(text[i]); i++ {
		if text[i] == '@' {
			return true
		}
	}
	for i := end - 1; i >= 0 && !addressStop(text[i]); i-- {
		if text[i] == '@' {
			return true
		}
	}
	return false
}

// addressStop ends an address token.
func addressStop(b byte) bool {
	switch b {
	case ' ', '\t', '<', '>', '(', ')', '[', ']', '"', '\'', ',', ';', ':':
		return true
	}
	return false
}
