package catalog

import (
	"embed"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/reboundhq/rebound/internal/catalog/internal/fallback"
)

// The embedded catalog. Operators extend it with their own rule file
// (REBOUND_CATALOG_RULES) instead of rebuilding the binary.
//
//go:embed data/classes.yaml data/codes.yaml data/rules.yaml data/fallback.tsv
var dataFS embed.FS

// Default returns the embedded catalog, validated. It fails only if the
// embedded data is broken, which the package tests rule out.
func Default() (*Catalog, error) {
	return Load("")
}

// Load returns the embedded catalog plus the operator's rule file at
// overrideRulesPath ("" = none). Operator rules are evaluated before the
// embedded ones, so a site can correct a verdict for its own traffic; their
// IDs must not repeat embedded IDs. Any problem is reported with the file
// name and line.
func Load(overrideRulesPath string) (*Catalog, error) {
	c := &Catalog{
		entries: map[string]*entrySpec{},
		classes: map[Class]*classInfo{},
		byID:    map[string]*rule{},
	}
	for _, step := range []struct {
		file string
		load func(string, []byte) error
	}{
		{"data/classes.yaml", c.loadClasses},
		{"data/codes.yaml", c.loadCodes},
	} {
		b, err := dataFS.ReadFile(step.file)
		if err != nil {
			return nil, fmt.Errorf("catalog: read embedded %s: %w", step.file, err)
		}
		if err := step.load(step.file, b); err != nil {
			return nil, err
		}
	}

	var specs []ruleSpec
	if overrideRulesPath != "" {
		b, err := os.ReadFile(overrideRulesPath)
		if err != nil {
			return nil, fmt.Errorf("catalog: read rule file %s: %w", overrideRulesPath, err)
		}
		s, err := parseRules(overrideRulesPath, b)
		if err != nil {
			return nil, err
		}
		specs = append(specs, s...)
	}
	b, err := dataFS.ReadFile("data/rules.yaml")
	if err != nil {
		return nil, fmt.Errorf("catalog: read embedded data/rules.yaml: %w", err)
	}
	s, err := parseRules("data/rules.yaml", b)
	if err != nil {
		return nil, err
	}
	specs = append(specs, s...)
	if err := c.compileRules(specs); err != nil {
		return nil, err
	}
	mb, err := dataFS.ReadFile("data/fallback.tsv")
	if err != nil {
		return nil, fmt.Errorf("catalog: read embedded data/fallback.tsv: %w", err)
	}
	if c.model, err = fallback.Parse(mb); err != nil {
		return nil, fmt.Errorf("catalog: data/fallback.tsv: %w", err)
	}
	c.prepareModelReasons()
	return c, nil
}

// ---- YAML plumbing -------------------------------------------------------

// posError names the file and line of a bad item, the way an operator
// looks for it in an editor.
func posError(file string, line int, format string, args ...any) error {
	return fmt.Errorf("catalog: %s:%d: %s", file, line, fmt.Sprintf(format, args...))
}

// topList parses a document and returns the sequence under key.
func topList(file string, b []byte, key string) ([]*yaml.Node, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("catalog: %s: %w", file, err)
	}
	if len(doc.Content) == 0 {
		return nil, fmt.Errorf("catalog: %s: empty document", file)
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, posError(file, root.Line, "top level must be a mapping with key %q", key)
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if k.Value != key {
			return nil, posError(file, k.Line, "unknown top-level key %q (want %q)", k.Value, key)
		}
		if v.Kind != yaml.SequenceNode {
			return nil, posError(file, v.Line, "%q must be a list", key)
		}
		return v.Content, nil
	}
	return nil, fmt.Errorf("catalog: %s: missing top-level key %q", file, key)
}

// decodeStrict decodes one mapping item, rejecting keys outside allowed so a
// typo ("patern:") fails loudly instead of silently disabling a rule.
func decodeStrict(file string, n *yaml.Node, allowed string, out any) error {
	if n.Kind != yaml.MappingNode {
		return posError(file, n.Line, "item must be a mapping")
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if !strings.Contains(" "+allowed+" ", " "+k.Value+" ") {
			return posError(file, k.Line, "unknown field %q", k.Value)
		}
	}
	if err := n.Decode(out); err != nil {
		return posError(file, n.Line, "%v", err)
	}
	return nil
}

