package transfer_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reboundhq/rebound/internal/catalog"
	"github.com/reboundhq/rebound/internal/policy"
	"github.com/reboundhq/rebound/internal/suppress"
	"github.com/reboundhq/rebound/internal/testsvc"
	"github.com/reboundhq/rebound/internal/transfer"
)

type bundle struct {
	store    *suppress.Store
	ctx      context.Context
	classify func(string) catalog.Classification
}

func setup(t *testing.T, hashKey []byte) bundle {
	t.Helper()
	rdb := testsvc.RedisClient(t)
	st := suppress.New(rdb, suppress.Options{Prefix: testsvc.Prefix(t, rdb), AddressHashKey: hashKey})
	ctx := context.Background()
	if err := st.Load(ctx); err != nil {
		t.Fatal(err)
	}
	cat, err := catalog.Default()
	if err != nil {
		t.Fatal(err)
	}
	return bundle{store: st, ctx: ctx, classify: func(reply string) catalog.Classification {
		return cat.Classify(reply, catalog.Hints{})
	}}
}

func importFile(t *testing.T, b bundle, tenant, name string) transfer.Summary {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sum, err := transfer.Import(b.ctx, b.store, transfer.NewReader(f, transfer.FormatAuto), transfer.Options{Tenant: tenant, Classify: b.classify})
	if err != nil {
		t.Fatalf("import %s: %v", name, err)
	}
	return sum
}

// Each ESP's export imports with the right reason and class; a sender-side or
// transient bounce reply is rejected (the live policy would not suppress on it), and
// a second import of the same file changes nothing.
func TestImportEachESPShape(t *testing.T) {
	t.Parallel()
	cases := []struct {
		file                string
		imported, rejected  int
		addr, reason, class string // one record to look at
	}{
		{"ses-list.json", 2, 2, "gone.reader@example.com", "hard_bounce", "provider_list"},
		{"ses-list.csv", 2, 2, "angry.reader@example.test", "complaint", "complaint"},
		{"sendgrid-bounces.csv", 2, 4, "nobody.home@example.com", "recipient_unknown", "recipient_unknown"},
		{"sendgrid-bounces.json", 1, 1, "nobody.home@example.com", "recipient_unknown", "recipient_unknown"},
		{"sendgrid-spam-reports.csv", 2, 0, "complainer.two@example.test", "complaint", "complaint"},
		{"sendgrid-unsubscribes.csv", 2, 0, "stop.please@example.com", "unsubscribe", "unsubscribe"},
		{"postmark-suppressions.json", 4, 1, "clicked.unsubscribe@example.test", "unsubscribe", "unsubscribe"},
		{"postmark-suppressions.csv", 2, 0, "support.added@example.test", "manual", "manual"},
		{"mailgun-bounces.csv", 2, 1, "no.such.user@example.com", "recipient_unknown", "recipient_unknown"},
		{"mailgun-bounces.json", 1, 0, "no.such.user@example.com", "recipient_unknown", "recipient_unknown"},
		{"mailgun-complaints.csv", 1, 0, "reported.us@example.com", "complaint", "complaint"},
		{"mailgun-unsubscribes.csv", 1, 1, "left.the.list@example.com", "unsubscribe", "unsubscribe"},
	}
	b := setup(t, nil)
	for i, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			tenant := fmt.Sprintf("t%d", i)
			sum := importFile(t, b, tenant, tc.file)
			if sum.Imported != tc.imported || sum.Rejected != tc.rejected || sum.Duplicate != 0 || len(sum.Rejections) != tc.rejected {
				t.Fatalf("first import: %+v, want %d imported, %d rejected", sum, tc.imported, tc.rejected)
			}
			for _, r := range sum.Rejections {
				if r.Line == 0 || r.Reason == "" {
					t.Fatalf("rejection without line or reason: %+v", r)
				}
			}
			rec, err := b.store.Suppression(b.ctx, tenant, tc.addr)
			if err != nil || rec == nil {
				t.Fatalf("%s not suppressed after import (err %v)", tc.addr, err)
			}
			if rec.Reason != tc.reason || rec.Class != tc.class || rec.Rule != "import" {
				t.Fatalf("%s: reason %s class %s rule %s, want %s %s import", tc.addr, rec.Reason, rec.Class, rec.Rule, tc.reason, tc.class)
			}
			again := importFile(t, b, tenant, tc.file)
			if again.Imported != 0 || again.Duplicate != tc.imported || again.Rejected != tc.rejected {
				t.Fatalf("second import: %+v, want all %d duplicate", again, tc.imported)
			}
		})
	}
	// The sender-side block names why it was refused.
	sum := importFile(t, b, "blocks", "sendgrid-bounces.csv")
	var reasons []string
	for _, r := range sum.Rejections {
		reasons = append(reasons, fmt.Sprintf("%d: %s", r.Line, r.Reason))
	}
	all := strings.Join(reasons, "\n")
	for _, want := range []string{"3: reply classified mailbox_full", "4: reply classified reputation_block (scope sender", "6: address:", "7: 2 columns"} {
		if !strings.Contains(all, want) {
			t.Errorf("rejections do not name %q:\n%s", want, all)
		}
	}
}

