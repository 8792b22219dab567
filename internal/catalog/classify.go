package catalog

import "math/bits"

// Stack sizes for the per-call bitsets; catalogs larger than this (a very
// big operator file) fall back to one heap allocation per call.
const (
	stackPatWords  = 64 // 4096 patterns
	stackRuleWords = 16 // 1024 rules
)

// Confidence levels for decisions that did not come from a rule; they order
// the kinds of evidence, they are not calibrated probabilities.
const (
	confEnhanced        = 0.75
	confBasic           = 0.6
	confEnhancedSubject = 0.5
	confGenericBasic    = 0.35
	confFallback        = 0.2
)

// Classify parses a raw reply (any wrapper ParseReply understands) and
// classifies it. When h.RemoteHost is empty the host named in a Postfix or
// Exim wrapper is used to pick provider rules.
//
// The wrapper also tells at which step of the SMTP dialogue the server
// answered. A refusal of MAIL FROM cannot be about the recipient, so a
// recipient-side verdict there ("550 5.1.1 … user unknown" about our bounce
// address, Exim's "after MAIL FROM: … No such domain") becomes
// sender_address_rejected with rule "stage.mail_from"; one given at the
// greeting or HELO, before any recipient was named, becomes policy_rejected
// with rule "stage.connect".
func (c *Catalog) Classify(reply string, h Hints) Classification {
	reply, t := enter(reply)
	r, pre := parse(reply)
	// Wrapper text (MTA prose around the reply) is what names the host and
	// the dialogue step; a bare reply has none, so skip the search. When it
	// is needed, one pass of a small matcher finds every marker at once.
	wrapped := len(reply) > len(r.Text)+16
	var w wrapperInfo
	read := false
	if h.RemoteHost == "" && wrapped {
		w, read = readWrapper(reply), true
		h.RemoteHost = w.host
	}
	cl := c.classify(r, h, pre, t)
	if !wrapped || cl.Scope == ScopeSender || cl.Scope == ScopeMessage {
		return cl
	}
	if !read {
		w = readWrapper(reply)
	}
	switch {
	case w.stage == stageMailFrom && cl.Scope == ScopeRecipient:
		cl.Class, cl.Scope, cl.Rule = ClassSenderAddressRejected, ScopeSender, "stage.mail_from"
		cl.Reason = reasonStageMailFrom
	case w.stage == stageSenderCheck && cl.Scope == ScopeRecipient:
		cl.Class, cl.Scope, cl.Rule = ClassSenderAddressRejected, ScopeSender, "stage.sender_check"
		cl.Reason = reasonStageSenderCheck
	case w.stage == stageConnect:
		// Refused before any recipient was named: the server does not want
		// to talk to us (blocklist, policy, bad HELO), whatever the words.
		cl.Class, cl.Scope, cl.Rule = ClassPolicyRejected, ScopeSender, "stage.connect"
		cl.Reason = reasonStageConnect
	}
	return cl
}

// stage is the step of the SMTP dialogue a reply answered.
type stage int

const (
	stageUnknown stage = iota
	stageMailFrom
	stageConnect     // greeting or HELO/EHLO
	stageSenderCheck // the receiver's verification of our sender address (a callout)
)

