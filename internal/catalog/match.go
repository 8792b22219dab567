package catalog

// matcher finds every pattern of a fixed set inside a text in one pass
// (Aho–Corasick compiled to a DFA). Classification runs it once per reply, so
// the cost of a reply is linear in its length no matter how many rules the
// catalog holds. Matching is ASCII case-insensitive: patterns are stored
// lower-cased and each input byte is folded while scanning, which avoids
// allocating a lower-cased copy of the text.
type matcher struct {
	classes [256]uint8 // input byte -> alphabet class; upper and lower case share one
	nclass  int        // number of alphabet classes, class 0 = "not in any pattern"
	// delta[state*nclass+class] is the next state, pre-multiplied by nclass
	// so the scan loop does no multiplication; the sign bit marks states
	// that complete at least one pattern.
	delta    []int32
	outStart []int32 // per state: range into outs
	outEnd   []int32
	outs     []int32 // pattern IDs recognised on entering a state
	npat     int
}

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

	// Alphabet compression keeps the DFA table small: only bytes that occur
	// in some pattern get their own column.
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
	m.nclass = next

	// Build the trie with sparse children first.
	type node struct {
		next map[uint8]int32
		fail int32
		outs []int32
	}
	nodes := []node{{next: map[uint8]int32{}}}
	for id, p := range patterns {
		cur := int32(0)
		for i := 0; i < len(p); i++ {
			c := m.classes[lowerASCII(p[i])]
			n, ok := nodes[cur].next[c]
			if !ok {
				n = int32(len(nodes))
				nodes = append(nodes, node{next: map[uint8]int32{}})
				nodes[cur].next[c] = n
			}
			cur = n
		}
		nodes[cur].outs = append(nodes[cur].outs, int32(id))
	}

	// Breadth-first: failure links and the dense transition table.
	m.delta = make([]int32, len(nodes)*m.nclass)
	queue := make([]int32, 0, len(nodes))
	for c := 0; c < m.nclass; c++ {
		if n, ok := nodes[0].next[uint8(c)]; ok {
			nodes[n].fail = 0
			m.delta[c] = n
			queue = append(queue, n)
		}
	}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		f := nodes[s].fail
		nodes[s].outs = append(nodes[s].outs, nodes[f].outs...)
		for c := 0; c < m.nclass; c++ {
			if n, ok := nodes[s].next[uint8(c)]; ok {
				nodes[n].fail = m.delta[int(f)*m.nclass+c]
				m.delta[int(s)*m.nclass+c] = n
				queue = append(queue, n)
			} else {
				m.delta[int(s)*m.nclass+c] = m.delta[int(f)*m.nclass+c]
			}
		}
	}

	// Fold case into the byte classes and pre-multiply the transitions.
	for b := 'A'; b <= 'Z'; b++ {
		m.classes[b] = m.classes[b+('a'-'A')]
	}
	for i, next := range m.delta {
		v := next * int32(m.nclass)
		if len(nodes[next].outs) > 0 {
			v |= -1 << 31
		}
		m.delta[i] = v
	}

	m.outStart = make([]int32, len(nodes))
	m.outEnd = make([]int32, len(nodes))
	for i := range nodes {
		m.outStart[i] = int32(len(m.outs))
		m.outs = append(m.outs, nodes[i].outs...)
		m.outEnd[i] = int32(len(m.outs))
	}
	return m
}

// scan marks in set (a bitset with at least npat bits) every pattern that
// occurs in s.
func (m *matcher) scan(s string, set []uint64) {
	state := int32(0) // pre-multiplied
	delta, classes := m.delta, &m.classes
	for i := 0; i < len(s); i++ {
		v := delta[state+int32(classes[s[i]])]
		state = v & 0x7fffffff
		if v < 0 {
			st := state / int32(m.nclass)
			for _, id := range m.outs[m.outStart[st]:m.outEnd[st]] {
				set[id>>6] |= 1 << (uint(id) & 63)
			}
		}
	}
}

func hasBit(set []uint64, id int32) bool {
	return set[id>>6]&(1<<(uint(id)&63)) != 0
}
