// Package opaque finds the parts of a reply's text whose words do not say why the
// reply failed: its email addresses and its host names. People choose them — the
// recipient's local part, our return path, a receiver's names for its machines —
// so "spam.trap@example.org" or "blocked.mx.example.net" must not decide what a
// reply means. The catalog's matcher and its subject rails skip words inside these
// spans, and the statistical fallback reads each as one token.
package opaque

import "strings"

// Span is text[Lo:Hi].
type Span struct{ Lo, Hi int }

// Address is the address an Addresses span holds, without the punctuation a
// reply may put against it ("<x@example.org>.", "from=x@example.org").
func (sp Span) Address(text string) string {
	return strings.Trim(text[sp.Lo:sp.Hi], ".=/")
}

// Addresses appends to out the email-address tokens of s in text order: the
// run of non-separator bytes (addressStop) around each '@'.
func Addresses(s string, out []Span) []Span {
	from := 0
	for {
		at := strings.IndexByte(s[from:], '@')
		if at < 0 {
			return out
		}
		at += from
		lo, hi := at, at+1
		// A local part never holds "..": "not allowed...x@example.org" is
		// words, then an address.
		for lo > 0 && !addressStop(s[lo-1]) && !(lo > 1 && s[lo-1] == '.' && s[lo-2] == '.') {
			lo--
		}
		for hi < len(s) && !addressStop(s[hi]) {
			hi++
		}
		out = append(out, Span{lo, hi})
		from = hi
	}
}