// ---- classes -------------------------------------------------------------

type classSpec struct {
	Class           Class    `yaml:"class"`
	Scope           Scope    `yaml:"scope"`
	Permanent       bool     `yaml:"permanent"`
	AlwaysTransient bool     `yaml:"always_transient"`
	Description     string   `yaml:"description"`
	Fix             []string `yaml:"fix"`
}

func validScope(s Scope) bool {
	switch s {
	case ScopeRecipient, ScopeSender, ScopeMessage, ScopeInfrastructure, ScopeUnknown:
		return true
	}
	return false
}

func (c *Catalog) loadClasses(file string, b []byte) error {
	items, err := topList(file, b, "classes")
	if err != nil {
		return err
	}
	for _, n := range items {
		var s classSpec
		if err := decodeStrict(file, n, "class scope permanent always_transient description fix", &s); err != nil {
			return err
		}
		switch {
		case s.Class == "":
			return posError(file, n.Line, "class name missing")
		case c.classes[s.Class] != nil:
			return posError(file, n.Line, "duplicate class %q", s.Class)
		case !validScope(s.Scope):
			return posError(file, n.Line, "class %q: unknown scope %q", s.Class, s.Scope)
		case (s.Scope == ScopeUnknown) != (s.Class == ClassUnknown):
			return posError(file, n.Line, "class %q: scope unknown is reserved for class unknown", s.Class)
		case strings.TrimSpace(s.Description) == "":
			return posError(file, n.Line, "class %q: description missing", s.Class)
		}
		c.classes[s.Class] = &classInfo{
			scope: s.Scope, permanent: s.Permanent, alwaysTransient: s.AlwaysTransient,
			description: strings.TrimSpace(s.Description), fix: s.Fix,
		}
	}
	for _, cl := range []Class{ClassRecipientUnknown, ClassDomainInvalid, ClassMailboxDisabled, ClassMailboxFull,
		ClassRecipientMoved, ClassRecipientRateLimited, ClassAuthRequired, ClassAuthFailed, ClassTLSRequired,
		ClassRelayDenied, ClassSenderAuthPolicy, ClassSenderAddressRejected, ClassReputationBlock, ClassRateLimited,
		ClassMessageTooLarge, ClassContentRejected, ClassPolicyRejected, ClassGreylisted, ClassNetworkError,
		ClassRemoteError, ClassExpired, ClassProtocolError, ClassAutoReply, ClassUnknown} {
		if c.classes[cl] == nil {
			return fmt.Errorf("catalog: %s: class %q is not described", file, cl)
		}
	}
	return nil
}

// ---- code entries --------------------------------------------------------

// entrySpec is an Entry plus what only the classifier needs.
type entrySpec struct {
	Entry
	// generic marks catch-all basic codes (550, 554, 421 …) that say less
	// than any enhanced code written beside them.
	generic bool
	idx     int // position in Catalog.order, for the reason cache

	// Built once at load so a code decision costs no allocation: the rule
	// IDs ("enhanced.5.1.1", "basic.550") and the reason sentences, one per
	// way the entry can decide (see codeKind), without and with the 4xx cap.
	ruleID  string
	reasons [numCodeKinds][2]string
}

// variant overrides fields of an X.y.z entry for one class digit: 5.4.4 is
// a dead domain while 4.4.4 is a routing hiccup.
type variant struct {
	Title    string `yaml:"title"`
	Scope    Scope  `yaml:"scope"`
	Class    Class  `yaml:"class"`
	Severity string `yaml:"severity"`
}

type codeSpec struct {
	Code      string   `yaml:"code"`
	Title     string   `yaml:"title"`
	RFC       string   `yaml:"rfc"`
	Scope     Scope    `yaml:"scope"`
	Class     Class    `yaml:"class"`
	Severity  string   `yaml:"severity"`
	Category  string   `yaml:"category"`
	Meaning   string   `yaml:"meaning"`
	Causes    []string `yaml:"causes"`
	Fix       []string `yaml:"fix"`
	Generic   bool     `yaml:"generic"`
	Transient bool     `yaml:"transient"` // never permanent, even as 5xx (mailbox full)
	On4       *variant `yaml:"on4"`
	On5       *variant `yaml:"on5"`
}

