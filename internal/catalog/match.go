package catalog

import "github.com/reboundhq/rebound/internal/catalog/internal/opaque"

// matcher finds every pattern of a fixed set inside a text in one pass
// (Aho–Corasick). Classification runs it once per reply, so the cost of a
// reply is linear in its length no matter how many rules the catalog holds.
// Matching is ASCII case-insensitive: patterns are stored lower-cased and
// each input byte is folded through the class table while scanning, which
// avoids allocating a lower-cased copy of the text.
//
// The automaton is a hybrid so that it stays in the L1/L2 cache. The shallow
// states, where a scan of ordinary prose spends nearly all its steps, get a
// DFA row each over the ASCII classes. The deep states (thousands of them, one per byte of a
// long pattern, almost all with a single child) keep only their children and
// a failure link; a miss there follows the link back towards the shallow
// rows. A fully dense table for the embedded rules would be about 2 MB.
//
// Multilingual patterns bring many non-ASCII bytes (UTF-8 lead and
// continuation bytes) into the alphabet. Giving each of them a column in
// every dense row would more than double the row width and push the dense
// levels out of the budget, although English replies almost never contain
// such bytes. So classes are numbered ASCII first: dense rows cover the
// classes below nrow, and a non-ASCII class in a dense state is looked up in
// hiRoot (the root's transitions) and the state's few exceptions to it.
type matcher struct {
	classes [256]uint8 // input byte -> alphabet class; upper and lower case share one
	nclass  int32      // number of alphabet classes, class 0 = "not in any pattern"
	nrow    int32      // classes [0, nrow) are ASCII and have a dense column
	ndense  int32      // states [0, ndense) have a dense row; state 0 is the root
	// dense[s*nrow+class] is the transition of dense state s on an ASCII
	// class, encoded as a transition value (see deepBit).
	dense []int32
	// hiRoot[class-nrow] is the root's transition on a non-ASCII class;
	// hiStart/hiEnd[s] is dense state s's range in hiClass/hiNext of
	// non-ASCII transitions that differ from the root's.
	hiRoot         []int32
	hiStart, hiEnd []int32
	hiClass        []uint8
	hiNext         []int32
	// Deep state s (s >= ndense) is deep[s-ndense]: its children are
	// edgeClass/edgeNext[first:end] (edgeNext holds transition values), and
	// fail is its Aho–Corasick failure link (a plain state number).
	deep      []deepState
	edgeClass []uint8
	edgeNext  []int32
	outStart  []int32 // per state: range into outs
	outEnd    []int32
	outs      []int32 // pattern IDs recognised on entering a state
	npat      int
	// start is where a scan begins: the root after a virtual space, so that a
	// pattern written with a leading space (" ip ", " closed") to keep it off
	// the ends of longer words ("zip ", "enclosed") still matches a word that
	// opens the text ("IP blocked" once the code is split off).
	start int32
}

type deepState struct {
	first, end int32 // range into edgeClass/edgeNext
	fail       int32
}

// denseBudget bounds the dense rows, in table cells (4 bytes each: 512 KiB
// at most). For the embedded rules (about 1,500 patterns) it covers some
// 2,400 ASCII states, the first three trie levels and most of the fourth,
// so that a scan of the sisimai corpus takes about as many deep steps as
// the 700-pattern catalog did with 64 Ki cells. The rows a scan of prose
// actually visits are a small, hot part of the table.
const denseBudget = 128 << 10

// A transition value names the next state so that the scan loop needs no
// multiplication on the common path: a dense target is stored as the offset
// of its row (state*nrow); a deep target as its state number with deepBit
// set. outFlag (the sign bit) marks targets that complete a pattern.
const (
	outFlag = -1 << 31
	deepBit = 1 << 30
	valMask = deepBit - 1
)

// lowerASCII folds A–Z only; non-ASCII bytes pass through so UTF-8 text in
// patterns still matches byte for byte.
func lowerASCII(b byte) byte {
	if 'A' <= b && b <= 'Z' {
		return b + ('a' - 'A')
	}
	return b
}