// Spans appends to out, in text order, the spans of s whose words a reply's
// reader must not take as the reply's: its email addresses (Addresses) and its
// host names (Hosts). Both are chosen by people — the recipient's local part,
// a receiver's naming of its machines ("spam-in.mx.example.net", "sender.example.org")
// — and say nothing about why this reply failed.
func Spans(s string, out []Span) []Span {
	base := len(out)
	out = Addresses(s, out)
	naddr := len(out)
	out = Hosts(s, out)
	// Drop the host names inside an address (its domain, or a dotted local part),
	// then merge the two ordered runs. A reply names a few of each, so an
	// insertion sort is cheapest.
	kept := naddr
	for _, h := range out[naddr:] {
		inside := false
		for _, a := range out[base:naddr] {
			if h.Lo < a.Hi && a.Lo < h.Hi {
				inside = true
				break
			}
		}
		if !inside {
			out[kept] = h
			kept++
		}
	}
	out = out[:kept]
	for i := base + 1; i < len(out); i++ {
		for j := i; j > base && out[j].Lo < out[j-1].Lo; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// Hosts appends to out the host names of s in text order: runs of letters,
// digits, hyphens and dots of two or more labels whose last label is a top-level
// domain ("mx1.example.com", "AM0PR01MB1234.eurprd01.prod.outlook.com"). What is not a
// host stays words: Exchange's dotted diagnostics ("RESOLVER.ADR.RecipNotFound"), IP
// addresses, two words a missing space joined ("full.Please"), and a dotted pair
// whose last word is also a country code ("rejected.It", "mailbox.is"; such a host
// needs three labels to count).
func Hosts(s string, out []Span) []Span {
	from := 0
	for {
		dot := strings.IndexByte(s[from:], '.')
		if dot < 0 {
			return out
		}
		dot += from
		lo, hi := dot, dot+1
		for lo > 0 && hostByte(s[lo-1]) {
			lo--
		}
		for hi < len(s) && hostByte(s[hi]) {
			hi++
		}
		from = hi
		for lo < hi && (s[lo] == '.' || s[lo] == '-') {
			lo++
		}
		for hi > lo && (s[hi-1] == '.' || s[hi-1] == '-') {
			hi--
		}
		if isHostName(s[lo:hi]) {
			out = append(out, Span{lo, hi})
		}
	}
}

func hostByte(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '-' || b == '.'
}

// isHostName reports whether name (letters, digits, hyphens and dots, trimmed)
// is a host name by its shape and its top-level domain.
func isHostName(name string) bool {
	last := strings.LastIndexByte(name, '.')
	if last <= 0 {
		return false
	}
	key, ok := tldKey(name[last+1:])
	if !ok {
		return false
	}
	switch topLevelDomains.kind(key) {
	case tldPlain:
	case tldWord:
		if strings.Count(name, ".") < 2 {
			return false
		}
	default:
		return false
	}
	for i := 1; i < last; i++ {
		if name[i] == '.' && name[i-1] == '.' {
			return false // "not allowed..x" is words
		}
	}
	return !NamesAList(name)
}

// tldKey packs a would-be top-level domain (2 to 12 letters, either case) into an
// integer, five bits a letter, so that looking it up neither copies nor hashes a
// string; ok is false for anything else.
func tldKey(tld string) (key uint64, ok bool) {
	if len(tld) < 2 || len(tld) > 12 {
		return 0, false
	}
	for i := 0; i < len(tld); i++ {
		b := tld[i] | 0x20
		if b < 'a' || b > 'z' {
			return 0, false
		}
		key = key<<5 | uint64(b-'a'+1)
	}
	return key, true
}

// NamesAList reports whether a host name is a block list's, a reputation
// lookup's or a sender-policy service's ("zen.spamhaus.org",
// "dnsbl-1.uceprotect.net", "spf.pobox.com"): there
// the name is what the reply says — which list refused us, or that the
// message's links are listed (multi.uribl.com) — so its words stay readable. One
// of its labels, lower-cased and without a trailing number ("dnsbl-1"), is one of
// listLabels.
func NamesAList(name string) bool {
	// The last label is the top-level domain, never a list's.
	for {
		dot := strings.IndexByte(name, '.')
		if dot < 0 {
			return false
		}
		label := name[:dot]
		name = name[dot+1:]
		for len(label) > 0 && (label[len(label)-1] == '-' || label[len(label)-1] >= '0' && label[len(label)-1] <= '9') {
			label = label[:len(label)-1]
		}
		if len(label) < 2 || len(label) > len(labelBuf{}) || !listPrefix[prefixKey(label)] {
			continue
		}
		var buf labelBuf
		for i := 0; i < len(label); i++ {
			b := label[i]
			if b >= 'A' && b <= 'Z' {
				b += 'a' - 'A'
			}
			buf[i] = b
		}
		if listLabels[string(buf[:len(label)])] {
			return true
		}
	}
}

// prefixKey is a label's first two bytes, lower-cased, as an index into
// listPrefix: most labels ("mx", "mail", "example") are ruled out by it without
// a map lookup.
func prefixKey(label string) uint16 {
	return uint16(label[0]|0x20)<<8 | uint16(label[1]|0x20)
}

type labelBuf [24]byte

// listLabels are the labels of block lists', reputation lookups' and
// sender-policy services' host names: the generic ones lists name their zones
// with, and the services ("ipcheck.proofpoint.com", "sendersupport.olc.protection.outlook.com").
var listLabels = func() map[string]bool {
	m := map[string]bool{}
	for _, l := range strings.Fields(`bl dnsbl rbl dbl sbl xbl pbl uribl surbl rhsbl blacklist blocklist
		blackholes spf openspf dmarc dkim
		spamhaus spamcop barracudacentral barracuda sorbs abuseat uceprotect mailspike manitu
		spameatingmonkey junkemailfilter gbudb surriel lashback dronebl senderscore invaluement
		nordspam backscatterer spfbl s5h spamrats anonmails
		ipcheck senderbase talosintelligence sendersupport mxtoolbox`) {
		m[l] = true
	}
	return m
}()

// listPrefix holds the prefixKey of every listLabels entry.
var listPrefix = func() *[1 << 16]bool {
	var p [1 << 16]bool
	for l := range listLabels {
		p[prefixKey(l)] = true
	}
	return &p
}()

const (
	tldPlain = 1 + iota
	tldWord  // also a common word of replies: the name needs three labels
)

// topLevelDomains are the top-level domains a host name in a reply ends with: the
// country codes, the original generic ones, the common newer ones that are not
// everyday words of a reply ("host", "support", "email" are left out), and the
// reserved and private-use ones replies and their examples use.
var topLevelDomains = func() *tldTable {
	t := new(tldTable)
	add := func(list string, kind uint8) {
		for _, d := range strings.Fields(list) {
			key, ok := tldKey(d)
			if !ok {
				panic("opaque: bad top-level domain " + d)
			}
			t.add(key, kind)
		}
	}
	add(`ac ad ae af ag ai al ao aq ar au aw ax az ba bb bd bf bg bh bi bj bm bn
		bo br bs bt bw bz ca cc cd cf cg ch ci ck cl cm cn co cr cu cv cw cx cy cz de dj dk dm dz ec ee
		eg er es et eu fi fj fk fm fo fr ga gd ge gf gg gh gi gl gm gn gp gq gr gs gt gu gw gy hk hm hn
		hr ht hu ie il im iq ir je jm jo jp ke kg kh ki km kn kp kr kw ky kz lb lc li lk lr ls lt lu lv
		ly mc md mg mh mk ml mm mn mo mp mq mr ms mt mu mv mw mx mz na nc ne nf ng ni nl np nr nu nz om
		pe pf pg ph pk pl pm pn pr ps pt pw py qa ro rs ru rw sa sb sc sd se sg sh si sk sl sm sn sr ss
		sv sx sy sz tc td tf tg th tj tk tl tm tn tr tt tv tw tz ua ug uk uy uz va vc ve vg vi vn vu wf
		ws ye yt za zm zw
		com net org edu gov mil int info biz name pro mobi aero coop museum jobs travel tel asia arpa
		app dev cloud online site xyz top shop store tech digital systems solutions agency company
		ltd llc blog media design studio club guru website
		example test invalid localhost localdomain lan internal corp onion`, tldPlain)
	add(`am as at be by do go id in is it la ma me my no pa re so st to us`, tldWord)
	return t
}()

// tldTable is a small open-addressing hash set of tldKeys: the lookup runs for every
// dotted token of every reply, and a map's hashing was a fifth of Hosts' time.
type tldTable struct {
	keys  [1024]uint64 // 0: empty (a key is never 0)
	kinds [1024]uint8
}

func (t *tldTable) slot(key uint64) int {
	return int((key * 0x9E3779B97F4A7C15) >> 54)
}

func (t *tldTable) add(key uint64, kind uint8) {
	i := t.slot(key)
	for t.keys[i] != 0 && t.keys[i] != key {
		i = (i + 1) & 1023
	}
	t.keys[i], t.kinds[i] = key, kind
}

// kind is key's tldPlain or tldWord, or 0 when it is not a top-level domain.
func (t *tldTable) kind(key uint64) uint8 {
	for i := t.slot(key); t.keys[i] != 0; i = (i + 1) & 1023 {
		if t.keys[i] == key {
			return t.kinds[i]
		}
	}
	return 0
}

// addressStop ends an address token. A non-ASCII byte ends it too: replies
// written in other scripts put their own punctuation (「」, ：) right against an
// address, and those words are the reply's, not the address's.
func addressStop(b byte) bool {
	switch b {
	case ' ', '\t', '<', '>', '(', ')', '[', ']', '"', '\'', ',', ';', ':':
		return true
	}
	return b >= 0x80
}
