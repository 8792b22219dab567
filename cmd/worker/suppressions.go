package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/reboundhq/rebound/internal/app"
	"github.com/reboundhq/rebound/internal/catalog"
	"github.com/reboundhq/rebound/internal/config"
	"github.com/reboundhq/rebound/internal/events"
	"github.com/reboundhq/rebound/internal/policy"
	"github.com/reboundhq/rebound/internal/suppress"
	"github.com/reboundhq/rebound/internal/transfer"
)

const suppressionsUsage = "want `suppressions export [--tenant T] [--format ndjson|csv] [--out FILE]` or " +
	"`suppressions import [--tenant T] [--format ndjson|csv|json] [--resume] [--state FILE] [--json] FILE|-`"

// suppressionsCmd exports a tenant's suppressions, or imports a list: a Rebound export,
// or an ESP's (SES, SendGrid, Postmark, Mailgun), recognised by its columns.
func suppressionsCmd(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) == 0 || (args[0] != "export" && args[0] != "import") {
		return errors.New(suppressionsUsage)
	}
	fs := flag.NewFlagSet("worker suppressions "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	tenant := fs.String("tenant", "", "the tenant's namespace (empty: the global one)")
	format := fs.String("format", "", "export: ndjson (default) or csv; import: ndjson, csv or json (default: recognised)")
	out := fs.String("out", "", "export: write to this file instead of stdout")
	resume := fs.Bool("resume", false, "import: skip the lines the state file says an earlier run finished")
	state := fs.String("state", "", "import: the checkpoint file (default: FILE.import-state beside the input)")
	asJSON := fs.Bool("json", false, "import: print the summary as JSON")
	cfg, err := config.Parse(fs, args[1:], getenv)
	if err != nil {
		return err
	}
	if err := events.ValidateTenant(*tenant); err != nil {
		return fmt.Errorf("--tenant: %w", err)
	}
	f, err := transfer.ParseFormat(*format)
	if err != nil {
		return fmt.Errorf("--format: %w", err)
	}
	rdb, err := app.RedisClient(cfg)
	if err != nil {
		return err
	}
	defer rdb.Close()
	store := suppress.New(rdb, cfg.StoreOptions())
	if args[0] == "export" {
		if len(fs.Args()) != 0 {
			return errors.New(suppressionsUsage)
		}
		return exportCmd(ctx, store, *tenant, f, *out, stdout, stderr)
	}
	if len(fs.Args()) != 1 {
		return errors.New("import: want one input file (or - for stdin): " + suppressionsUsage)
	}
	if err := store.Load(ctx); err != nil {
		return err
	}
	cat, err := loadCatalog(getenv)
	if err != nil {
		return err
	}
	// The policy the pipeline runs (REBOUND_POLICY_FILE): an import suppresses no more
	// than it would (its allowlist, its action per class).
	pol, err := policy.NewHolder(cfg.PolicyFile, cat)
	if err != nil {
		return err
	}
	return importCmd(ctx, store, cat, pol.Get(), stdin, importArgs{
		input: fs.Args()[0], tenant: *tenant, format: f, resume: *resume, state: *state, json: *asJSON,
	}, stdout, stderr)
}

func exportCmd(ctx context.Context, store *suppress.Store, tenant string, f transfer.Format, out string, stdout, stderr io.Writer) error {
	if f == transfer.FormatJSON {
		return errors.New("--format: export writes ndjson or csv")
	}
	w := stdout
	if out != "" {
		file, err := os.Create(out)
		if err != nil {
			return err
		}
		defer file.Close()
		w = file
	}
	n, err := transfer.Export(ctx, store, tenant, w, f, nil)
	if err != nil {
		return err
	}
	if out != "" {
		fmt.Fprintf(stderr, "exported %d suppressions of tenant %q to %s\n", n, tenant, out)
	}
	return nil
}

type importArgs struct {
	input, tenant, state string
	format               transfer.Format
	resume, json         bool
}

// importState is the checkpoint file of `suppressions import`: the last line whose
// batch is durable in Redis, and what it was a checkpoint of.
type importState struct {
	Input  string `json:"input"`
	Size   int64  `json:"size"`
	Tenant string `json:"tenant"`
	Line   int    `json:"line"`
}