// wrapperMarkers is the MTA wording around a reply that Classify reads,
// each with what it tells: "host " introduces the remote MTA's name
// (Postfix "host mx.example.com[192.0.2.1] said:", Exim "host
// mx.example.com [192.0.2.1]:"); the others name the dialogue step —
// Postfix "(in reply to MAIL FROM command)", Exim "after MAIL FROM:",
// Sendmail ">>> MAIL From:", qmail "but sender was rejected" / "but my name
// was rejected", Postfix "refused to talk to me"; and the words of a failed
// verification of our sender address.
var wrapperMarkers = []struct {
	text  string
	stage stage // stageUnknown for the host marker
}{
	{"host ", stageUnknown},
	{"in reply to mail from", stageMailFrom},
	{"after mail from", stageMailFrom},
	{">>> mail from", stageMailFrom},
	{"but sender was rejected", stageMailFrom},
	{"refused to talk to me", stageConnect},
	{"after initial connection", stageConnect},
	{"my name was rejected", stageConnect},
	{"after ehlo", stageConnect},
	{"after helo", stageConnect},
	{"in reply to ehlo", stageConnect},
	{"in reply to helo", stageConnect},
	// A receiver that verifies our sender address calls our own MX; its report wraps
	// that server's answer ("sender address does not accept mail: 550 5.1.1 <ours>:
	// User unknown"), which names our address as a recipient.
	{"sender address does not accept mail", stageSenderCheck},
	{"sender address doesn't accept mail", stageSenderCheck},
	{"sender address doesnt accept mail", stageSenderCheck},
	{"sender verify failed", stageSenderCheck},
	{"sender verification failed", stageSenderCheck},
	{"sender address verification failed", stageSenderCheck},
	{"could not verify sender", stageSenderCheck},
	{"couldn't verify sender", stageSenderCheck},
}

// wrapperMatcher is compiled once, like the rule matcher; it is tiny, so a
// pass over a long wrapped reply stays in cache.
var wrapperMatcher = func() *matcher {
	ps := make([]string, len(wrapperMarkers))
	for i, mk := range wrapperMarkers {
		ps[i] = mk.text
	}
	return newMatcher(ps)
}()

// wrapperInfo is what the MTA wording around a reply says.
type wrapperInfo struct {
	host  string // remote MTA host name, "" if none
	stage stage
}

// readWrapper finds the remote host and the dialogue step in one pass.
// The first "host " followed by a plausible host name wins; a MAIL FROM
// marker anywhere outranks a connection-stage one.
func readWrapper(raw string) wrapperInfo {
	var w wrapperInfo
	hostDone := false
	wrapperMatcher.run(raw, func(id int32, end int) {
		switch st := wrapperMarkers[id].stage; {
		case st == stageUnknown:
			if !hostDone {
				if h := hostAt(raw, end); h != "" {
					w.host, hostDone = h, true
				}
			}
		case st == stageMailFrom || st == stageSenderCheck:
			w.stage = st
		case w.stage == stageUnknown:
			w.stage = st
		}
	})
	return w
}

// permCap says what removed a rule decision's permanence, for its reason.
type permCap uint8

const (
	notCapped   permCap = iota
	capped4xx           // the reply is a 4xx
	cappedWords         // no code at all, and words that say "temporary"
)

// transientWords are what a reply without any code says when its failure is
// temporary (labelling rule 3: a code-less reply is permanent only without
// "temporary" wording). Only code-less replies are read for them: a 5xx is the
// server's own verdict whatever it adds, a 4xx is transient anyway.
var transientWords = newMatcher([]string{
	"temporar", "try again", "try later", "retry", "retrying", "tempfail", "deferred",
	"will keep trying", "still trying", "transient", "come back later",
})

// transientWording reports whether the text or the prose before it says the
// failure is temporary.
func transientWording(text, pre string) bool {
	found := false
	stop := func(int32, int) { found = true }
	transientWords.run(text, stop)
	if !found && pre != "" {
		transientWords.run(pre, stop)
	}
	return found
}

// ClassifyReply classifies an already parsed reply. Precedence: the first
// matching text rule (operator rules, then provider rules, then generic
// wording), then the specific enhanced code, then a specific basic code,
// then the generic X.Y.0 or subject-level enhanced entry, then a catch-all
// basic code, and finally the class digit. Whatever decided, a 4xx is never
// permanent and an unmatched reply is ClassUnknown, which is never
// suppressible.
func (c *Catalog) ClassifyReply(r Reply, h Hints) Classification {
	var t textTraits
	r.Text, t = enter(r.Text)
	return c.classify(r, h, "", t)
}

