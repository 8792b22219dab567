package policy

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reboundhq/rebound/internal/catalog"
)

// Holder serves the current policy and swaps in a new one when its file changes or on
// SIGHUP. An invalid new file is refused and the old policy stays in force, so a bad
// ConfigMap update cannot take decisions down.
type Holder struct {
	path string
	cat  *catalog.Catalog
	cur  atomic.Pointer[Policy]

	mu   sync.Mutex
	hash [32]byte
}

// NewHolder loads the policy at path, or the built-in one when path is "". An invalid
// file at start-up is an error: there is no old policy to keep.
func NewHolder(path string, cat *catalog.Catalog) (*Holder, error) {
	h := &Holder{path: path, cat: cat}
	if path == "" {
		h.cur.Store(Default())
		return h, nil
	}
	if _, err := h.Reload(); err != nil {
		return nil, err
	}
	return h, nil
}

// Get returns the policy in force. It is cheap enough to call per batch.
func (h *Holder) Get() *Policy { return h.cur.Load() }

// Path is the file being served ("" for the built-in policy).
func (h *Holder) Path() string { return h.path }

// Reload reads the file again. It reports whether the policy changed; on error the
// current policy stays.
func (h *Holder) Reload() (bool, error) {
	if h.path == "" {
		return false, nil
	}
	data, err := os.ReadFile(h.path)
	if err != nil {
		return false, fmt.Errorf("read policy: %w", err)
	}
	sum := sha256.Sum256(data)
	h.mu.Lock()
	defer h.mu.Unlock()
	if sum == h.hash && h.cur.Load() != nil {
		return false, nil
	}
	p, err := Parse(data, h.path, h.cat)
	if err != nil {
		return false, err
	}
	h.cur.Store(p)
	h.hash = sum
	return true, nil
}

// Watch reloads on every signal from hup and whenever the file's content changes
// (polled every interval: a Kubernetes ConfigMap update swaps a symlink, which
// file-change notifications miss). report is called with the outcome of each reload
// that changed something or failed.
func (h *Holder) Watch(ctx context.Context, interval time.Duration, hup <-chan os.Signal, report func(changed bool, err error)) {
	if h.path == "" {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	var lastErr string
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
		case <-t.C:
		}
		changed, err := h.Reload()
		switch {
		case err != nil && err.Error() != lastErr:
			// Reported once per distinct error, not every poll.
			lastErr = err.Error()
			report(false, err)
		case err == nil && changed:
			lastErr = ""
			report(true, nil)
		case err == nil:
			lastErr = ""
		}
	}
}
