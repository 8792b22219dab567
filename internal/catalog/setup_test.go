package catalog

import (
	"sync"
	"testing"
)

var (
	defaultOnce sync.Once
	defaultCat  *Catalog
	defaultErr  error
)

// setup returns the embedded catalog, loaded once for the whole test binary
// (it is immutable, so tests may share it in parallel).
func setup(t testing.TB) *Catalog {
	t.Helper()
	defaultOnce.Do(func() { defaultCat, defaultErr = Default() })
	if defaultErr != nil {
		t.Fatalf("Default(): %v", defaultErr)
	}
	return defaultCat
}