// classify is ClassifyReply with the prose that preceded the reply (from
// Classify), scanned apart from the reply text (matchRule). t is the traits of
// the text r and pre came from.
func (c *Catalog) classify(r Reply, h Hints, pre string, t textTraits) Classification {
	// Everything below reads the text folded (casefold.go) and spelled (spelling.go)
	// as the patterns were, whichever entry point parsed it. Most replies need
	// neither, which their traits tell without a look at each text.
	if t&traitsFoldCases != 0 {
		r.Text, pre = foldCase(r.Text), foldCase(pre)
	}
	if t&traitsSpelled != 0 {
		r.Text, pre = spellingForm(r.Text), spellingForm(pre)
	}
	cl, side := c.decide(r, h, pre)
	if cl.Scope == ScopeRecipient && h.Sender != "" && aboutAddress(r.Text, h.Sender) {
		if cl.Permanent {
			cl.Class = ClassSenderAddressRejected
		} else {
			cl.Class = ClassRateLimited // as the our-side rail below: our quota, not the recipient's
		}
		cl.Scope, cl.Rule, cl.Reason = ScopeSender, ruleOurAddress, reasonOurAddress
		return cl
	}
	// The rails' positional check (subject.go) runs only when the scan saw one
	// of their words, or did not scan the text at all.
	if cl.Scope == ScopeRecipient && side != sideScanned {
		switch rule, reason := replySubject(r.Text); {
		case rule == ruleOurSide && cl.Permanent:
			cl.Class, cl.Scope, cl.Rule, cl.Reason = ClassSenderAddressRejected, ScopeSender, rule, reason
		case rule == ruleOurSide:
			// A transient recipient class (a full mailbox, a recipient receiving too
			// fast) about our side is our quota or rate: counted against the
			// recipient it would end in a soft-threshold suppression.
			cl.Class, cl.Scope, cl.Rule, cl.Reason = ClassRateLimited, ScopeSender, rule, reason
		case rule == ruleMessage && cl.Permanent:
			cl.Class, cl.Scope, cl.Rule, cl.Reason = ClassContentRejected, ScopeMessage, rule, reason
		}
	}
	return cl
}

// decide is classify before the subject rails (subject.go); side is what the
// rules' scan of the reply's text saw of the rail's words.
func (c *Catalog) decide(r Reply, h Hints, pre string) (Classification, sideHint) {
	if r.Code == 0 && h.Code >= 200 && h.Code <= 599 {
		r.Code = h.Code
	}
	if r.Enhanced == "" && h.Enhanced != "" && enhancedAt(h.Enhanced, 0) == len(h.Enhanced) {
		r.Enhanced = h.Enhanced
	}
	enh, hasEnh := splitEnhanced(r.Enhanced)
	e, kind := c.codeDecision(r.Code, enh, hasEnh)

	// The prose before the reply is read only when the reply's codes name no class
	// either: the server's own codes outrank an MTA's or an ESP's words around them.
	prose := pre
	if namesClass(e) {
		prose = ""
	}
	rl, pos, andPos, side := c.matchRule(r, prose, enh, hasEnh, h.RemoteHost)
	if rl != nil {
		cl := Classification{Class: rl.class, Scope: rl.scope, Rule: rl.id, Confidence: rl.confidence}
		cl.Code = c.resolveCode(r, enh, hasEnh)
		perm, capped := c.permanence(rl.class, rl.permanent, r.Code, enh, hasEnh, nil)
		why := notCapped
		switch {
		case capped:
			why = capped4xx
		case perm && r.Code == 0 && !hasEnh && transientWording(r.Text, pre):
			perm, why = false, cappedWords
		}
		cl.Permanent = perm
		cl.Reason = c.ruleReason(rl, pos, andPos, e, kind, why)
		return cl, side
	}
	// No rule matched. The codes decide when they name a class; when they
	// name none the statistical fallback may (model.go, with its rails).
	if modelGate(e, r.Code, enh, hasEnh, r.Text) {
		if cl, ok := c.modelDecision(r, enh, hasEnh); ok {
			return cl, side
		}
	}
	if e != nil {
		return c.fromEntry(e, kind, r.Code, enh, hasEnh), side
	}

	digit := classDigit(r.Code, enh, hasEnh)
	switch digit {
	case 4:
		return Classification{Class: ClassRemoteError, Scope: c.classes[ClassRemoteError].scope,
			Rule: "fallback.transient", Confidence: confFallback, Reason: reasonFallbackTransient}, side
	case 5:
		// A 4xx basic code with a 5.x.x enhanced one ("400 5.8.0") is still the server
		// saying "try again": never permanent.
		return Classification{Class: ClassUnknown, Scope: ScopeUnknown, Permanent: r.Code/100 != 4,
			Rule: "fallback.unknown", Confidence: confFallback, Reason: reasonFallbackUnknown}, side
	case 2:
		// A success code in a bounce event: nothing failed that we can name.
		return Classification{Class: ClassUnknown, Scope: ScopeUnknown, Rule: "fallback.success", Reason: reasonFallbackSuccess}, side
	}
	return Classification{Class: ClassUnknown, Scope: ScopeUnknown, Rule: "fallback.unknown", Reason: reasonFallbackUnknown}, side
}

