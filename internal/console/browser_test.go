package console_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/reboundhq/rebound/internal/alert"
	"github.com/reboundhq/rebound/internal/app"
	"github.com/reboundhq/rebound/internal/config"
	"github.com/reboundhq/rebound/internal/policy"
	"github.com/reboundhq/rebound/internal/process"
	"github.com/reboundhq/rebound/internal/testsvc"
)

// chromiumPath is Debian's headless-capable Chromium (package "chromium").
const chromiumPath = "/usr/bin/chromium"

// worker is the whole app in process (every role) on real NATS and Redis, with its own
// stream, consumer, subjects and key prefix.
type worker struct {
	app         *app.App
	base, admin string
	generic     string
	log         *bytes.Buffer
	logMu       *sync.Mutex
	processed   chan process.Result
}

// syncBuffer lets the test read the log while the app writes it.
type syncBuffer struct {
	mu  *sync.Mutex
	buf *bytes.Buffer
}

func (s syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}
func (s syncBuffer) Sync() error { return nil }

func startWorker(t *testing.T, tokens string) *worker {
	t.Helper()
	_, js := testsvc.JetStream(t)
	rdb := testsvc.RedisClient(t)
	cfg := config.Default()
	cfg.NATSURL, cfg.RedisURL = testsvc.NATS(t), testsvc.Redis(t)
	cfg.Names, cfg.RedisPrefix = testsvc.Names(t, js), testsvc.Prefix(t, rdb)
	for _, addr := range []*string{&cfg.HTTPAddr, &cfg.AdminAddr} {
		port, err := testsvc.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		*addr = fmt.Sprintf("127.0.0.1:%d", port)
	}
	cfg.GenericToken = "generic-" + testsvc.ID()
	var err error
	if cfg.APITokens, err = config.ParseAPITokens(tokens); err != nil {
		t.Fatal(err)
	}
	// The built-in policy, but the mass-bounce guard holds a domain from its third
	// hard-bounced recipient, so the test can make a hold with a handful of events.
	pol := bytes.Replace(policy.DefaultYAML(), []byte("  threshold: 100\n  tenant_threshold: 100\n"), []byte("  threshold: 3\n  tenant_threshold: 3\n"), 1)
	if bytes.Equal(pol, policy.DefaultYAML()) {
		t.Fatal("the built-in policy's mass_bounce thresholds moved: update the test")
	}
	cfg.PolicyFile = filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(cfg.PolicyFile, pol, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	w := &worker{generic: cfg.GenericToken, log: &bytes.Buffer{}, logMu: &sync.Mutex{}, processed: make(chan process.Result, 64)}
	log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), syncBuffer{w.logMu, w.log}, zap.DebugLevel))
	listening, adminListening := make(chan string, 1), make(chan string, 1)
	ctx, cancel := context.WithCancel(context.Background())
	w.app, err = app.New(ctx, cfg, log, app.Hooks{
		OnListening:      func(a string) { listening <- a },
		OnAdminListening: func(a string) { adminListening <- a },
		OnProcessed:      func(r process.Result) { w.processed <- r },
	})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- w.app.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("app.Run: %v", err)
		}
		w.app.Close()
	})
	select {
	case w.admin = <-adminListening:
		w.base = "http://" + <-listening
		w.admin = "http://" + w.admin
	case err := <-done:
		t.Fatalf("app stopped before listening: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("app not listening within 20 s")
	}
	return w
}

// send posts canonical events to the generic webhook and waits until the process role
// has applied them all.
func (w *worker) send(t *testing.T, events ...string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, w.base+"/webhooks/generic", strings.NewReader("["+strings.Join(events, ",")+"]"))
	req.Header.Set("Authorization", "Bearer "+w.generic)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("webhook = %s: %s", resp.Status, b)
	}
	for range events {
		select {
		case <-w.processed:
		case <-time.After(20 * time.Second):
			t.Fatal("events not processed within 20 s")
		}
	}
}

