// Package fallback is the reply classifier's statistical fallback: a
// multinomial naive Bayes model over the words, word pairs and codes of a
// reply, trained on the development rows of the catalog's labelled corpus.
// The catalog consults it only when no text rule decided and the codes say
// nothing the catalog can act on; the rails that keep it from suppressing a
// recipient on weak evidence are in the catalog, not here.
//
// The model file (data/fallback.tsv in the catalog) holds document counts,
// not weights: training is integer counting, so the file that Build writes
// from the same rows is identical on every machine, and a test can insist
// that the embedded file is exactly what the dev rows produce.
package fallback

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/reboundhq/rebound/internal/catalog/internal/opaque"
)

// Input is what the model reads of one reply: the parsed codes and the
// reply's own text, as the catalog's parser splits them. Not the MTA's prose
// before the reply: a wrapper says where the reply came from, not what went
// wrong (the catalog's TestWrappersDoNotDecide).
type Input struct {
	Code     int    // basic code, 0 if none
	Enhanced string // enhanced code, "" if none
	Text     string // the reply text, without its codes
}

// Bounds on the work done for one reply: a reply longer than this is read
// only up to it (the first few hundred bytes say what went wrong).
const (
	maxInputBytes = 512
	maxTokens     = 80
	maxFeatures   = 2*maxTokens + 4
)

// tokens is a reply normalised into lower-case word tokens separated by a
// single space ("recipient address rejected @addr user unknown"), with the
// start of each token. A word pair is then the substring from one token's
// start to the next token's end, so the trainer (strings) and the classifier
// (hashes) read the same features by construction.
type tokens struct {
	buf    [maxTokenBytes]byte
	n      int // bytes of buf in use
	starts [maxTokens]int32
	ns     int // tokens
}

// maxTokenBytes bounds the normalised text; tokens past it are dropped.
const maxTokenBytes = 768

// normalise appends the tokens of s. An e-mail address is the token
// "@addr" (its local part is noise), a host name "@host"; digits end a word and are dropped (the
// codes are features of their own); other words are runs of letters,
// lower-cased, at least two letters long; Chinese, Japanese and Korean runs,
// written without spaces, give their character pairs.
func (t *tokens) normalise(s string) {
	if len(s) > maxInputBytes {
		s = s[:maxInputBytes]
	}
	for i := 0; i < len(s) && t.ns < maxTokens; {
		// One whitespace-separated chunk.
		for i < len(s) && isSpace(s[i]) {
			i++
		}
		j := i
		at := false
		for j < len(s) && !isSpace(s[j]) {
			if s[j] == '@' {
				at = true
			}
			j++
		}
		if at && j-i > 2 {
			t.emit("@addr")
		} else {
			t.chunk(s[i:j])
		}
		i = j
	}
}

// chunk emits the words of one whitespace-free chunk, each host name in it as
// the token "@host": a receiver's names for its machines ("spam-in.mx.example.net")
// are as much noise as an address's local part.
func (t *tokens) chunk(s string) {
	var buf [2]opaque.Span
	hosts := opaque.Hosts(s, buf[:0])
	from := 0
	for _, h := range hosts {
		t.words(s[from:h.Lo])
		t.emit("@host")
		from = h.Hi
	}
	t.words(s[from:])
}

// words emits the letter runs of one chunk.
func (t *tokens) words(s string) {
	runStart, runes, cjkRun := -1, 0, false
	flush := func(end int) {
		if runStart < 0 {
			return
		}
		switch {
		case cjkRun:
			t.cjk(s[runStart:end])
		case runes >= 2:
			t.emitLower(s[runStart:end])
		}
		runStart, runes = -1, 0
	}
	for i := 0; i < len(s); {
		r, n := rune(s[i]), 1
		if r >= utf8.RuneSelf {
			r, n = utf8.DecodeRuneInString(s[i:])
		}
		letter := r < utf8.RuneSelf && ('a' <= r|0x20 && r|0x20 <= 'z') ||
			r >= utf8.RuneSelf && (unicode.IsLetter(r) || unicode.Is(unicode.Mn, r))
		if !letter {
			flush(i)
		} else {
			isCJK := r >= 0x2E80 && (unicode.Is(unicode.Han, r) || unicode.Is(unicode.Hiragana, r) ||
				unicode.Is(unicode.Katakana, r) || unicode.Is(unicode.Hangul, r) || r == 'ー')
			if runStart >= 0 && isCJK != cjkRun {
				flush(i)
			}
			if runStart < 0 {
				runStart, cjkRun = i, isCJK
			}
			runes++
		}
		i += n
	}
	flush(len(s))
}

// cjk emits the character pairs of a run (the character itself when alone).
func (t *tokens) cjk(s string) {
	_, first := utf8.DecodeRuneInString(s)
	if first == len(s) {
		t.emit(s)
		return
	}
	for i := 0; i < len(s) && t.ns < maxTokens; {
		_, a := utf8.DecodeRuneInString(s[i:])
		if i+a >= len(s) {
			break
		}
		_, b := utf8.DecodeRuneInString(s[i+a:])
		t.emit(s[i : i+a+b])
		i += a
	}
}