func importCmd(ctx context.Context, store *suppress.Store, cat *catalog.Catalog, pol *policy.Policy, stdin io.Reader, a importArgs, stdout, stderr io.Writer) error {
	in := stdin
	var size int64 = -1
	if a.input != "-" {
		file, err := os.Open(a.input)
		if err != nil {
			return err
		}
		defer file.Close()
		if fi, err := file.Stat(); err == nil && fi.Mode().IsRegular() {
			size = fi.Size()
		}
		in = file
		if a.state == "" {
			a.state = a.input + ".import-state"
		}
	}
	if a.resume && a.state == "" {
		return errors.New("--resume: reading stdin, name the checkpoint with --state")
	}
	cur := importState{Input: filepath.Base(a.input), Size: size, Tenant: a.tenant}
	skip := 0
	if a.resume {
		prev, err := readState(a.state)
		switch {
		case errors.Is(err, os.ErrNotExist):
			// Nothing done yet: start at the top.
		case err != nil:
			return err
		case prev.Input != cur.Input || prev.Size != cur.Size || prev.Tenant != cur.Tenant:
			return fmt.Errorf("--resume: %s is the checkpoint of %s (%d bytes, tenant %q), not of this import", a.state, prev.Input, prev.Size, prev.Tenant)
		default:
			skip = prev.Line
		}
	}
	counted := &countingReader{r: in}
	bar := newProgressBar(stderr, size)
	opt := transfer.Options{
		Tenant:    a.tenant,
		SkipLines: skip,
		Classify:  func(reply string) catalog.Classification { return cat.Classify(reply, catalog.Hints{}) },
		Policy:    pol,
		Progress:  func(s transfer.Summary) { bar.show(counted.n.Load(), s, false) },
	}
	if a.state != "" {
		opt.Checkpoint = func(line int) error {
			cur.Line = line
			return writeState(a.state, cur)
		}
	}
	sum, err := transfer.Import(ctx, store, transfer.NewReader(counted, a.format), opt)
	bar.show(counted.n.Load(), sum, true)
	if err != nil {
		return fmt.Errorf("%w (what was imported stays; run again with --resume to go on)", err)
	}
	if a.state != "" && sum.Stopped == "" {
		_ = os.Remove(a.state) // done: a later --resume has nothing to skip
	}
	if a.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(sum); err != nil {
			return err
		}
	} else {
		printSummary(stdout, sum)
	}
	if sum.Stopped != "" {
		return fmt.Errorf("the input could not be read to its end: %s", sum.Stopped)
	}
	return nil
}

func printSummary(w io.Writer, s transfer.Summary) {
	fmt.Fprintf(w, "imported: %d\nskipped as duplicate: %d\nrejected: %d\n", s.Imported, s.Duplicate, s.Rejected)
	if s.Resumed > 0 {
		fmt.Fprintf(w, "skipped, done by an earlier run: %d\n", s.Resumed)
	}
	for _, r := range s.Rejections {
		fmt.Fprintf(w, "  line %d: %s\n", r.Line, r.Reason)
	}
	if s.Rejected > len(s.Rejections) {
		fmt.Fprintf(w, "  … and %d more rejected lines\n", s.Rejected-len(s.Rejections))
	}
}

func readState(path string) (importState, error) {
	var s importState
	b, err := os.ReadFile(path)
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("checkpoint %s: %w", path, err)
	}
	return s, nil
}

// writeState replaces the checkpoint through a rename, so a crash leaves the old one
// or the new one, never half of it.
func writeState(path string, s importState) error {
	b, _ := json.Marshal(s)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// progressBar draws one line on a terminal (stderr a character device), redrawn at
// most ten times a second; elsewhere it draws nothing.
type progressBar struct {
	w    io.Writer
	size int64 // -1: unknown (stdin)
	last time.Time
	on   bool
}

func newProgressBar(w io.Writer, size int64) *progressBar {
	f, ok := w.(*os.File)
	on := false
	if ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			on = true
		}
	}
	return &progressBar{w: w, size: size, on: on}
}

func (p *progressBar) show(read int64, s transfer.Summary, final bool) {
	if !p.on || (!final && time.Since(p.last) < 100*time.Millisecond) {
		return
	}
	p.last = time.Now()
	counts := fmt.Sprintf("%d lines · %d imported · %d duplicate · %d rejected", s.Lines, s.Imported, s.Duplicate, s.Rejected)
	if p.size > 0 {
		const width = 30
		done := min(int(read*width/p.size), width)
		fmt.Fprintf(p.w, "\r[%s%s] %3d%%  %s", strings.Repeat("=", done), strings.Repeat(" ", width-done), read*100/p.size, counts)
	} else {
		fmt.Fprintf(p.w, "\r%s", counts)
	}
	if final {
		fmt.Fprintln(p.w)
	}
}
