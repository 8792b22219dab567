package catalog

// matcher finds every pattern of a fixed set inside a text in one pass
// (Aho–Corasick). Classification runs it once per reply, so the cost of a
// reply is linear in its length no matter how many rules the catalog holds.
// Matching is ASCII case-insensitive: patterns are stored lower-cased and
// each input byte is folded through the class table while scanning, which
// avoids allocating a lower-cased copy of the text.
//
// The automaton is a hybrid so that it stays in the L1/L2 cache. The shallow
// states, where a scan of ordinary prose spends nearly all its steps, get a
// full DFA row each. The deep states (thousands of them, one per byte of a
// long pattern, almost all with a single child) keep only their children and
// a failure link; a miss there follows the link back towards the shallow
// rows. A fully dense table for the embedded rules would be about 2 MB.
type matcher struct {
	classes [256]uint8 // input byte -> alphabet class; upper and lower case share one
	nclass  int32      // number of alphabet classes, class 0 = "not in any pattern"
	ndense  int32      // states [0, ndense) have a dense row; state 0 is the root
	// dense[s*nclass+class] is the transition of dense state s, encoded as
	// a transition value (see deepBit).
	dense []int32
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
}

type deepState struct {
	first, end int32 // range into edgeClass/edgeNext
	fail       int32
}

// denseBudget bounds the dense rows (in table cells) to about 32 KiB, which
// covers the root and the first two or three trie levels of the embedded
// rules and leaves room in L1 for the rest of the scan.
const denseBudget = 64 << 10

// A transition value names the next state so that the scan loop needs no
// multiplication on the common path: a dense target is stored as the offset
// of its row (state*nclass); a deep target as its state number with deepBit
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
	next := 1
	for _, p := range patterns {
		for i := 0; i < len(p); i++ {
			b := lowerASCII(p[i])
			if m.classes[b] == 0 {
				m.classes[b] = uint8(next)
				next++
			}
		}
	}
	if next > 255 {
		// More than 254 distinct bytes cannot happen with sane patterns, but
		// stay correct anyway by giving up compression.
		for i := range m.classes {
			m.classes[i] = uint8(i)
		}
		next = 256
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

	// Number the states: the shallowest levels that fit the budget first
	// (whole levels, so a dense state's row is cheap to reason about), then
	// the deep states depth-first, so that following one long pattern walks
	// through neighbouring memory.
	perDepth := map[int]int{}
	for _, n := range nodes {
		perDepth[n.depth]++
	}
	maxDepth, total := 0, perDepth[0]
	for d := 1; perDepth[d] > 0; d++ {
		total += perDepth[d]
		if int64(total)*int64(m.nclass) > denseBudget {
			break
		}
		maxDepth = d
	}
	newID := make([]int32, len(nodes))
	order := make([]int32, 0, len(nodes))
	for _, s := range bfs {
		if nodes[s].depth <= maxDepth {
			newID[s] = int32(len(order))
			order = append(order, s)
		}
	}
	m.ndense = int32(len(order))
	var dfs func(s int32)
	dfs = func(s int32) {
		if nodes[s].depth > maxDepth {
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
			v *= m.nclass
		}
		if len(nodes[old].outs) > 0 {
			v |= outFlag
		}
		return v
	}
	m.dense = make([]int32, int(m.ndense)*int(m.nclass))
	for i, old := range order[:m.ndense] {
		row := m.dense[i*int(m.nclass) : (i+1)*int(m.nclass)]
		for c := range row {
			row[c] = flagged(goTo(old, uint8(c)))
		}
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
			return m.dense[s*m.nclass+int32(c)]
		}
	}
}

// scan marks in set (a bitset with at least npat bits) every pattern that
// occurs in s.
func (m *matcher) scan(s string, set []uint64) {
	m.run(s, func(id int32, _ int) { set[id>>6] |= 1 << (uint(id) & 63) })
}

// run calls hit with the ID of every pattern occurrence in s and the index
// just past it, in text order; hit must not retain anything. The loop
// state is a transition value: a dense row offset, or a deep state with
// deepBit set.
func (m *matcher) run(s string, hit func(id int32, end int)) {
	cur := int32(0) // the root's row
	dense, classes := m.dense, &m.classes
	for i := 0; i < len(s); i++ {
		c := classes[s[i]]
		var v int32
		switch {
		case cur&deepBit == 0:
			// Dense rows send class 0 (a byte no pattern contains) to the
			// root themselves, so the common path has no data-dependent
			// branch.
			v = dense[cur+int32(c)]
		case c == 0:
			v = 0
		default:
			v = m.deepStep(cur&valMask, c)
		}
		cur = v &^ outFlag
		if v < 0 {
			st := cur & valMask
			if cur&deepBit == 0 {
				st /= m.nclass
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