func (t *tokens) emit(w string) {
	if !t.open(len(w)) {
		return
	}
	t.n += copy(t.buf[t.n:], w)
}

// emitLower emits w lower-cased (ASCII by table, other letters by
// unicode.ToLower).
func (t *tokens) emitLower(w string) {
	if !t.open(len(w) + 8) {
		return
	}
	for i := 0; i < len(w) && t.n+utf8.UTFMax <= len(t.buf); {
		c := w[i]
		if c < utf8.RuneSelf {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			t.buf[t.n] = c
			t.n++
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(w[i:])
		t.n += utf8.EncodeRune(t.buf[t.n:], unicode.ToLower(r))
		i += n
	}
}

// open starts a token that needs up to size bytes, after a separating
// space; false when the token limit or the buffer would be exceeded.
func (t *tokens) open(size int) bool {
	if t.ns >= maxTokens || t.n+1+size > len(t.buf) {
		return false
	}
	if t.n > 0 {
		t.buf[t.n] = ' '
		t.n++
	}
	t.starts[t.ns] = int32(t.n)
	t.ns++
	return true
}

// end is where token k ends in buf.
func (t *tokens) end(k int) int {
	if k+1 < t.ns {
		return int(t.starts[k+1]) - 1
	}
	return t.n
}

// registeredCode reports whether a basic reply code is one RFC 5321 and its
// extensions (AUTH, STARTTLS, RFC 7504) define. Only those are features of their
// own: a made-up code ("599", "577") means no more than its class, and one
// training row with it must not teach the model that the code itself is a verdict.
func registeredCode(code int) bool {
	switch code {
	case 421, 432, 450, 451, 452, 454, 455,
		500, 501, 502, 503, 504, 521, 523, 530, 534, 535, 538, 550, 551, 552, 553, 554, 555, 556:
		return true
	}
	return false
}

// features walks the features of a reply: each token, each pair of
// adjacent tokens, then the codes ("#b5", "#b550", "#e5.1", "#e5.1.1", or
// "#bnone" / "#enone"). A feature may repeat; callers count it once. It is
// an iterator rather than a callback so that the classifier's scratch
// buffers stay on its stack.
type features struct {
	t     tokens
	in    Input
	k     int  // next token
	pair  bool // the pair starting at token k is next
	codes int  // code features emitted so far
	cb    [24]byte
}

func newFeatures(f *features, in Input) {
	f.in = in
	f.t.normalise(in.Text)
}

// next returns the next feature, or nil when there are no more. The slice
// is valid until the following call.
func (f *features) next() []byte {
	t := &f.t
	for f.k < t.ns {
		k := f.k
		if !f.pair {
			f.pair = true
			return t.buf[t.starts[k]:t.end(k)]
		}
		f.pair = false
		f.k++
		if k+1 < t.ns {
			return t.buf[t.starts[k]:t.end(k+1)]
		}
	}
	f.codes++
	code, enh := f.in.Code, f.in.Enhanced
	hasCode := code >= 100 && code <= 999
	hasEnh := enh != "" && len(enh) <= 16 && strings.Trim(enh, "0123456789.") == ""
	switch f.codes {
	case 1:
		if !hasCode {
			return append(f.cb[:0], "#bnone"...)
		}
		return strconv.AppendInt(append(f.cb[:0], "#b"...), int64(code/100), 10)
	case 2:
		if hasCode && registeredCode(code) {
			return strconv.AppendInt(append(f.cb[:0], "#b"...), int64(code), 10)
		}
		f.codes++
		fallthrough
	case 3:
		if !hasEnh {
			return append(f.cb[:0], "#enone"...)
		}
		if dot := strings.IndexByte(enh, '.'); dot >= 0 {
			if second := strings.IndexByte(enh[dot+1:], '.'); second >= 0 {
				return append(append(f.cb[:0], "#e"...), enh[:dot+1+second]...)
			}
		}
		f.codes++
		fallthrough
	case 4:
		if hasEnh {
			return append(append(f.cb[:0], "#e"...), enh...)
		}
	}
	return nil
}

// Features returns the distinct features of a reply, in first-seen order
// (for the trainer and for tests; the classifier hashes them instead).
func Features(in Input) []string {
	var out []string
	seen := map[string]bool{}
	f := new(features)
	newFeatures(f, in)
	for b := f.next(); b != nil; b = f.next() {
		if !seen[string(b)] {
			seen[string(b)] = true
			out = append(out, string(b))
		}
	}
	return out
}

func isSpace(b byte) bool {
	return b == ' ' || b == '\t' || b == '\n' || b == '\r' || b == '\f' || b == '\v'
}

// hash is 64-bit FNV-1a.
func hash(b []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return h
}