// codeDecision is the catalog entry the reply's codes alone decide for, and
// how: a specific enhanced code, then a specific basic code, then the
// generic X.Y.0 or subject-level enhanced entry, then a catch-all basic code.
// A text rule that matches outranks it; the reason then names it.
func (c *Catalog) codeDecision(code int, enh [3]int, hasEnh bool) (*entrySpec, codeKind) {
	basic := c.basicEntry(code)
	var exact *entrySpec
	if hasEnh {
		exact = c.enhByCode[enh]
	}
	switch {
	case exact != nil && enh[2] != 0:
		return exact, kindEnhanced
	case basic != nil && !basic.generic:
		return basic, kindBasic
	case exact != nil:
		return exact, kindSubject
	}
	if hasEnh {
		// An unregistered detail (5.7.509, 4.7.650) still tells us its
		// class and subject: fall back to the X.Y.0 entry.
		if e := c.enhByCode[[3]int{enh[0], enh[1], 0}]; e != nil {
			return e, kindSubjectOfUnreg
		}
	}
	if basic != nil {
		return basic, kindGenericBasic
	}
	return nil, kindNone
}

// matchRule runs the multi-pattern scan once and returns the first rule,
// in file order, whose conditions all hold. The remote server's own words
// come first; only when they decide nothing is the prose before the reply
// scanned, so a DSN preamble ("the address couldn't be found") never
// outvotes the reply it introduces ("501 5.1.8 Sender address rejected").
// The prose is scanned on its own, not added to the reply's words: an MTA's
// "after RCPT TO:<…>:" names the dialogue step, and joined with the reply's
// "500 5.5.1 Invalid command" it read as an invalid recipient
// (TestWrappersDoNotDecide). decide passes no prose when the reply's codes
// name a class.
func (c *Catalog) matchRule(r Reply, pre string, enh [3]int, hasEnh bool, host string) (*rule, int, int, sideHint) {
	if len(c.rules) == 0 || (r.Text == "" && pre == "") {
		return nil, 0, -1, 0
	}
	var pbuf [stackPatWords]uint64
	var rbuf [stackRuleWords]uint64
	// Past the stack buffers (an override file with many rules) the sets go to
	// the heap; slicing the buffers first would panic.
	var pset, rset []uint64
	if c.nwords <= stackPatWords {
		pset = pbuf[:c.nwords]
	} else {
		pset = make([]uint64, c.nwords)
	}
	if c.nrwords <= stackRuleWords {
		rset = rbuf[:c.nrwords]
	} else {
		rset = make([]uint64, c.nrwords)
	}
	c.scanSpelled(&r.Text, pset)
	side := sideScanned
	if anyOf(pset, c.railMask) {
		side |= sideRailWords
	}
	if rl, pos, andPos := c.firstRule(pset, rset, r.Code, enh, hasEnh, host); rl != nil {
		return rl, pos, andPos, side
	}
	if pre == "" {
		return nil, 0, -1, side
	}
	clear(pset) // the prose alone: see above
	c.scanSpelled(&pre, pset)
	rl, pos, andPos := c.firstRule(pset, rset, r.Code, enh, hasEnh, host)
	return rl, pos, andPos, side
}