const codeFields = "code title rfc scope class severity category meaning causes fix generic transient on4 on5"

func (c *Catalog) loadCodes(file string, b []byte) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return fmt.Errorf("catalog: %s: %w", file, err)
	}
	basic, err := topListKey(file, &doc, "basic")
	if err != nil {
		return err
	}
	enhanced, err := topListKey(file, &doc, "enhanced")
	if err != nil {
		return err
	}
	var basicCodes, enhCodes []string
	for _, n := range basic {
		var s codeSpec
		if err := decodeStrict(file, n, codeFields, &s); err != nil {
			return err
		}
		v, err := strconv.Atoi(s.Code)
		if err != nil || v < 200 || v > 599 || len(s.Code) != 3 {
			return posError(file, n.Line, "basic code %q is not a three-digit reply code", s.Code)
		}
		e := &entrySpec{Entry: s.entry(s.Code, v/100 == 5 && !s.Transient), generic: s.Generic}
		if err := c.addEntry(file, n.Line, e); err != nil {
			return err
		}
		basicCodes = append(basicCodes, s.Code)
	}
	for _, n := range enhanced {
		var s codeSpec
		if err := decodeStrict(file, n, codeFields, &s); err != nil {
			return err
		}
		if !strings.HasPrefix(s.Code, "X.") || enhancedAt("5"+s.Code[1:], 0) != len(s.Code) {
			return posError(file, n.Line, "enhanced code %q must look like X.1.1", s.Code)
		}
		for _, d := range []string{"4", "5"} {
			code := d + s.Code[1:]
			e := &entrySpec{Entry: s.entry(code, d == "5" && !s.Transient)}
			v := s.On4
			if d == "5" {
				v = s.On5
			}
			if v != nil {
				if v.Title != "" {
					e.Title = v.Title
				}
				if v.Scope != "" {
					e.Scope = v.Scope
				}
				if v.Class != "" {
					e.Class = v.Class
				}
				if v.Severity != "" {
					e.Severity = v.Severity
				}
			}
			// An enhanced security/policy code alone never blames the
			// recipient: only words saying the mailbox is unknown or
			// disabled may, and those are rules, not code entries.
			if e.Scope == ScopeRecipient && strings.HasPrefix(s.Code, "X.7.") {
				return posError(file, n.Line, "%s: X.7.* entries must not have scope recipient", code)
			}
			if err := c.addEntry(file, n.Line, e); err != nil {
				return err
			}
			enhCodes = append(enhCodes, code)
		}
	}
	sort.Strings(basicCodes)
	sort.Slice(enhCodes, func(i, j int) bool { return enhLess(enhCodes[i], enhCodes[j]) })
	c.order = append(basicCodes, enhCodes...)
	for i, code := range c.order {
		e := c.entries[code]
		e.idx = i
		e.ruleID = "enhanced." + code
		if !strings.Contains(code, ".") {
			e.ruleID = "basic." + code
		}
		for k := codeKind(1); k < numCodeKinds; k++ {
			base := k.describe(e)
			e.reasons[k][0] = base
			e.reasons[k][1] = base + capNote
		}
	}
	return nil
}

func topListKey(file string, doc *yaml.Node, key string) ([]*yaml.Node, error) {
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("catalog: %s: top level must be a mapping", file)
	}
	root := doc.Content[0]
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == key {
			if root.Content[i+1].Kind != yaml.SequenceNode {
				return nil, posError(file, root.Content[i+1].Line, "%q must be a list", key)
			}
			return root.Content[i+1].Content, nil
		}
	}
	return nil, fmt.Errorf("catalog: %s: missing top-level key %q", file, key)
}