func bounce(id, rcpt string, code int, enhanced, text string) string {
	return fmt.Sprintf(`{"id":"generic:%s","esp":"generic","type":"bounce","occurred_at":%q,"recipient":%q,"sender":"news@mail.shop.example","sending_ip":"192.0.2.10","reply":{"code":%d,"enhanced":%q,"text":%q}}`,
		id, time.Now().UTC().Format(time.RFC3339), rcpt, code, enhanced, text)
}

// browser starts one headless Chromium for the whole test. The flags keep it off the
// network: on a closed network, background services and QUIC probes otherwise stall it.
func browser(t *testing.T) context.Context {
	t.Helper()
	// REBOUND_CHROMIUM names another binary; it must exist too.
	path := os.Getenv("REBOUND_CHROMIUM")
	if path != "" {
		if _, err := os.Stat(path); err != nil {
			t.Fatalf("REBOUND_CHROMIUM=%s: %v; unset it to use Debian's \"chromium\" package (apt-get install -y chromium)", path, err)
		}
	} else if _, err := os.Stat(chromiumPath); err == nil {
		path = chromiumPath
	} else if path, err = exec.LookPath("chromium"); err != nil {
		t.Fatalf("no Chromium at %s or on PATH: install Debian's \"chromium\" package (apt-get install -y chromium); .ci/run does it when it is missing", chromiumPath)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1100, 900),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	start := time.Now()
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("start Chromium: %v", err)
	}
	t.Logf("Chromium started in %v", time.Since(start).Round(time.Millisecond))
	return ctx
}

// run runs browser actions with a bound, failing the test with what was being done.
func run(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(tctx, actions...); err != nil {
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		t.Fatalf("%s: %v (page %s)", what, err, loc)
	}
}

// value runs one action that returns a value.
func value[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(tctx, a)
	if err != nil {
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		t.Fatalf("%s: %v (page %s)", what, err, loc)
	}
	return v
}

// screenshot saves the whole page as a PNG under dir and logs its path.
func screenshot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	png := value(t, ctx, "screenshot "+name, chromedp.FullScreenshot(100))
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot of the %s page: %s (%d bytes)", name, path, len(png))
}

// waitLocation waits until the page's address contains part.
func waitLocation(part string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, tgt *chromedp.Target) (chromedp.Void, error) {
		for {
			loc, err := chromedp.Location()(ctx, tgt)
			if err != nil {
				return chromedp.Void{}, err
			}
			if strings.Contains(loc, part) {
				return chromedp.Void{}, nil
			}
			select {
			case <-ctx.Done():
				return chromedp.Void{}, ctx.Err()
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
}

func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	return value(t, ctx, "read "+sel, chromedp.Text(chromedp.CSS(sel)))
}

func signIn(t *testing.T, ctx context.Context, admin, token string) {
	t.Helper()
	run(t, ctx, "sign in",
		chromedp.Navigate(admin+"/ui/"),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), token),
		chromedp.Submit(chromedp.ID("token")),
		chromedp.WaitVisible(chromedp.ID("scope")),
	)
	if loc := value(t, ctx, "location", chromedp.Location()); strings.Contains(loc, token) {
		t.Fatalf("the token is in the URL: %s", loc)
	}
}

func signOut(t *testing.T, ctx context.Context) {
	t.Helper()
	run(t, ctx, "sign out",
		chromedp.Click(chromedp.CSS(`form[action="/ui/signout"] button`)),
		chromedp.WaitVisible(chromedp.ID("token")),
	)
}