// sideHint is what the rules' scan of a reply's text saw of the subject
// rails' words.
type sideHint uint8

const (
	sideScanned   sideHint = 1 << iota // the text was scanned; otherwise nothing is known
	sideRailWords                      // an our-side or message word, perhaps inside an address
)

// scanSpelled scans *text into pset; when the scan saw a negation written without
// its apostrophe ("isnt found"), the text is spelled out ("is not found",
// expandBare) and scanned again, so the rules read it as they read "isn't found".
// Few replies have one: the others pay nothing more than the scan.
func (c *Catalog) scanSpelled(text *string, pset []uint64) {
	c.m.scan(*text, pset)
	if !anyOf(pset, c.bareMask) {
		return
	}
	if x := expandBare(*text); x != *text {
		*text = x
		clear(pset)
		c.m.scan(x, pset)
	}
}

// anyOf reports whether the set holds any pattern of the masks.
func anyOf(set []uint64, masks []wordMask) bool {
	for _, m := range masks {
		if set[m.w]&m.m != 0 {
			return true
		}
	}
	return false
}

// firstRule evaluates, in order, the rules that have a seen pattern under
// match, and returns the first that applies with the positions of its first
// match pattern and first and_any pattern that were seen (for the reason;
// -1 when the rule has no and_any). rset is scratch space.
func (c *Catalog) firstRule(pset, rset []uint64, code int, enh [3]int, hasEnh bool, host string) (*rule, int, int) {
	clear(rset)
	seen := false
	for w, word := range pset {
		for word != 0 {
			bit := word & -word
			word ^= bit
			for _, ri := range c.patRules[w*64+bits.TrailingZeros64(bit)] {
				rset[ri>>6] |= 1 << (uint(ri) & 63)
				seen = true
			}
		}
	}
	if !seen {
		return nil, 0, -1
	}
	for w, word := range rset {
		for word != 0 {
			bit := word & -word
			word ^= bit
			rl := c.rules[w*64+bits.TrailingZeros64(bit)]
			if rl.applies(pset, code, enh, hasEnh, host) {
				pos, andPos := 0, -1
				for i, id := range rl.match {
					if hasBit(pset, id) {
						pos = i
						break
					}
				}
				for i, id := range rl.andAny {
					if hasBit(pset, id) {
						andPos = i
						break
					}
				}
				return rl, pos, andPos
			}
		}
	}
	return nil, 0, -1
}