func (s codeSpec) entry(code string, permanent bool) Entry {
	return Entry{
		Code: code, Title: s.Title, RFC: s.RFC, Permanent: permanent, Scope: s.Scope, Class: s.Class,
		Severity: s.Severity, Category: s.Category, Meaning: strings.TrimSpace(s.Meaning),
		Causes: s.Causes, Fix: s.Fix,
	}
}

func (c *Catalog) addEntry(file string, line int, e *entrySpec) error {
	ci := c.classes[e.Class]
	switch {
	case c.entries[e.Code] != nil:
		return posError(file, line, "duplicate entry %s", e.Code)
	case e.Title == "" || e.RFC == "" || e.Meaning == "" || e.Category == "":
		return posError(file, line, "%s: title, rfc, category and meaning are required", e.Code)
	case len(e.Causes) == 0 || len(e.Fix) == 0:
		return posError(file, line, "%s: causes and fix must not be empty", e.Code)
	case ci == nil:
		return posError(file, line, "%s: unknown class %q", e.Code, e.Class)
	case !validScope(e.Scope):
		return posError(file, line, "%s: unknown scope %q", e.Code, e.Scope)
	case e.Scope != ci.scope:
		return posError(file, line, "%s: scope %q disagrees with class %q (scope %q)", e.Code, e.Scope, e.Class, ci.scope)
	}
	switch e.Severity {
	case "low", "medium", "high", "critical":
	default:
		return posError(file, line, "%s: severity %q must be low, medium, high or critical", e.Code, e.Severity)
	}
	c.entries[e.Code] = e
	if v, err := strconv.Atoi(e.Code); err == nil {
		c.basicByCode[v] = e
	} else if k, ok := splitEnhanced(e.Code); ok {
		if c.enhByCode == nil {
			c.enhByCode = map[[3]int]*entrySpec{}
		}
		c.enhByCode[k] = e
	}
	return nil
}

// enhLess orders enhanced codes numerically: 4.x before 5.x, 5.7.9 before 5.7.10.
func enhLess(a, b string) bool {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < 3; i++ {
		x, _ := strconv.Atoi(pa[i])
		y, _ := strconv.Atoi(pb[i])
		if x != y {
			return x < y
		}
	}
	return false
}

// ---- rules ---------------------------------------------------------------

// ruleSpec is one rule as written in YAML.
type ruleSpec struct {
	ID          string   `yaml:"id"`
	Class       Class    `yaml:"class"`
	Scope       Scope    `yaml:"scope"`
	Permanent   *bool    `yaml:"permanent"`
	Confidence  float64  `yaml:"confidence"`
	Match       []string `yaml:"match"`
	All         []string `yaml:"all"`
	AndAny      []string `yaml:"and_any"`
	Unless      []string `yaml:"unless"`
	Codes       []string `yaml:"codes"`
	Hosts       []string `yaml:"hosts"`
	Fix         []string `yaml:"fix"`
	Note        string   `yaml:"note"`
	Examples    []string `yaml:"examples"`
	NotExamples []string `yaml:"not_examples"`

	file     string
	line     int            // line of the item
	keyLines map[string]int // line of each field, so errors point at it
}

const ruleFields = "id class scope permanent confidence match all and_any unless codes hosts fix note examples not_examples"

func parseRules(file string, b []byte) ([]ruleSpec, error) {
	items, err := topList(file, b, "rules")
	if err != nil {
		return nil, err
	}
	out := make([]ruleSpec, 0, len(items))
	for _, n := range items {
		var s ruleSpec
		if err := decodeStrict(file, n, ruleFields, &s); err != nil {
			return nil, err
		}
		s.file, s.line = file, n.Line
		s.keyLines = map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			s.keyLines[n.Content[i].Value] = n.Content[i].Line
		}
		out = append(out, s)
	}
	return out, nil
}

// codePat is a compiled code condition: a basic code ("550", "5xx") or an
// enhanced code with wildcards ("5.7.26", "x.7.*"). -1 is a wildcard.
type codePat struct {
	enhanced bool
	parts    [3]int
}