// TestConsoleInBrowser drives the console in headless Chromium against the real worker:
// a read token sees a suppressed recipient's reason and history and cannot lift it; a
// write token lifts it with a reason (audited under its name) and resolves a 530
// incident after reading its fix steps.
func TestConsoleInBrowser(t *testing.T) {
	const readTok, writeTok = "console-read-token-0123456789", "console-write-token-0123456789"
	start := time.Now()
	b := browser(t) // first: without Chromium the test fails before starting anything else
	w := startWorker(t, "support:"+readTok+":read,ops:"+writeTok+":write")
	id := testsvc.ID()
	rcpt := "dave-" + id + "@example.com"
	w.send(t,
		bounce(id+"-uu", rcpt, 550, "5.1.1", "550 5.1.1 <"+rcpt+">: Recipient address rejected: User unknown in virtual mailbox table"),
		bounce(id+"-530", "ok-"+id+"@example.com", 530, "5.7.0", "530 5.7.0 Authentication required"),
	)
	// Screenshots go to the test's temp dir (removed afterwards), or to
	// REBOUND_SCREENSHOT_DIR to keep them for a look.
	shots := t.TempDir()
	if d := os.Getenv("REBOUND_SCREENSHOT_DIR"); d != "" {
		shots = d
	}

	// A read token: the recipient's reason and history, and no way to lift.
	signIn(t, b, w.admin, readTok)
	if s := text(t, b, "#scope"); !strings.Contains(s, "support") || !strings.Contains(s, "read") || !strings.Contains(s, "view only") {
		t.Errorf("the page does not say the session is support's, read only: %q", s)
	}
	screenshot(t, b, shots, "incidents-read")
	run(t, b, "search the recipient",
		chromedp.Navigate(w.admin+"/ui/recipient"),
		chromedp.WaitVisible(chromedp.ID("address")),
		chromedp.SendKeys(chromedp.ID("address"), rcpt),
		chromedp.Submit(chromedp.ID("address")),
		chromedp.WaitVisible(chromedp.CSS(".status")),
	)
	if s := text(t, b, ".status"); !strings.Contains(s, "Suppressed") {
		t.Fatalf("status = %q, want Suppressed", s)
	}
	if s := text(t, b, "main"); !strings.Contains(s, "recipient_unknown") || !strings.Contains(s, "5.1.1") || !strings.Contains(s, "User unknown") {
		t.Errorf("the page lacks the reason (class, code, reply): %q", s)
	}
	steps := value(t, b, "count the timeline", chromedp.Evaluate[int](`document.querySelectorAll("ol.timeline li").length`))
	if steps < 1 {
		t.Errorf("timeline has %d entries, want the decision", steps)
	}
	if s := text(t, b, "#lift-denied"); !strings.Contains(s, "needs a write token") {
		t.Errorf("lift section for a read token = %q", s)
	}
	screenshot(t, b, shots, "recipient-read")
	// The form is not offered; posting it anyway (with this session's CSRF value) is refused.
	status := value(t, b, "post a lift with the read session", chromedp.Evaluate[int](fmt.Sprintf(`(async () => {
		const body = new URLSearchParams({csrf: document.querySelector('input[name=csrf]').value, address: %q, reason: "try"});
		const r = await fetch("/ui/recipient/lift", {method: "POST", body});
		return r.status;
	})()`, rcpt), chromedp.EvalAwaitPromise))
	if status != http.StatusForbidden {
		t.Errorf("lift posted with a read session = %d, want 403", status)
	}
	if rec, err := w.app.Store().Suppression(context.Background(), "", rcpt); err != nil || rec == nil {
		t.Fatalf("after the refused lift: record %v, %v; want still suppressed", rec, err)
	}
	signOut(t, b)

	// A write token: lift with a reason, then see it in the history and the audit.
	signIn(t, b, w.admin, writeTok)
	run(t, b, "lift",
		chromedp.Navigate(w.admin+"/ui/recipient?address="+rcpt),
		chromedp.WaitVisible(chromedp.ID("reason")),
		chromedp.SendKeys(chromedp.ID("reason"), "customer fixed the mailbox (ticket 4711)"),
		chromedp.Click(chromedp.CSS(".lift-button")),
		chromedp.WaitVisible(chromedp.CSS(".flash")),
	)
	if s := text(t, b, ".status"); !strings.Contains(s, "Not suppressed") {
		t.Errorf("after the lift: status %q, want Not suppressed", s)
	}
	if s := text(t, b, "ol.timeline"); !strings.Contains(strings.ToLower(s), "removed") || !strings.Contains(s, "ops") {
		t.Errorf("the timeline does not show the removal by ops: %q", s)
	}
	screenshot(t, b, shots, "recipient-lifted")
	rems, err := w.app.Store().Removals(context.Background(), 10)
	if err != nil || len(rems) == 0 || rems[0].By != "ops" || rems[0].Reason != "customer fixed the mailbox (ticket 4711)" {
		t.Errorf("removals = %+v, %v: want the lift by ops with its reason", rems, err)
	}
	audit, err := w.app.Store().AuditLog(context.Background(), 10)
	if err != nil || len(audit) == 0 || audit[0].Actor != "ops" || audit[0].Action != "suppression.remove" {
		t.Errorf("audit log = %+v, %v: want suppression.remove by ops", audit, err)
	}

	// The 530 incident: its fix steps, then resolve it.
	run(t, b, "incidents",
		chromedp.Navigate(w.admin+"/ui/incidents"),
		chromedp.WaitVisible(chromedp.CSS("article.incident")),
	)
	open := text(t, b, "section[aria-labelledby=open-h]")
	if !strings.Contains(open, "530") || !strings.Contains(open, "Fix steps") || !strings.Contains(open, "Authentication required") {
		t.Fatalf("open incidents lack the 530, its example or its fix steps: %q", open)
	}
	fixSteps := value(t, b, "count fix steps", chromedp.Evaluate[int](`document.querySelectorAll("section[aria-labelledby=open-h] ol.fix li").length`))
	if fixSteps == 0 {
		t.Error("no fix step listed")
	}
	screenshot(t, b, shots, "incidents-write")
	run(t, b, "resolve",
		chromedp.Click(chromedp.CSS("section[aria-labelledby=open-h] button.resolve")),
		chromedp.WaitVisible(chromedp.CSS(".flash")),
	)
	if s := text(t, b, ".flash"); !strings.Contains(s, "resolved") {
		t.Errorf("flash = %q", s)
	}
	if s := text(t, b, "section[aria-labelledby=resolved-h]"); !strings.Contains(s, "resolved by ops") {
		t.Errorf("the resolved section does not show it resolved by ops: %q", s)
	}
	incs, err := w.app.Alerts().List(context.Background(), alert.Filter{State: "open"})
	if err != nil || len(incs) != 0 {
		t.Errorf("open incidents after resolve = %d, %v; want none", len(incs), err)
	}

	// The catalog: a pasted reply.
	run(t, b, "catalog",
		chromedp.Navigate(w.admin+"/ui/catalog"),
		chromedp.WaitVisible(chromedp.ID("q")),
		chromedp.SendKeys(chromedp.ID("q"), "550 5.1.1 The email account that you tried to reach does not exist"),
		chromedp.Submit(chromedp.ID("q")),
		// The answer is a new page: wait for its address before reading it, or a read
		// can catch the page being replaced ("No node with given id found").
		waitLocation("q="),
		chromedp.WaitVisible(chromedp.CSS(".rule")),
		chromedp.WaitVisible(chromedp.CSS(".class")),
	)
	if s := text(t, b, ".class"); !strings.Contains(s, "recipient_unknown") {
		t.Errorf("catalog class = %q, want recipient_unknown", s)
	}
	screenshot(t, b, shots, "catalog")

	// The overview: the hourly aggregates the process role wrote for these events. The
	// role writes them about once a second, so the page is reloaded until they are there
	// (or ten seconds have passed).
	var days []string
	for deadline := time.Now().Add(10 * time.Second); ; {
		run(t, b, "overview",
			chromedp.Navigate(w.admin+"/ui/overview"),
			chromedp.WaitVisible(chromedp.CSS("#by-action-h")),
		)
		days = value(t, b, "chart days", chromedp.Evaluate[[]string](`[...document.querySelectorAll("#main section.chart:first-of-type g.day")].map(g => g.getAttribute("aria-label"))`))
		if len(days) > 0 && strings.Contains(days[len(days)-1], "suppress 1") && strings.Contains(days[len(days)-1], "alert 1") || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if len(days) == 0 || !strings.Contains(days[len(days)-1], "suppress 1") || !strings.Contains(days[len(days)-1], "alert 1") {
		t.Errorf("the action chart's last day = %q, want this run's suppress and alert", days)
	}
	if s := text(t, b, "section[aria-labelledby=domains-h]"); !strings.Contains(s, "example.com") {
		t.Errorf("top hard-bounce domains lack example.com: %q", s)
	}
	if s := text(t, b, "section[aria-labelledby=changes-h]"); !strings.Contains(s, "suppression.remove") || !strings.Contains(s, "customer fixed the mailbox (ticket 4711)") || !strings.Contains(s, "alert.resolve") {
		t.Errorf("the overview's audit log lacks the lift (with its reason) or the resolve: %q", s)
	}
	screenshot(t, b, shots, "overview")

	// A mass bounce: the guard holds the domain's new suppressions; apply them.
	heldDomain := "held-" + id + ".example"
	var burst []string
	for i := range 5 {
		r := fmt.Sprintf("u%d@%s", i, heldDomain)
		burst = append(burst, bounce(fmt.Sprintf("%s-mb%d", id, i), r, 550, "5.1.1", "550 5.1.1 User unknown"))
	}
	w.send(t, burst...)
	run(t, b, "overview with a hold",
		chromedp.Navigate(w.admin+"/ui/overview"),
		chromedp.WaitVisible(chromedp.CSS("article.held")),
	)
	if s := text(t, b, "section[aria-labelledby=held-h]"); !strings.Contains(s, heldDomain) || !strings.Contains(s, "suppressions held") {
		t.Fatalf("held section = %q, want %s", s, heldDomain)
	}
	screenshot(t, b, shots, "overview-held")
	run(t, b, "apply the hold",
		chromedp.SendKeys(chromedp.CSS("article.held input[name=reason]"), "the addresses really are gone"),
		chromedp.Click(chromedp.CSS("article.held button[type=submit]:not([formaction])")),
		chromedp.WaitVisible(chromedp.CSS(".flash")),
	)
	if s := text(t, b, ".flash"); !strings.Contains(s, "applied") {
		t.Errorf("flash after apply = %q", s)
	}
	if s := text(t, b, "section[aria-labelledby=changes-h]"); !strings.Contains(s, "mass_bounce.apply") || !strings.Contains(s, heldDomain) {
		t.Errorf("the audit log lacks the apply: %q", s)
	}
	if held, err := w.app.Guard().Held(context.Background()); err != nil || len(held) != 0 {
		t.Errorf("holds after apply = %+v, %v; want none", held, err)
	}
	if rec, err := w.app.Store().Suppression(context.Background(), "", "u4@"+heldDomain); err != nil || rec == nil {
		t.Errorf("a held recipient after apply: %v, %v; want suppressed", rec, err)
	}

	// Keyboard: the first Tab lands on the skip link; narrow screen: no sideways scroll.
	run(t, b, "tab",
		chromedp.Navigate(w.admin+"/ui/incidents"),
		chromedp.WaitVisible(chromedp.CSS("main")),
		chromedp.KeyEvent("\t"),
	)
	focused := value(t, b, "focused element", chromedp.Evaluate[string](`document.activeElement.textContent`))
	if focused != "Skip to content" {
		t.Errorf("first Tab focuses %q, want the skip link", focused)
	}
	run(t, b, "narrow", chromedp.EmulateViewport(375, 700), chromedp.Navigate(w.admin+"/ui/incidents"), chromedp.WaitVisible(chromedp.CSS("main")))
	overflow := value(t, b, "overflow", chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth + 1`))
	if overflow {
		t.Error("the incidents page scrolls sideways at 375 px")
	}
	screenshot(t, b, shots, "incidents-narrow")
	t.Logf("the test took %v, Chromium's start and the worker's included", time.Since(start).Round(time.Millisecond))

	w.logMu.Lock()
	logs := w.log.String()
	w.logMu.Unlock()
	if strings.Contains(logs, readTok) || strings.Contains(logs, writeTok) {
		t.Error("a token is in the worker's log")
	}
	if !strings.Contains(logs, `"msg":"console change"`) || !strings.Contains(logs, `"actor":"ops"`) {
		t.Error("the console's changes are not logged under the token's name")
	}
	if strings.Contains(logs, rcpt) {
		// Only debug lines may carry an address; the console logs none at all.
		for _, l := range strings.Split(logs, "\n") {
			if strings.Contains(l, rcpt) && !strings.Contains(l, `"level":"debug"`) {
				t.Errorf("a clear-text address above debug: %s", l)
			}
		}
	}
}