func (rl *rule) applies(pset []uint64, code int, enh [3]int, hasEnh bool, host string) bool {
	for _, id := range rl.all {
		if !hasBit(pset, id) {
			return false
		}
	}
	if len(rl.andMask) > 0 && !anyOf(pset, rl.andMask) {
		return false
	}
	if anyOf(pset, rl.unlessMask) {
		return false
	}
	if len(rl.codes) > 0 {
		ok := false
		for _, cp := range rl.codes {
			if cp.matches(code, enh, hasEnh) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if len(rl.hosts) > 0 {
		ok := false
		for _, suffix := range rl.hosts {
			if hasSuffixFold(host, suffix) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

func (cp codePat) matches(code int, enh [3]int, hasEnh bool) bool {
	if cp.enhanced {
		if !hasEnh {
			return false
		}
		for i := 0; i < 3; i++ {
			if cp.parts[i] >= 0 && cp.parts[i] != enh[i] {
				return false
			}
		}
		return true
	}
	if code == 0 {
		return false
	}
	d := [3]int{code / 100, code / 10 % 10, code % 10}
	for i := 0; i < 3; i++ {
		if cp.parts[i] >= 0 && cp.parts[i] != d[i] {
			return false
		}
	}
	return true
}

// codeConfidence is how much a code decision of each kind is worth.
var codeConfidence = [numCodeKinds]float64{
	kindEnhanced:       confEnhanced,
	kindBasic:          confBasic,
	kindSubject:        confEnhancedSubject,
	kindSubjectOfUnreg: confEnhancedSubject,
	kindGenericBasic:   confGenericBasic,
}

// fromEntry turns a code entry into a classification. Rule ID and reason
// are strings prepared at load.
func (c *Catalog) fromEntry(e *entrySpec, kind codeKind, code int, enh [3]int, hasEnh bool) Classification {
	perm := e.Permanent
	cl := Classification{Class: e.Class, Scope: e.Scope, Code: e.Code, Rule: e.ruleID, Confidence: codeConfidence[kind]}
	var capped bool
	cl.Permanent, capped = c.permanence(e.Class, nil, code, enh, hasEnh, &perm)
	if capped {
		cl.Reason = e.reasons[kind][1]
	} else {
		cl.Reason = e.reasons[kind][0]
	}
	return cl
}

// permanence decides Permanent. Order: a rule's explicit override, classes
// that are transient by nature (a full mailbox empties, a throttle lifts),
// the entry's own reading, the reply's class digit, the class default. A 4xx
// anywhere in the reply caps it: the server itself said "try again", so no
// class, rule or entry can make a 4xx permanent. capped reports that the cap
// changed the answer.
func (c *Catalog) permanence(cl Class, override *bool, code int, enh [3]int, hasEnh bool, entry *bool) (perm, capped bool) {
	ci := c.classes[cl]
	var p bool
	switch d := classDigit(code, enh, hasEnh); {
	case override != nil:
		p = *override
	case ci.alwaysTransient:
		p = false
	case entry != nil:
		p = *entry
	case d == 5:
		p = true
	case d == 4 || d == 2:
		p = false
	default:
		p = ci.permanent
	}
	if p && (code/100 == 4 || (hasEnh && enh[0] == 4)) {
		return false, true
	}
	return p, false
}

// resolveCode names the catalog entry a rule decision belongs to, so
// FixSteps and `explain` can fall back to it.
// The same precedence as for code decisions applies: a specific enhanced
// code, then a specific basic code (530 says more than 5.7.0), then the rest.
func (c *Catalog) resolveCode(r Reply, enh [3]int, hasEnh bool) string {
	basic := c.basicEntry(r.Code)
	if hasEnh {
		if e := c.enhByCode[enh]; e != nil && (enh[2] != 0 || basic == nil || basic.generic) {
			return e.Code
		}
	}
	if basic != nil {
		return basic.Code
	}
	return ""
}

func (c *Catalog) basicEntry(code int) *entrySpec {
	if code <= 0 || code >= len(c.basicByCode) {
		return nil
	}
	return c.basicByCode[code]
}

// classDigit is the reply's class (2, 4, 5): the enhanced code's when
// present, it being the more deliberate of the two, else the basic code's.
func classDigit(code int, enh [3]int, hasEnh bool) int {
	if hasEnh {
		return enh[0]
	}
	return code / 100
}

// splitEnhanced parses "5.7.26" without allocating.
func splitEnhanced(s string) ([3]int, bool) {
	var out [3]int
	if s == "" {
		return out, false
	}
	part := 0
	for i := 0; i < len(s); i++ {
		switch b := s[i]; {
		case b == '.':
			part++
			if part > 2 {
				return out, false
			}
		case isDigit(b):
			out[part] = out[part]*10 + int(b-'0')
		default:
			return out, false
		}
	}
	return out, part == 2
}