// seed writes records of every kind an export must carry: permanent and expiring,
// reply text with commas, quotes and a line break, an empty code.
func seed(t *testing.T, b bundle, tenant string) {
	t.Helper()
	var cs []suppress.Change
	for i := range 1500 {
		c := suppress.Change{EventID: fmt.Sprintf("ev%d", i), ESP: "sendgrid", Tenant: tenant, Address: fmt.Sprintf("r%04d@example.com", i),
			Action: suppress.ActionSuppress, Reason: "recipient_unknown", Class: "recipient_unknown", Rule: "enhanced.5.1.1", Code: "5.1.1",
			Reply: fmt.Sprintf("550 5.1.1 <r%04d@example.com>: \"no\", such user\r\nsecond line", i)}
		switch i % 4 {
		case 1:
			c.SuppressTTL = 30 * 24 * time.Hour
		case 2:
			c.Reason, c.Class, c.Code, c.Reply, c.ESP = "complaint", "complaint", "", "", "ses"
		case 3:
			c.Reason, c.Class, c.Code, c.Reply = "soft_bounce_threshold", "mailbox_full", "4.2.2", "452 4.2.2 full"
			c.SuppressTTL = time.Hour
		}
		cs = append(cs, c)
	}
	for i := 0; i < len(cs); i += 500 {
		if _, err := b.store.Apply(b.ctx, cs[i:i+500]); err != nil {
			t.Fatal(err)
		}
	}
}

func export(t *testing.T, b bundle, tenant string, f transfer.Format) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := transfer.Export(b.ctx, b.store, tenant, &buf, f, nil); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Export → import → export gives the same file, in both formats, with clear and with
// hashed addresses.
func TestExportImportRoundTrip(t *testing.T) {
	t.Parallel()
	for _, hashed := range []bool{false, true} {
		for _, f := range []transfer.Format{transfer.FormatNDJSON, transfer.FormatCSV} {
			t.Run(fmt.Sprintf("%s hashed=%t", f, hashed), func(t *testing.T) {
				t.Parallel()
				var key []byte
				if hashed {
					key = []byte("0123456789abcdef-round-trip")
				}
				b := setup(t, key)
				seed(t, b, "from")
				first := export(t, b, "from", f)
				if n := bytes.Count(first, []byte("\n")); n < 1500 {
					t.Fatalf("export has %d lines, want at least 1500", n)
				}
				sum, err := transfer.Import(b.ctx, b.store, transfer.NewReader(bytes.NewReader(first), transfer.FormatAuto), transfer.Options{Tenant: "to"})
				if err != nil || sum.Imported != 1500 || sum.Rejected != 0 {
					t.Fatalf("import: %+v, %v", sum, err)
				}
				second := export(t, b, "to", f)
				if !bytes.Equal(first, second) {
					a, z := strings.Split(string(first), "\n"), strings.Split(string(second), "\n")
					for i := range min(len(a), len(z)) {
						if a[i] != z[i] {
							t.Fatalf("line %d differs:\n export: %s\nre-export: %s", i+1, a[i], z[i])
						}
					}
					t.Fatalf("exports differ in length: %d and %d lines", len(a), len(z))
				}
				if hashed && bytes.Contains(first, []byte("r0001@")) {
					t.Fatal("the export of a hashed store holds a clear address")
				}
				if hashed {
					clear := setup(t, nil)
					sum, err := transfer.Import(clear.ctx, clear.store, transfer.NewReader(bytes.NewReader(first), transfer.FormatAuto), transfer.Options{Tenant: "to"})
					if err != nil || sum.Imported != 0 || sum.Rejected != 1500 || !strings.Contains(sum.Rejections[0].Reason, "REBOUND_ADDRESS_HASH_KEY") {
						t.Fatalf("hashed export into a store without a key: %+v, %v; want every line rejected", sum.Rejected, err)
					}
				}
			})
		}
	}
}

// failAfter is the real store, failing Apply after n batches: a crash midway.
type failAfter struct {
	*suppress.Store
	n int
}

