package all

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reboundhq/rebound/internal/catalog"
	"github.com/reboundhq/rebound/internal/ingest/ingesttest"
)

// TestFixturesNotDecidedByModel: the catalog's statistical fallback may read a
// reply that carries no code (docs/classification.md, "The statistical
// fallback"), and an adapter writes its own words where the ESP gave no reply
// ("postmark: sending to this address was turned off in Postmark"). Those words
// are no receiver's reply: a rule must decide them, or nothing, never the model,
// whose alert would page on-call. Every event of every adapter's fixtures is
// classified as the worker classifies it, and none may be the model's.
func TestFixturesNotDecidedByModel(t *testing.T) {
	t.Parallel()
	cat, err := catalog.Default()
	if err != nil {
		t.Fatal(err)
	}
	as, err := Adapters(ingesttest.Env(nil))
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, a := range as {
		files, err := filepath.Glob(filepath.Join("..", a.ESP(), "testdata", "*.json"))
		if err != nil {
			t.Fatal(err)
		}
		if len(files) == 0 {
			t.Errorf("%s: no fixtures in ../%s/testdata", a.ESP(), a.ESP())
		}
		for _, f := range files {
			body, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			b, err := a.Parse(body)
			if err != nil {
				continue // a fixture of a bad body
			}
			for _, ev := range b.Events {
				if ev.Reply.IsZero() {
					continue
				}
				seen++
				cl := cat.Classify(ev.Reply.String(), catalog.EventHints(&ev))
				if strings.HasPrefix(cl.Rule, "model.") {
					t.Errorf("%s: %q decided by the statistical fallback (%s)", f, ev.Reply.String(), cl.Rule)
				}
			}
		}
	}
	if seen < 50 {
		t.Errorf("classified %d fixture replies, want at least 50: are the fixtures still read?", seen)
	}
	t.Logf("classified %d replies of the adapters' fixtures", seen)
}
