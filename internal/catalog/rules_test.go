package catalog

import "testing"

// TestRuleExamples runs every rule's own examples and near misses from the
// YAML, so no rule can be added, reordered or shadowed without evidence.
func TestRuleExamples(t *testing.T) {
	t.Parallel()
	c := setup(t)
	for _, rl := range c.rules {
		t.Run(rl.id, func(t *testing.T) {
			t.Parallel()
			if len(rl.spec.Examples) == 0 || len(rl.spec.NotExamples) == 0 {
				t.Fatalf("%s:%d: rule needs at least one example and one not_example", rl.spec.file, rl.spec.line)
			}
			h := Hints{}
			if len(rl.hosts) > 0 {
				h.RemoteHost = "mx." + rl.hosts[0]
			}
			for _, ex := range rl.spec.Examples {
				if got := c.Classify(ex, h); got.Rule != rl.id {
					t.Errorf("example %q decided by %s (%s), want %s", ex, got.Rule, got.Class, rl.id)
				}
			}
			for _, ex := range rl.spec.NotExamples {
				if got := c.Classify(ex, h); got.Rule == rl.id {
					t.Errorf("not_example %q decided by %s", ex, rl.id)
				}
			}
		})
	}
}
