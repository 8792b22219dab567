package catalog

import (
	"bytes"
	"strings"
	"unsafe"
)

// Reply is a parsed SMTP reply: the remote server's codes and its words,
// with the wrappers that ESPs and MTAs put around them removed.
type Reply struct {
	Code     int    // basic (three-digit) code, 0 if none was found
	Enhanced string // enhanced status code such as "5.1.1", "" if none
	Text     string // diagnostic text without codes and wrappers, folded to one line with single spaces
}

// maxCandidates bounds the reply tokens ParseReply looks at, so a huge or
// hostile input costs linear time and no heap growth.
const maxCandidates = 16

// codeToken is one basic reply code found in the text.
type codeToken struct {
	pos    int    // index of the first digit
	end    int    // index just past the code and an adjacent enhanced code
	code   int    // e.g. 550
	enh    string // enhanced code written right after it, "" if none
	strong bool   // positioned like a real reply rather than a number in prose
}

// ParseReply extracts the basic code, the enhanced code and the text of the
// remote server's reply from whatever an ESP handed us. It understands
// `smtp;`/`dns;` diagnostic prefixes, Postfix `host … said:` and
// `(in reply to … command)`, Microsoft `Remote Server returned '…'`, Brevo
// `RecipientError:`, Exchange/qmail `#5.1.1`, multi-line replies
// (`550-5.1.1 …` continuation lines) and concatenated transcripts, where the
// first non-2xx/3xx reply counts: a trailing `503 5.5.1 RCPT first` is a
// consequence of the earlier rejection, not its cause.
//
// It never panics and allocates only when continuation lines, line breaks,
// doubled and Unicode spaces or HTML character references have to be folded
// out of the text.
func ParseReply(s string) Reply {
	r, _ := parse(normalizeReply(s))
	return r
}

// parse is ParseReply that also returns the prose before the reply
// ("Your message wasn't delivered … because the address couldn't be
// found. The response was:"), which Classify reads for context.
func parse(s string) (Reply, string) {
	s = stripWrappers(s)

	var toks [maxCandidates]codeToken
	n := findCodes(s, toks[:])
	cands := toks[:n]

	chosen := -1
	// A token in reply position beats a number in prose; among those the
	// first non-2xx/3xx reply wins.
	for pass := 0; pass < 2 && chosen < 0; pass++ {
		for i := range cands {
			if (pass == 0) != cands[i].strong {
				continue
			}
			if c := cands[i].code / 100; c == 4 || c == 5 {
				chosen = i
				break
			}
		}
	}

	// Exchange relays the remote server's answer inside its own: "554 5.4.4
	// <mx.example #5.4.4 smtp;550 5.4.4 Unable to relay>". The inner reply,
	// after its Diagnostic-Code type "smtp;", is the reason; the outer one
	// only says that the delivery failed.
	for chosen >= 0 && chosen+1 < len(cands) {
		next := cands[chosen+1]
		if c := next.code / 100; (c != 4 && c != 5) || !afterDiagnosticType(s, next.pos) {
			break
		}
		chosen++
	}

	// A reply whose first line lost its basic code starts at its enhanced code as
	// surely as at "550 5.1.1": "5.1.1 The email account … does not exist. Please
	// try 550-5.1.1 double-checking …" is one reply with continuation lines, and
	// "4.1.1 <x>: Recipient address rejected: … said: 550 5.1.1 …" a deferral that
	// quotes another server's reply, not that reply. Not a status that heads its
	// own description of the reply that follows: Exchange's relayed reply
	// ("5.1.0 < #5.1.10 smtp;550 5.1.10 …", as below) and Amazon SES's "5.1.0 -
	// Unknown address error 550-'5.1.1 …'", where the inner reply is the reason.
	if chosen >= 0 {
		if p, e := firstEnhanced(s, 0, cands[chosen].pos); p >= 0 && (p == 0 || onlyPunct(s[:p])) &&
			cands[0].pos > p && !afterDiagnosticType(s, cands[0].pos) &&
			!dashNext(s[p+len(e):]) {
			return replyFrom(s, codeToken{pos: p, end: p + len(e), enh: e}, cands)
		}
	}

	var r Reply
	if chosen < 0 {
		// No basic code: the enhanced code may still stand alone ("#5.1.2",
		// "5.2.2 <x>... Mailbox Full").
		if p, e := firstEnhanced(s, 0, len(s)); p >= 0 {
			r.Enhanced = e
			if p == 0 || onlyPunct(s[:p]) {
				// The code leads the text: the words after it are the reply.
				s = s[p+len(e):]
			}
		}
		r.Text = foldText(s, nil)
		return r, ""
	}

	return replyFrom(s, cands[chosen], cands[chosen+1:])
}