func (f *failAfter) Apply(ctx context.Context, cs []suppress.Change) ([]suppress.Outcome, error) {
	if f.n == 0 {
		return nil, errors.New("connection reset")
	}
	f.n--
	return f.Store.Apply(ctx, cs)
}

// An import stopped midway resumes from its checkpoint: the lines before it are skipped
// unread, the rest imported, and nothing is imported twice.
func TestImportResumesFromCheckpoint(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	var in strings.Builder
	in.WriteString("email,created\n")
	for i := range 1000 {
		fmt.Fprintf(&in, "u%04d@example.com,2026-02-04 12:00:00\n", i)
	}
	checkpoint := 0
	opt := transfer.Options{Tenant: "r", Batch: 100, Checkpoint: func(line int) error { checkpoint = line; return nil }}
	_, err := transfer.Import(b.ctx, &failAfter{Store: b.store, n: 3}, transfer.NewReader(strings.NewReader(in.String()), transfer.FormatAuto), opt)
	if err == nil || checkpoint != 301 {
		t.Fatalf("interrupted import: err %v, checkpoint %d; want an error and line 301 (header + 3 batches)", err, checkpoint)
	}
	opt.SkipLines = checkpoint
	sum, err := transfer.Import(b.ctx, b.store, transfer.NewReader(strings.NewReader(in.String()), transfer.FormatAuto), opt)
	if err != nil || sum.Resumed != 300 || sum.Imported != 700 || sum.Duplicate != 0 {
		t.Fatalf("resumed import: %+v, %v; want 300 resumed, 700 imported", sum, err)
	}
	p, err := b.store.ListPage(b.ctx, "r", "", 1000, suppress.ListFilter{})
	if err != nil || len(p.Records) != 1000 {
		t.Fatalf("after resume %d records listed (err %v), want 1000", len(p.Records), err)
	}
}

// An import suppresses no more than the pipeline would under the live policy: an
// allowlisted address is rejected whatever the line says, a bounce reply whose class
// the policy keeps record-only is rejected, and one it suppresses for a while is
// imported with that expiry.
func TestImportFollowsTheLivePolicy(t *testing.T) {
	b := setup(t, nil)
	cat, err := catalog.Default()
	if err != nil {
		t.Fatal(err)
	}
	pol, err := policy.Parse([]byte(`version: 1
soft: {threshold: 3, window: 7d, ttl: 30d}
suppression_scope: global
classes:
  recipient_unknown: {action: suppress, ttl: 90d}
  mailbox_disabled: {action: record}
allowlist:
  addresses: [seed@example.com]
  domains: [staff.example]
`), "import-policy.yaml", cat)
	if err != nil {
		t.Fatal(err)
	}
	in := strings.Join([]string{
		"address,code,error,created_at",
		`seed@example.com,550,"5.1.1 No mailbox by that name lives here",`,
		`ann@staff.example,550,"5.1.1 No mailbox by that name lives here",`,
		`gone@example.org,550,"5.1.1 No mailbox by that name lives here",`,
		`closed@example.org,550,"5.2.1 This mailbox is disabled",`,
	}, "\n") + "\n"
	now := time.Now()
	sum, err := transfer.Import(b.ctx, b.store, transfer.NewReader(strings.NewReader(in), transfer.FormatAuto),
		transfer.Options{Tenant: "p", Classify: b.classify, Policy: pol})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Imported != 1 || sum.Rejected != 3 {
		t.Fatalf("summary = %+v, want 1 imported (gone@), 3 rejected", sum)
	}
	for i, want := range []string{"allowlist", "allowlist", "live policy does not suppress on it (action none, rule classes.mailbox_disabled)"} {
		if r := sum.Rejections[i]; !strings.Contains(r.Reason, want) {
			t.Errorf("rejection %d = %+v, want a reason naming %q", i, r, want)
		}
	}
	for _, addr := range []string{"seed@example.com", "ann@staff.example", "closed@example.org"} {
		if rec, err := b.store.Lookup(b.ctx, "p", addr); err != nil || rec != nil {
			t.Errorf("%s: record %+v (err %v), want none", addr, rec, err)
		}
	}
	rec, err := b.store.Lookup(b.ctx, "p", "gone@example.org")
	if err != nil || rec == nil {
		t.Fatalf("gone@example.org: record %+v (err %v), want a suppression", rec, err)
	}
	if exp := rec.ExpiresAt; exp == nil || exp.Before(now.Add(89*24*time.Hour)) || exp.After(now.Add(91*24*time.Hour)) {
		t.Errorf("gone@example.org expires %v, want about 90 days from now (the policy's ttl)", exp)
	}
}
