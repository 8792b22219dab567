package policy

import (
	"strings"
	"testing"

	"github.com/reboundhq/rebound/internal/catalog"
)

// erasure.marker is keep by default, drop on request, and nothing else.
func TestErasureMarker(t *testing.T) {
	t.Parallel()
	cat, err := catalog.Default()
	if err != nil {
		t.Fatal(err)
	}
	if !Default().ErasureMarker {
		t.Fatal("the built-in policy does not keep the erasure marker")
	}
	base := string(DefaultYAML())
	for _, tc := range []struct {
		section string
		keep    bool
		err     string
	}{
		{"erasure:\n  marker: keep\n", true, ""},
		{"erasure:\n  marker: drop\n", false, ""},
		{"", true, ""},
		{"erasure:\n  marker: sometimes\n", false, "erasure.marker"},
	} {
		doc := strings.Replace(base, "erasure:\n  marker: keep\n", tc.section, 1)
		p, err := Parse([]byte(doc), "test.yaml", cat)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("%q: error %v, want one naming %s", tc.section, err, tc.err)
			}
			continue
		}
		if err != nil || p.ErasureMarker != tc.keep {
			t.Fatalf("%q: marker %v, err %v; want %v", tc.section, p != nil && p.ErasureMarker, err, tc.keep)
		}
	}
}