// replyFrom is the reply that starts at tok, the codes found after it being
// rest, and the prose before it. tok.code is 0 for a reply that starts at its
// enhanced code; a continuation line of it lends it its basic code.
func replyFrom(s string, tok codeToken, rest []codeToken) (Reply, string) {
	r := Reply{Code: tok.code, Enhanced: tok.enh}

	// The reply runs until a different reply starts. Repeats of the same
	// code are continuation lines ("550-5.1.1 …") and are folded out. A
	// number in prose does not end it: Sendmail writes
	// "554 <x>... 550 Host unknown", where the inner words are the reason.
	cut := len(s)
	var skips [maxCandidates][2]int
	nskip := 0
	for _, c := range rest {
		if tok.code == 0 && c.enh == tok.enh {
			tok.code, r.Code = c.code, c.code // "5.1.1 … 550-5.1.1 …"
		}
		if c.code == tok.code && (c.enh == "" || tok.enh == "" || c.enh == tok.enh) {
			end := c.end
			if end < len(s) && (s[end] == '-' || s[end] == ' ') {
				end++ // the separator of a continuation line ("554-No SMTP service")
			}
			skips[nskip] = [2]int{c.pos - tok.end, end - tok.end}
			nskip++
			continue
		}
		if !c.strong {
			continue
		}
		cut = c.pos
		break
	}
	seg := s[tok.end:cut]
	if r.Enhanced == "" {
		if p, e := firstEnhanced(seg, 0, len(seg)); p >= 0 {
			r.Enhanced = e
		}
	}
	r.Text = foldText(seg, skips[:nskip])
	return r, s[:tok.pos]
}

// dashNext reports whether s opens with a dash after its spaces: " - " (or an en
// dash), as a status heads its description ("5.1.0 - Unknown address error …").
func dashNext(s string) bool {
	s = strings.TrimLeft(s, " ")
	return s != "" && (s[0] == '-' || dashAt(s, 0) > 0)
}

// afterDiagnosticType reports whether the code at pos follows a
// Diagnostic-Code type ("smtp;", "smtp; "), as a relayed reply does.
func afterDiagnosticType(s string, pos int) bool {
	i := pos
	for i > 0 && s[i-1] == ' ' {
		i--
	}
	return i >= len("smtp;") && hasSuffixFold(s[:i], "smtp;")
}