func parseCodePat(p string) (codePat, error) {
	p = strings.ToLower(strings.TrimSpace(p))
	if strings.Contains(p, ".") {
		fs := strings.Split(p, ".")
		if len(fs) != 3 {
			return codePat{}, errors.New("enhanced code pattern needs three parts")
		}
		cp := codePat{enhanced: true}
		for i, f := range fs {
			if f == "x" || f == "*" {
				cp.parts[i] = -1
				continue
			}
			v, err := strconv.Atoi(f)
			if err != nil || v < 0 || v > 999 || (i == 0 && v != 2 && v != 4 && v != 5) {
				return codePat{}, fmt.Errorf("bad part %q", f)
			}
			cp.parts[i] = v
		}
		return cp, nil
	}
	if len(p) != 3 {
		return codePat{}, errors.New("basic code pattern needs three characters")
	}
	var cp codePat
	for i := 0; i < 3; i++ {
		switch {
		case p[i] == 'x':
			cp.parts[i] = -1
		case isDigit(p[i]):
			cp.parts[i] = int(p[i] - '0')
		default:
			return codePat{}, fmt.Errorf("bad character %q", p[i])
		}
	}
	if cp.parts[0] < 2 || cp.parts[0] > 5 {
		return codePat{}, errors.New("basic code must start with 2, 3, 4 or 5")
	}
	return cp, nil
}

// rule is a compiled rule.
type rule struct {
	id         string
	class      Class
	scope      Scope
	permanent  *bool
	confidence float64
	index      int     // position in Catalog.rules
	match      []int32 // pattern IDs of match:, in file order (one is enough)
	all        []int32 // pattern IDs that must all occur
	andAny     []int32 // at least one of these must occur too (when set)
	unless     []int32 // pattern IDs that must not occur
	// andMask and unlessMask are andAny and unless as bitset words, so a
	// long list costs a few AND operations instead of one test per pattern.
	andMask, unlessMask []wordMask
	// matched[i] is the reason prefix when match[i] is the pattern seen:
	// `text rule <id> matched "<pattern>"`, built once at load.
	matched []string
	// andWords are the and_any patterns as written, for the reason.
	andWords []string
	codes    []codePat
	hosts    []string // lower-cased host suffixes
	fix      []string
	spec     ruleSpec // kept for tests (examples) and explain output
}

