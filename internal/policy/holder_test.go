package policy

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reboundhq/rebound/internal/catalog"
)

func TestHolderReloadsAndKeepsTheOldPolicyOnError(t *testing.T) {
	t.Parallel()
	cat, err := catalog.Default()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "policy.yaml")
	write := func(threshold string) {
		body := "version: 1\nsoft: {threshold: " + threshold + ", window: 7d, ttl: 30d}\n"
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("3")
	h, err := NewHolder(path, cat)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var (
		mu      sync.Mutex
		reports []string
	)
	hup := make(chan os.Signal, 1)
	go h.Watch(ctx, 20*time.Millisecond, hup, func(changed bool, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			reports = append(reports, "refused: "+err.Error())
		} else {
			reports = append(reports, "applied")
		}
	})
	waitFor := func(what string, f func() bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !f() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	write("5")
	waitFor("the new threshold", func() bool { return h.Get().SoftThreshold == 5 })

	write("zero")
	waitFor("the refusal to be reported", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(reports) > 0 && strings.HasPrefix(reports[len(reports)-1], "refused")
	})
	if got := h.Get().SoftThreshold; got != 5 {
		t.Fatalf("after an invalid file the threshold is %d, want the old 5 kept", got)
	}
	mu.Lock()
	n := len(reports)
	mu.Unlock()
	time.Sleep(100 * time.Millisecond)
	mu.Lock()
	if len(reports) != n {
		t.Errorf("the same error was reported %d more times; want it reported once", len(reports)-n)
	}
	mu.Unlock()
	write("4")
	hup <- os.Interrupt
	waitFor("reload after the fix", func() bool { return h.Get().SoftThreshold == 4 })
}

func TestBuiltInPolicyIsValid(t *testing.T) {
	t.Parallel()
	cat, err := catalog.Default()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Parse(DefaultYAML(), "default.yaml", cat); err != nil {
		t.Fatal(err)
	}
	// Every class the catalog knows gets a decision from the built-in file, either its
	// own entry or its scope's fallback.
	p := Default()
	for _, c := range cat.Classes() {
		if _, ok := p.classes[c]; ok {
			continue
		}
		scope, _ := cat.ClassScope(c)
		key := string(scope)
		if scope == catalog.ScopeRecipient {
			key = "recipient_permanent"
		}
		if _, ok := p.scopes[key]; !ok {
			t.Errorf("class %s (scope %s) has no decision", c, scope)
		}
	}
}