// stripWrappers removes the envelope that ESPs and MTAs put around the remote
// reply. It only ever returns a substring of s.
func stripWrappers(s string) string {
	s = strings.TrimSpace(s)
	// Diagnostic-Code type prefix: "smtp;550 …", "smtp; 550 …", "dns; …".
	for i := 0; i < len(s) && i <= 12; i++ {
		c := s[i]
		if c == ';' && i > 0 {
			s = strings.TrimSpace(s[i+1:])
			break
		}
		if !(isLetter(c) || c == '-') {
			break
		}
	}
	if hasPrefixFold(s, "recipienterror:") {
		s = strings.TrimSpace(s[len("recipienterror:"):])
	}
	// A client library's exception chain around the reply: JavaMail's
	// "javax.mail.SendFailedException: Invalid Addresses; nested exception is:
	// com.sun.mail.smtp.SMTPAddressFailedException: 550 …", MailKit's
	// "SmtpCommandException: 550 …". The reply starts after the exception name
	// that a reply code follows; the words before it are the library's ("Invalid
	// Addresses" is what JavaMail calls any refused RCPT), not the server's. A
	// text that opens with its reply code has no chain before it (and Exchange's
	// own "STOREDRV.Deliver.Exception:…" inside a reply is not one).
	for off := 0; !startsWithReply(s); {
		i := strings.Index(s[off:], "Exception:")
		if i < 0 {
			break
		}
		off += i + len("Exception:")
		if rest := strings.TrimSpace(s[off:]); len(rest) >= 4 && rest[0] >= '2' && rest[0] <= '5' &&
			isDigit(rest[1]) && isDigit(rest[2]) && (rest[3] == ' ' || rest[3] == '-') {
			s, off = rest, 0
		}
	}
	// Microsoft: Remote Server returned '550 5.1.1 RESOLVER…'. The closing
	// quote is one not followed by a letter, so "doesn't" stays inside, and
	// not one that closes a quote opened inside ("Please supply 'From'
	// header field").
	// Searching for the quote byte first keeps the common case (no quote)
	// to one vectorised scan.
	for off := 0; ; {
		q := strings.IndexByte(s[off:], '\'')
		if q < 0 {
			break
		}
		q += off
		if q >= len("returned ") && hasSuffixFold(s[:q], "returned ") {
			inner := s[q+1:]
			end, open := len(inner), 0
			for j := 0; j < len(inner); j++ {
				if inner[j] != '\'' {
					continue
				}
				before := j > 0 && isLetter(inner[j-1])
				after := j+1 < len(inner) && isLetter(inner[j+1])
				if !before && after {
					open++ // an inner quotation opens
				} else if !after {
					if open == 0 {
						end = j
						break
					}
					open--
				}
			}
			s = strings.TrimSpace(inner[:end])
			break
		}
		off = q + 1
	}
	// Postfix: host mx.example.com[192.0.2.1] said: 550 …
	// Not when the text already starts with a reply of its own: in
	// "450 4.1.1 <x>: Recipient address rejected: unverified address: host
	// mx[…] said: 550 5.1.1 …" the outer 450 is the answer and the inner
	// 550 only a quoted verification result.
	for off := 0; !startsWithReply(s); {
		c := strings.IndexByte(s[off:], ':')
		if c < 0 {
			break
		}
		c += off
		if c >= len(" said") && hasSuffixFold(s[:c], " said") {
			s = strings.TrimSpace(s[c+1:])
			break
		}
		off = c + 1
	}
	return s
}

// startsWithReply reports whether s begins with a 4xx or 5xx reply code
// ("450 …", "550-…") or, a first line that lost its basic code, with a 4.x.x or
// 5.x.x enhanced one ("4.1.1 <x>: Recipient address rejected …").
func startsWithReply(s string) bool {
	if len(s) >= 4 && (s[0] == '4' || s[0] == '5') && isDigit(s[1]) && isDigit(s[2]) &&
		(s[3] == ' ' || s[3] == '-') {
		return true
	}
	return len(s) >= 5 && (s[0] == '4' || s[0] == '5') && s[1] == '.' && enhancedAt(s, 0) > 0
}