func (c *Catalog) compileRules(specs []ruleSpec) error {
	patID := map[string]int32{}
	var patterns []string
	intern := func(p string) int32 {
		// Folded and spelled as the text is: ASCII by the matcher, the
		// rest by foldCase and spellingForm, which classify applies to the
		// reply first.
		p = asciiLower(spellingForm(foldCase(p)))
		if id, ok := patID[p]; ok {
			return id
		}
		id := int32(len(patterns))
		patID[p] = id
		patterns = append(patterns, p)
		return id
	}
	var matchIDs [][]int32
	for _, s := range specs {
		// bad reports at the line of the offending field, or of the item.
		bad := func(field, format string, args ...any) error {
			line := s.line
			if l, ok := s.keyLines[field]; ok {
				line = l
			}
			return posError(s.file, line, "rule %q: %s", s.ID, fmt.Sprintf(format, args...))
		}
		if s.ID == "" {
			return posError(s.file, s.line, "rule without id")
		}
		if prev, dup := c.byID[s.ID]; dup {
			return bad("id", "duplicate rule id (first at %s:%d)", prev.spec.file, prev.spec.line)
		}
		ci := c.classes[s.Class]
		if ci == nil {
			return bad("class", "unknown class %q", s.Class)
		}
		scope := ci.scope
		if s.Scope != "" {
			if !validScope(s.Scope) || s.Scope == ScopeUnknown {
				return bad("scope", "unknown scope %q", s.Scope)
			}
			scope = s.Scope
		}
		if len(s.Match) == 0 {
			return bad("match", "match must list at least one pattern")
		}
		for field, list := range map[string][]string{"match": s.Match, "all": s.All, "and_any": s.AndAny, "unless": s.Unless, "hosts": s.Hosts} {
			for _, p := range list {
				if strings.TrimSpace(p) == "" {
					return bad(field, "empty pattern in %s", field)
				}
			}
		}
		if s.Confidence < 0 || s.Confidence > 1 {
			return bad("confidence", "confidence %v outside 0..1", s.Confidence)
		}
		r := &rule{id: s.ID, class: s.Class, scope: scope, permanent: s.Permanent, confidence: s.Confidence, fix: s.Fix, spec: s}
		if r.confidence == 0 {
			r.confidence = 0.85
			if len(s.Hosts) > 0 || len(s.Codes) > 0 {
				r.confidence = 0.9
			}
		}
		for _, cp := range s.Codes {
			p, err := parseCodePat(cp)
			if err != nil {
				return bad("codes", "code %q: %v", cp, err)
			}
			r.codes = append(r.codes, p)
		}
		for _, h := range s.Hosts {
			r.hosts = append(r.hosts, strings.ToLower(strings.TrimPrefix(strings.TrimSpace(h), "*")))
		}
		// match, and_any and unless are "any of" lists: each pattern joins them
		// once, however many case forms of it the list names, in each of its
		// spellings (spellingVariants). all keeps its patterns as written, since
		// each of them must be found.
		anyOf := func(list []string, add func(id int32, p string)) {
			seen := map[int32]bool{}
			for _, p := range list {
				for _, v := range spellingVariants(p) {
					if id := intern(v); !seen[id] {
						seen[id] = true
						add(id, v)
					}
				}
			}
		}
		var ids []int32
		anyOf(s.Match, func(id int32, p string) {
			ids = append(ids, id)
			r.matched = append(r.matched, fmt.Sprintf("text rule %s matched %q", s.ID, asciiLower(p)))
		})
		r.match = ids
		for _, p := range s.All {
			r.all = append(r.all, intern(p))
		}
		anyOf(s.AndAny, func(id int32, p string) {
			r.andAny = append(r.andAny, id)
			r.andWords = append(r.andWords, asciiLower(p))
		})
		anyOf(s.Unless, func(id int32, _ string) { r.unless = append(r.unless, id) })
		r.andMask = masksOf(r.andAny)
		r.unlessMask = masksOf(r.unless)
		matchIDs = append(matchIDs, ids)
		r.index = len(c.rules)
		c.byID[s.ID] = r
		c.rules = append(c.rules, r)
	}
	// The subject rails' words (subject.go) ride along in the same scan, so a
	// rail knows from the scan's bitset whether it needs to look at all: each
	// word in every spelling the rails read (subject.go's sideMatcher).
	var railWords []int32
	for _, list := range [][]string{ourSideWords, messageWords} {
		for _, w := range list {
			for _, v := range spellingVariants(w) {
				railWords = append(railWords, intern(v))
			}
		}
	}
	c.railMask = masksOf(railWords)
	var bare []int32
	for _, w := range bareNegations {
		bare = append(bare, intern(" "+w[0]))
	}
	c.bareMask = masksOf(bare)
	c.m = newMatcher(patterns)
	c.patRules = make([][]int32, len(patterns))
	for ri, ids := range matchIDs {
		for _, id := range ids {
			c.patRules[id] = append(c.patRules[id], int32(ri))
		}
	}
	c.nwords = (len(patterns) + 63) / 64
	c.nrwords = (len(c.rules) + 63) / 64
	return nil
}

// wordMask is one word of a pattern bitset: the patterns of a list that
// fall in word w.
type wordMask struct {
	w int32
	m uint64
}

// masksOf groups pattern IDs by bitset word, in word order.
func masksOf(ids []int32) []wordMask {
	var out []wordMask
	for _, id := range ids {
		w := id >> 6
		i := 0
		for i < len(out) && out[i].w < w {
			i++
		}
		if i == len(out) || out[i].w != w {
			out = append(out, wordMask{})
			copy(out[i+1:], out[i:])
			out[i] = wordMask{w: w}
		}
		out[i].m |= 1 << (uint(id) & 63)
	}
	return out
}

// asciiLower folds A-Z and leaves every other byte alone.
func asciiLower(s string) string {
	b := []byte(s)
	for i := range b {
		b[i] = lowerASCII(b[i])
	}
	return string(b)
}