// newMatcher compiles the patterns; pattern i is reported as ID i. Patterns
// must be non-empty (the loader rejects empty ones before this point).
func newMatcher(patterns []string) *matcher {
	m := &matcher{npat: len(patterns)}

	// Alphabet compression: only bytes that occur in some pattern get their
	// own class; every other byte is class 0 and sends the scan to the root.
	// ASCII bytes are numbered first so that they alone have dense columns.
	next := 1
	for _, ascii := range []bool{true, false} {
		for _, p := range patterns {
			for i := 0; i < len(p); i++ {
				b := lowerASCII(p[i])
				if (b < 0x80) == ascii && m.classes[b] == 0 {
					m.classes[b] = uint8(next)
					next++
				}
			}
		}
		if ascii {
			m.nrow = int32(next)
		}
	}
	if next > 255 {
		// More than 254 distinct bytes cannot happen with sane patterns, but
		// stay correct anyway by giving up compression (every class dense).
		for i := range m.classes {
			m.classes[i] = uint8(i)
		}
		next = 256
		m.nrow = 256
	}
	m.nclass = int32(next)

	// The trie, with sparse children.
	type node struct {
		next  map[uint8]int32
		fail  int32
		depth int
		outs  []int32
	}
	nodes := []node{{next: map[uint8]int32{}}}
	for id, p := range patterns {
		cur := int32(0)
		for i := 0; i < len(p); i++ {
			c := m.classes[lowerASCII(p[i])]
			n, ok := nodes[cur].next[c]
			if !ok {
				n = int32(len(nodes))
				nodes = append(nodes, node{next: map[uint8]int32{}, depth: nodes[cur].depth + 1})
				nodes[cur].next[c] = n
			}
			cur = n
		}
		nodes[cur].outs = append(nodes[cur].outs, int32(id))
	}
	// goTo is the automaton's transition, computed through failure links
	// (valid once the links of every shallower node are set).
	goTo := func(s int32, c uint8) int32 {
		for {
			if n, ok := nodes[s].next[c]; ok {
				return n
			}
			if s == 0 {
				return 0
			}
			s = nodes[s].fail
		}
	}

	// Breadth-first: failure links and merged outputs; bfs is also the
	// order in which the dense states are numbered.
	bfs := make([]int32, 0, len(nodes))
	bfs = append(bfs, 0)
	for qi := 0; qi < len(bfs); qi++ {
		s := bfs[qi]
		for c := int32(0); c < m.nclass; c++ {
			n, ok := nodes[s].next[uint8(c)]
			if !ok {
				continue
			}
			if s != 0 {
				nodes[n].fail = goTo(nodes[s].fail, uint8(c))
			}
			nodes[n].outs = append(nodes[n].outs, nodes[nodes[n].fail].outs...)
			bfs = append(bfs, n)
		}
	}

	// Number the states: dense rows first, for the shallowest states whose
	// path is all ASCII, in breadth-first order until the budget is spent
	// (the last level may be partly dense); then the deep states
	// depth-first, so that following one long pattern walks through
	// neighbouring memory. States reached only through non-ASCII bytes stay
	// deep: English text never visits them, so they would waste dense rows.
	isDense := make([]bool, len(nodes))
	asciiPath := make([]bool, len(nodes))
	asciiPath[0] = true
	for _, s := range bfs {
		for c, n := range nodes[s].next {
			asciiPath[n] = asciiPath[s] && int32(c) < m.nrow
		}
	}
	newID := make([]int32, len(nodes))
	order := make([]int32, 0, len(nodes))
	for _, s := range bfs {
		if asciiPath[s] && int64(len(order)+1)*int64(m.nrow) <= denseBudget {
			isDense[s] = true
			newID[s] = int32(len(order))
			order = append(order, s)
		}
	}
	m.ndense = int32(len(order))
	var dfs func(s int32)
	dfs = func(s int32) {
		if !isDense[s] {
			newID[s] = int32(len(order))
			order = append(order, s)
		}
		for c := int32(0); c < m.nclass; c++ {
			if n, ok := nodes[s].next[uint8(c)]; ok {
				dfs(n)
			}
		}
	}
	dfs(0)

	flagged := func(old int32) int32 {
		v := newID[old]
		if v >= m.ndense {
			v |= deepBit
		} else {
			v *= m.nrow
		}
		if len(nodes[old].outs) > 0 {
			v |= outFlag
		}
		return v
	}
	m.dense = make([]int32, int(m.ndense)*int(m.nrow))
	m.hiRoot = make([]int32, m.nclass-m.nrow)
	for c := m.nrow; c < m.nclass; c++ {
		m.hiRoot[c-m.nrow] = flagged(goTo(0, uint8(c)))
	}
	m.hiStart = make([]int32, m.ndense)
	m.hiEnd = make([]int32, m.ndense)
	for i, old := range order[:m.ndense] {
		row := m.dense[i*int(m.nrow) : (i+1)*int(m.nrow)]
		for c := range row {
			row[c] = flagged(goTo(old, uint8(c)))
		}
		m.hiStart[i] = int32(len(m.hiClass))
		for c := m.nrow; c < m.nclass; c++ {
			if v := flagged(goTo(old, uint8(c))); v != m.hiRoot[c-m.nrow] {
				m.hiClass = append(m.hiClass, uint8(c))
				m.hiNext = append(m.hiNext, v)
			}
		}
		m.hiEnd[i] = int32(len(m.hiClass))
	}
	m.deep = make([]deepState, 0, len(order)-int(m.ndense))
	for _, old := range order[m.ndense:] {
		ds := deepState{first: int32(len(m.edgeClass)), fail: newID[nodes[old].fail]}
		for c := int32(0); c < m.nclass; c++ {
			if n, ok := nodes[old].next[uint8(c)]; ok {
				m.edgeClass = append(m.edgeClass, uint8(c))
				m.edgeNext = append(m.edgeNext, flagged(n))
			}
		}
		ds.end = int32(len(m.edgeClass))
		m.deep = append(m.deep, ds)
	}

	// Fold case into the byte classes.
	for b := 'A'; b <= 'Z'; b++ {
		m.classes[b] = m.classes[b+('a'-'A')]
	}

	m.outStart = make([]int32, len(order))
	m.outEnd = make([]int32, len(order))
	for i, old := range order {
		m.outStart[i] = int32(len(m.outs))
		m.outs = append(m.outs, nodes[old].outs...)
		m.outEnd[i] = int32(len(m.outs))
	}
	if c := int32(m.classes[' ']); c != 0 && c < m.nrow {
		// A pattern that is a lone space would be reported here and is lost;
		// newMatcher's callers have none.
		m.start = m.dense[c] &^ outFlag
	}
	return m
}

