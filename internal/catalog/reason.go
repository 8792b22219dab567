package catalog

import (
	"fmt"
	"sync"
	"sync/atomic"
)

// Every Classification carries a Reason: one sentence saying which rule or
// code decided and, when a text rule decided against what the reply code
// alone would have said, which code it overrode. Reasons are built from
// strings prepared at load (per rule pattern, per code entry) or, for the
// combination "this text rule over that code", kept in a small cache that is
// filled the first time a combination is seen. Classify therefore allocates
// nothing for a reason once the cache is warm.

// codeKind is how a code entry came to decide, in the order of precedence
// the classifier applies.
type codeKind uint8

const (
	kindNone           codeKind = iota
	kindEnhanced                // a specific enhanced code (5.1.1)
	kindBasic                   // a specific basic code (530)
	kindSubject                 // an enhanced code with detail 0 (5.7.0)
	kindSubjectOfUnreg          // an unregistered detail read as its X.Y.0 entry
	kindGenericBasic            // a catch-all basic code (550, 554, 421)
	numCodeKinds
)

// capNote is appended when the class would be permanent but the reply is
// 4xx: the server itself said "try again".
const capNote = "; not permanent because the reply is a 4xx"

// wordsNote is appended when the class would be permanent but the reply carries no
// code at all and its words say the failure is temporary (transientWording).
const wordsNote = "; not permanent because the reply has no code and its words say the failure is temporary"

// describe is the reason sentence when entry e decides in this way.
func (k codeKind) describe(e *entrySpec) string {
	switch k {
	case kindEnhanced:
		return fmt.Sprintf("enhanced code %s (%s) means %s", e.Code, e.Title, e.Class)
	case kindBasic:
		return fmt.Sprintf("basic code %s (%s) means %s", e.Code, e.Title, e.Class)
	case kindSubject:
		return fmt.Sprintf("enhanced code %s (%s) names only the subject; read as %s", e.Code, e.Title, e.Class)
	case kindSubjectOfUnreg:
		return fmt.Sprintf("enhanced code with an unregistered detail, read as its subject entry %s (%s): %s", e.Code, e.Title, e.Class)
	case kindGenericBasic:
		return fmt.Sprintf("only the catch-all basic code %s (%s) is known: %s", e.Code, e.Title, e.Class)
	}
	return ""
}

// noun is how a rule reason refers to the code it agreed with or overrode.
func (k codeKind) noun() string {
	switch k {
	case kindEnhanced:
		return "enhanced code"
	case kindBasic:
		return "basic code"
	case kindSubject, kindSubjectOfUnreg:
		return "subject-level enhanced code"
	case kindGenericBasic:
		return "catch-all basic code"
	}
	return "code"
}

// Reasons for decisions that are neither a rule nor a code entry.
const (
	reasonFallbackTransient = "no rule or catalog entry matched; a 4xx reply is read as a transient remote error"
	reasonFallbackUnknown   = "no rule or catalog entry matched the reply; unknown is never suppressed"
	reasonFallbackSuccess   = "a 2xx success code in a bounce event: nothing failed that can be named"
	reasonStageMailFrom     = "the server refused our MAIL FROM, so the words are about our sender address, not the recipient"
	reasonStageSenderCheck  = "the wording around the reply says our sender address failed the receiver's verification, so the reply answers a check of our address, not of the recipient"
	reasonStageConnect      = "the server refused us at the greeting or HELO, before any recipient was named: a policy refusal of our side"
)

// reasonCacheMax bounds the rule×code combinations remembered; past it the
// rule's own sentence is used without the code clause (still no allocation).
const reasonCacheMax = 1 << 13

// reasonCache is copy-on-write: readers load the current map without a lock,
// a writer copies it under mu. New combinations are rare after warm-up.
type reasonCache struct {
	m  atomic.Pointer[map[uint64]string]
	mu sync.Mutex
}

// ruleReason is the reason for a decision by rule rl, whose match pattern
// number pos (and and_any pattern andPos, -1 if none) was seen, given the
// code entry e (kind k) that would have decided without the rule and
// what removed permanence (the 4xx cap, temporary words, or nothing).
func (c *Catalog) ruleReason(rl *rule, pos, andPos int, e *entrySpec, k codeKind, capped permCap) string {
	// Key layout: rule 19 bits | pos 12 | andPos+1 12 | entry+1 16 | kind 3 | capped 2.
	key := uint64(rl.index)<<45 | uint64(pos&0xfff)<<33 | uint64((andPos+1)&0xfff)<<21 | uint64(k)<<2
	if e != nil {
		key |= uint64((e.idx+1)&0xffff) << 5
	}
	key |= uint64(capped & 3)
	if m := c.reasons.m.Load(); m != nil {
		if s, ok := (*m)[key]; ok {
			return s
		}
	}
	s := rl.matched[pos]
	if andPos >= 0 && andPos < len(rl.andWords) {
		s += fmt.Sprintf(" with %q", rl.andWords[andPos])
	}
	switch {
	case e == nil:
		s += "; the reply carries no code the catalog knows"
	case e.Class == rl.class:
		s += fmt.Sprintf(", in line with %s %s", k.noun(), e.Code)
	default:
		s += fmt.Sprintf(", overriding %s %s (%s, %s)", k.noun(), e.Code, e.Class, e.Scope)
	}
	switch capped {
	case capped4xx:
		s += capNote
	case cappedWords:
		s += wordsNote
	}
	c.reasons.mu.Lock()
	defer c.reasons.mu.Unlock()
	old := c.reasons.m.Load()
	if old != nil && len(*old) >= reasonCacheMax {
		return rl.matched[pos]
	}
	next := make(map[uint64]string, 1+func() int {
		if old == nil {
			return 0
		}
		return len(*old)
	}())
	if old != nil {
		for k, v := range *old {
			next[k] = v
		}
	}
	next[key] = s
	c.reasons.m.Store(&next)
	return s
}