// findCodes records up to len(out) basic reply codes in s, in order.
func findCodes(s string, out []codeToken) int {
	n := 0
	for i := 0; i+3 <= len(s) && n < len(out); i++ {
		c0 := s[i]
		if c0 < '2' || c0 > '5' || !isDigit(s[i+1]) || !isDigit(s[i+2]) {
			continue
		}
		if i > 0 && !codeBoundaryBefore(s[i-1]) {
			continue
		}
		j := i + 3
		if j < len(s) && !(s[j] == ' ' || s[j] == '-' || s[j] == '\t' || s[j] == '\r' || s[j] == '\n') {
			continue
		}
		t := codeToken{pos: i, end: j, code: int(c0-'0')*100 + int(s[i+1]-'0')*10 + int(s[i+2]-'0')}
		// An enhanced code right after it ("550 5.1.1", "550-5.1.1", "550 #5.1.1").
		k := j
		for k < len(s) && k < j+3 && (s[k] == ' ' || s[k] == '-' || s[k] == '#') {
			k++
		}
		if l := enhancedAt(s, k); l > 0 {
			t.enh = s[k : k+l]
			t.end = k + l
		}
		t.strong = i == 0 || t.enh != "" || (j < len(s) && s[j] == '-') || strongBefore(s, i)
		if !t.strong && unitWordAfter(s, j) {
			continue // "limit of 500 recipients", "after 450 minutes"
		}
		out[n] = t
		n++
		i = t.end - 1
	}
	return n
}

// codeBoundaryBefore reports whether a code may start after byte b: not in
// the middle of a word, a number or an IP address.
func codeBoundaryBefore(b byte) bool {
	return !(isDigit(b) || isLetter(b) || b == '.' || b == '-' || b == '_' || b == '/' || b >= 0x80)
}

// strongBefore: the code follows a separator that introduces a reply
// ("said: 550", "TO:550", "'550", "[550", "#550", "\n550").
func strongBefore(s string, i int) bool {
	j := i - 1
	if j >= 0 && s[j] == ' ' {
		j--
	}
	if j < 0 {
		return true
	}
	switch s[j] {
	case ':', ';', '\'', '"', '[', '(', '#', '\n', '\r', '>', '<':
		return true
	}
	return false
}

// unitWordAfter spots numbers in prose ("500 recipients").
func unitWordAfter(s string, j int) bool {
	if j >= len(s) || s[j] != ' ' {
		return false
	}
	rest := s[j+1:]
	for _, w := range [...]string{"recipient", "minute", "hour", "second", "day", "message", "byte", "kb", "mb", "connection", "time", "attempt", "per "} {
		if hasPrefixFold(rest, w) {
			return true
		}
	}
	return false
}

// enhancedAt returns the length of an enhanced status code starting at i
// (class 2, 4 or 5; subject and detail of one to three digits), 0 if none.
func enhancedAt(s string, i int) int {
	if i >= len(s) || !(s[i] == '2' || s[i] == '4' || s[i] == '5') {
		return 0
	}
	if i > 0 && (isDigit(s[i-1]) || s[i-1] == '.' || isLetter(s[i-1])) {
		return 0
	}
	j := i + 1
	for part := 0; part < 2; part++ {
		if j >= len(s) || s[j] != '.' {
			return 0
		}
		j++
		k := j
		for k < len(s) && isDigit(s[k]) && k-j < 4 {
			k++
		}
		if k == j || k-j > 3 {
			return 0
		}
		j = k
	}
	// Not part of a longer dotted number (IP address, version string).
	if j < len(s) && (isDigit(s[j]) || isLetter(s[j]) || (s[j] == '.' && j+1 < len(s) && isDigit(s[j+1]))) {
		return 0
	}
	return j - i
}

// firstEnhanced finds the first class 4 or 5 enhanced code in s[from:to].
func firstEnhanced(s string, from, to int) (int, string) {
	for i := from; i < to; i++ {
		if s[i] != '4' && s[i] != '5' {
			continue
		}
		if l := enhancedAt(s[:to], i); l > 0 {
			return i, s[i : i+l]
		}
	}
	return -1, ""
}