// deepStep is the transition value from deep state s on class c: a child
// if s has one for c, else the transition of its failure link.
func (m *matcher) deepStep(s int32, c uint8) int32 {
	for {
		ds := &m.deep[s-m.ndense]
		for e := ds.first; e < ds.end; e++ {
			if m.edgeClass[e] == c {
				return m.edgeNext[e]
			}
		}
		if s = ds.fail; s < m.ndense {
			if int32(c) < m.nrow {
				return m.dense[s*m.nrow+int32(c)]
			}
			return m.hiStep(s, c)
		}
	}
}

// hiStep is the transition value from dense state s on a non-ASCII class c
// (c >= nrow): the state's exception if it has one, else the root's.
func (m *matcher) hiStep(s int32, c uint8) int32 {
	for e := m.hiStart[s]; e < m.hiEnd[s]; e++ {
		if m.hiClass[e] == c {
			return m.hiNext[e]
		}
	}
	return m.hiRoot[int32(c)-m.nrow]
}

// scan marks in set (a bitset with at least npat bits) every pattern that
// occurs in s, except where it ends inside an email address or a host name
// (opaque.Spans): both are chosen by people, and "spam.trap@", "relay@",
// "user@example.com" or "blocked.mx.example.net" must not decide what a reply says
// (the words around them do).
func (m *matcher) scan(s string, set []uint64) {
	// The loop of run, with the bit set inline: the hot path of every
	// classification, where a call per hit would show.
	cur := m.start
	dense, classes, nrow := m.dense, &m.classes, m.nrow
	// The opaque spans of s, in order; next is the first that ends after i.
	var spanBuf [8]opaque.Span
	spans := opaque.Spans(s, spanBuf[:0])
	next := 0
	for i := 0; i < len(s); i++ {
		c := classes[s[i]]
		var v int32
		switch {
		case cur&deepBit == 0 && int32(c) < nrow:
			v = dense[cur+int32(c)]
		case cur&deepBit == 0:
			v = m.hiStep(cur/nrow, c)
		case c == 0:
			v = 0
		default:
			v = m.deepStep(cur&valMask, c)
		}
		cur = v &^ outFlag
		if v < 0 {
			st := cur & valMask
			if cur&deepBit == 0 {
				st /= nrow
			}
			for next < len(spans) && spans[next].Hi <= i {
				next++
			}
			if next < len(spans) && spans[next].Lo <= i {
				continue
			}
			for _, id := range m.outs[m.outStart[st]:m.outEnd[st]] {
				set[id>>6] |= 1 << (uint(id) & 63)
			}
		}
	}
	// The end of the text ends a sentence and a word: a pattern written with a
	// closing full stop ("address rejected.", "konta.") or space (" ip ") to keep
	// it off longer phrases finds its words at the very end too, as it would
	// before a "." or a " " there.
	if len(s) == 0 || len(spans) > 0 && spans[len(spans)-1].Hi >= len(s) {
		return
	}
	for _, end := range [...]byte{'.', ' '} {
		v := m.step(cur, classes[end])
		if v >= 0 {
			continue
		}
		st := v &^ outFlag & valMask
		if v&deepBit == 0 {
			st /= nrow
		}
		for _, id := range m.outs[m.outStart[st]:m.outEnd[st]] {
			set[id>>6] |= 1 << (uint(id) & 63)
		}
	}
}

