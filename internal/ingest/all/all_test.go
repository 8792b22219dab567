package all

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/reboundhq/rebound/internal/ingest/ingesttest"
)

// TestEveryAdapterListed: each adapter package beside this one (a package with a
// New(ingest.Env) factory) has its line in Entries, and each line builds an adapter
// that answers to the line's name, with nothing configured.
func TestEveryAdapterListed(t *testing.T) {
	t.Parallel()
	var want []string
	dirs, err := os.ReadDir("..")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		src, err := os.ReadFile(filepath.Join("..", d.Name(), d.Name()+".go"))
		if err != nil {
			continue // not an adapter package (all, ingesttest, testdata)
		}
		if strings.Contains(string(src), "\nfunc New(env ingest.Env) (ingest.Adapter, error) {") {
			want = append(want, d.Name())
		}
	}
	var got []string
	for _, e := range Entries() {
		got = append(got, e.ESP)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("Entries lists %q; the adapter packages are %q (sorted by name, one line each)", got, want)
	}
	as, err := Adapters(ingesttest.Env(nil))
	if err != nil {
		t.Fatal(err)
	}
	for i, a := range as {
		if a.ESP() != got[i] {
			t.Errorf("adapter %d answers to %q, listed as %q", i, a.ESP(), got[i])
		}
	}
}