// foldText trims the reply text, drops the byte ranges in skip (continuation
// prefixes), turns line breaks into spaces and removes Postfix's trailing
// "(in reply to … command)". It returns a substring when nothing has to be
// removed from the middle.
func foldText(s string, skip [][2]int) string {
	if len(skip) > 0 || hasControlSpace(s) {
		// Whole segments are copied and fixed up with vectorised searches
		// (line breaks and tabs become spaces, then doubled spaces are
		// squeezed), rather than deciding byte by byte. unsafe.String
		// hands the buffer over without a second copy; nothing else
		// refers to it.
		b := make([]byte, 0, len(s))
		prev := 0
		for _, sk := range skip {
			if sk[0] < prev {
				continue // overlaps a range already skipped
			}
			b = append(b, s[prev:sk[0]]...)
			prev = sk[1]
		}
		b = append(b, s[prev:]...)
		for _, c := range [...]byte{'\r', '\n', '\t'} {
			for i := bytes.IndexByte(b, c); i >= 0; {
				b[i] = ' '
				j := bytes.IndexByte(b[i+1:], c)
				if j < 0 {
					break
				}
				i += 1 + j
			}
		}
		if i := bytes.Index(b, []byte("  ")); i >= 0 {
			w := i + 1
			for r := i + 1; r < len(b); r++ {
				if b[r] == ' ' && b[w-1] == ' ' {
					continue
				}
				b[w] = b[r]
				w++
			}
			b = b[:w]
		}
		s = unsafe.String(unsafe.SliceData(b), len(b))
	}
	s = strings.TrimSpace(s)
	if strings.HasSuffix(s, ")") {
		if i := strings.LastIndex(s, "(in reply to "); i >= 0 {
			s = strings.TrimSpace(s[:i])
		}
	}
	return strings.TrimLeft(s, " :-")
}

func hasControlSpace(s string) bool {
	return strings.IndexByte(s, '\n') >= 0 || strings.IndexByte(s, '\r') >= 0 || strings.IndexByte(s, '\t') >= 0
}

func onlyPunct(s string) bool {
	for i := 0; i < len(s); i++ {
		if isLetter(s[i]) || isDigit(s[i]) {
			return false
		}
	}
	return true
}

func isDigit(b byte) bool  { return '0' <= b && b <= '9' }
func isLetter(b byte) bool { return ('a' <= b && b <= 'z') || ('A' <= b && b <= 'Z') }

// hasPrefixFold is an ASCII case-insensitive strings.HasPrefix for a
// lower-case prefix.
func hasPrefixFold(s, lowerPrefix string) bool {
	if len(s) < len(lowerPrefix) {
		return false
	}
	for i := 0; i < len(lowerPrefix); i++ {
		if lowerASCII(s[i]) != lowerPrefix[i] {
			return false
		}
	}
	return true
}

// hasSuffixFold is an ASCII case-insensitive strings.HasSuffix for a
// lower-case suffix.
func hasSuffixFold(s, lowerSuffix string) bool {
	if len(s) < len(lowerSuffix) {
		return false
	}
	return hasPrefixFold(s[len(s)-len(lowerSuffix):], lowerSuffix)
}

// remoteHostIn pulls the remote MTA's name out of Postfix/Exim wording
// ("host mx.example.com[192.0.2.1] said:", "host mx.example.com [192.0.2.1]:")
// so provider rules can apply when the ESP gave no host. "" if none.
func remoteHostIn(s string) string {
	return readWrapper(s).host
}

// hostAt reads the host name that starts at s[start:] (just after "host "):
// a dotted name, not an IP address, followed by "[" or a space.
func hostAt(s string, start int) string {
	end := start
	for end < len(s) && (isLetter(s[end]) || isDigit(s[end]) || s[end] == '.' || s[end] == '-' || s[end] == '_') {
		end++
	}
	h := s[start:end]
	if strings.IndexByte(h, '.') > 0 && end < len(s) && (s[end] == '[' || s[end] == ' ') && !isDigit(h[len(h)-1]) {
		return strings.TrimRight(h, ".")
	}
	return ""
}