// step is one transition of the scan loops, from cur on class c.
func (m *matcher) step(cur int32, c uint8) int32 {
	switch {
	case cur&deepBit == 0 && int32(c) < m.nrow:
		return m.dense[cur+int32(c)]
	case cur&deepBit == 0:
		return m.hiStep(cur/m.nrow, c)
	case c == 0:
		return 0
	}
	return m.deepStep(cur&valMask, c)
}

// run calls hit with the ID of every pattern occurrence in s and the index
// just past it, in text order; hit must not retain anything. The loop
// state is a transition value: a dense row offset, or a deep state with
// deepBit set.
func (m *matcher) run(s string, hit func(id int32, end int)) {
	cur := m.start // the root's row after a virtual space
	dense, classes, nrow := m.dense, &m.classes, m.nrow
	for i := 0; i < len(s); i++ {
		c := classes[s[i]]
		var v int32
		switch {
		case cur&deepBit == 0 && int32(c) < nrow:
			// Dense rows send class 0 (a byte no pattern contains) to the
			// root themselves, so the common path has no data-dependent
			// branch.
			v = dense[cur+int32(c)]
		case cur&deepBit == 0:
			v = m.hiStep(cur/nrow, c)
		case c == 0:
			v = 0
		default:
			v = m.deepStep(cur&valMask, c)
		}
		cur = v &^ outFlag
		if v < 0 {
			st := cur & valMask
			if cur&deepBit == 0 {
				st /= nrow
			}
			for _, id := range m.outs[m.outStart[st]:m.outEnd[st]] {
				hit(id, i+1)
			}
		}
	}
}

func hasBit(set []uint64, id int32) bool {
	return set[id>>6]&(1<<(uint(id)&63)) != 0
}
