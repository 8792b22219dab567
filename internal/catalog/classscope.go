package catalog

// ClassScope returns the scope a class always has, and false for a class the catalog
// does not know. The policy uses it to refuse, at load time, a rule that would
// suppress recipients for a sender-side class.
func (c *Catalog) ClassScope(cl Class) (Scope, bool) {
	ci, ok := c.classes[cl]
	if !ok {
		return "", false
	}
	return ci.scope, true
}
