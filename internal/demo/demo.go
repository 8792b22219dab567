// Package demo runs the whole pipeline in one process on embedded services: a real
// nats-server from its Go module and, unless REBOUND_REDIS_URL is given, an in-memory
// Redis stand-in. It posts a bundle of sample webhooks through the real HTTP ingest,
// waits until every event is processed and prints what Rebound decided.
package demo

import (
	"bytes"
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"go.uber.org/zap"

	"github.com/reboundhq/rebound/internal/alert"
	"github.com/reboundhq/rebound/internal/alert/receiver"
	"github.com/reboundhq/rebound/internal/app"
	"github.com/reboundhq/rebound/internal/config"
	"github.com/reboundhq/rebound/internal/embedded"
	"github.com/reboundhq/rebound/internal/process"
)

//go:embed samples.json
var samples []byte

// Options tune the demo.
type Options struct {
	Exit   bool // quit after the summary
	Out    io.Writer
	Getenv func(string) string
}

// Run runs the demo until ctx is cancelled (or after the summary with Exit).
func Run(ctx context.Context, log *zap.Logger, opt Options) error {
	out, getenv := opt.Out, opt.Getenv
	if out == nil {
		out = os.Stdout
	}
	if getenv == nil {
		getenv = os.Getenv
	}

	ns, err := embedded.NATS("")
	if err != nil {
		return err
	}
	defer ns.Shutdown()
	log.Warn("embedded nats-server with JetStream on a temporary directory: for the demo only, not for production", zap.String("url", ns.ClientURL()))

	cfg := config.Default()
	cfg.NATSURL = ns.ClientURL()
	cfg.LogLevel = "warn"
	if u := getenv("REBOUND_REDIS_URL"); u != "" {
		cfg.RedisURL = u
		cfg.RedisPrefix = "rebound-demo-" + randomHex(4) + ":"
		log.Info("demo uses the given Redis with a private key prefix, removed when it ends", zap.String("prefix", cfg.RedisPrefix))
		defer removePrefix(cfg, log)
	} else {
		mr, err := embedded.Redis()
		if err != nil {
			return err
		}
		defer mr.Close()
		cfg.RedisURL = "redis://" + mr.Addr()
		log.Warn("embedded, in-memory Redis stand-in: not for production (nothing is kept; set REBOUND_REDIS_URL to use a real Redis)", zap.String("addr", mr.Addr()))
	}
	cfg.HTTPAddr = demoAddr(getenv("REBOUND_HTTP_ADDR"), "127.0.0.1:8080")
	cfg.AdminAddr = demoAddr(getenv("REBOUND_ADMIN_ADDR"), "127.0.0.1:9090")
	cfg.GenericToken = getenv("REBOUND_GENERIC_TOKEN")
	if cfg.GenericToken == "" {
		cfg.GenericToken = "demo-" + randomHex(8)
	}
	// A read token for this run, printed for the operator console (/ui/) and curl; a
	// REBOUND_API_TOKENS of the user's adds to it (a write token can lift and resolve).
	readToken := "demo-read-" + randomHex(16)
	cfg.APITokens = []config.APIToken{{Name: "demo-read", Secret: readToken, Scope: "read"}}
	raw, err := config.Secret(getenv, "REBOUND_API_TOKENS") // or its _FILE, as serve reads it
	if err != nil {
		return err
	}
	more, err := config.ParseAPITokens(raw)
	if err != nil {
		return err // the error names the variable
	}
	cfg.APITokens = append(cfg.APITokens, more...)
	keys, err := newESPKeys()
	if err != nil {
		return err
	}
	espEnv, err := keys.env()
	if err != nil {
		return err
	}
	cfg.Getenv = envWith(espEnv, getenv)
	if err := cfg.Validate(); err != nil {
		return err
	}

	var (
		mu       sync.Mutex
		results  []process.Result
		seen     = map[string]bool{}
		expected = -1 // known once every webhook has been answered
		allDone  = make(chan struct{})
	)
	checkDone := func() { // with mu held
		if expected >= 0 && len(results) == expected {
			close(allDone)
			expected = -2
		}
	}
	listening, adminListening := make(chan string, 1), make(chan string, 1)
	var sent []string // notifications delivered, for the summary
	a, err := app.New(ctx, cfg, log, app.Hooks{
		OnListening:      func(addr string) { listening <- addr },
		OnAdminListening: func(addr string) { adminListening <- addr },
		OnAlert: func(target string, n receiver.Notification) {
			mu.Lock()
			defer mu.Unlock()
			sent = append(sent, fmt.Sprintf("  %-8s %-8s %s", target, n.Kind, n.Summary))
		},
		OnProcessed: func(r process.Result) {
			mu.Lock()
			defer mu.Unlock()
			if !seen[r.Event.ID] {
				seen[r.Event.ID] = true
				results = append(results, r)
				checkDone()
			}
		},
	})
	if err != nil {
		return err
	}
	defer a.Close()
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	runErr := make(chan error, 1)
	go func() { runErr <- a.Run(runCtx) }()

	var addr string
	select {
	case addr = <-listening:
	case err := <-runErr:
		return err
	}
	base, admin := "http://"+addr, "http://"+<-adminListening // the admin hook runs first
	hdr := http.Header{}
	hdr.Set("Authorization", "Bearer "+cfg.GenericToken)
	total, err := post(ctx, base+"/webhooks/generic", hdr, samples)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "Posted %d canonical events to %s/webhooks/generic.\n", total, base)
	hooks, err := keys.webhooks(time.Now())
	if err != nil {
		return err
	}
	for _, h := range hooks {
		n, err := post(ctx, base+"/webhooks/"+h.ESP, h.Header, h.Body)
		if err != nil {
			return err
		}
		total += n
		fmt.Fprintf(out, "Posted a signed %s webhook to /webhooks/%s: %d event(s) accepted.\n", h.ESP, h.ESP, n)
	}
	fmt.Fprintln(out, "Waiting for the process role…")
	fmt.Fprintln(out)
	mu.Lock()
	expected = total
	checkDone()
	mu.Unlock()
	select {
	case <-allDone:
	case <-time.After(30 * time.Second):
		mu.Lock()
		defer mu.Unlock()
		return fmt.Errorf("demo: only %d of %d events processed within 30s", len(results), total)
	case err := <-runErr:
		return err
	}

	mu.Lock()
	printDecisions(out, results)
	mu.Unlock()
	if err := printState(ctx, out, a); err != nil {
		return err
	}
	mu.Lock()
	fmt.Fprintf(out, "\nNotifications delivered (%d): the built-in log receiver (set REBOUND_ALERT_CONFIG for PagerDuty, Slack, …)\nand the control signal on NATS (%s):\n", len(sent), alert.ControlSubject(cfg.Names.SubjectPrefix, "<class>"))
	for _, l := range sent {
		fmt.Fprintln(out, l)
	}
	mu.Unlock()

	if opt.Exit {
		stop()
		return <-runErr
	}
	fmt.Fprintf(out, "\nStill serving: webhooks on %s; the operator console, the /v1 API and /metrics on %s. Ctrl-C to stop.\n\n", base, admin)
	fmt.Fprintf(out, "Operator console: %s/ui/\n  sign in with the read token generated for this run: %s\n", admin, readToken)
	fmt.Fprintf(out, "  (it views; to lift suppressions and resolve incidents, add a write token: REBOUND_API_TOKENS=me:<16+ chars>:write make demo-serve)\n\n")
	auth := "-H 'Authorization: Bearer " + readToken + "'"
	fmt.Fprintf(out, "Or try the API:\n\n")
	fmt.Fprintf(out, "  curl -s %s %s/v1/suppressions/dave@example.com\n", auth, admin)
	fmt.Fprintf(out, "  curl -s %s %s/v1/alerts\n", auth, admin)
	fmt.Fprintf(out, "  curl -s -H 'Authorization: Bearer %s' -d '{\"id\":\"generic:try-1\",\"esp\":\"generic\",\"type\":\"bounce\",\"occurred_at\":\"2026-11-26T12:00:00Z\",\"recipient\":\"you@example.com\",\"reply\":{\"text\":\"550 5.1.1 user unknown\"}}' %s/webhooks/generic\n", cfg.GenericToken, base)
	fmt.Fprintf(out, "  curl -s %s %s/v1/recipients/you@example.com\n", auth, admin)
	return <-runErr
}

func printDecisions(out io.Writer, results []process.Result) {
	fmt.Fprintln(out, "What Rebound decided, event by event:")
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ESP\tRECIPIENT\tREPLY\tCLASS\tSCOPE\tACTION\tEFFECT")
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Event.ESP, r.Event.Recipient, shorten(r.Event.Reply.String(), 40),
			r.Classification.Class, r.Classification.Scope, r.Decision.Action, effect(r))
	}
	tw.Flush()
}

func effect(r process.Result) string {
	switch {
	case r.Outcome.Duplicate:
		return "duplicate: no change"
	case r.Outcome.Suppressed && r.Outcome.Permanent:
		return "suppressed (permanent)"
	case r.Outcome.Suppressed:
		return "suppressed until " + r.Outcome.ExpiresAt.Format("2006-01-02")
	case r.Held:
		return "held by the mass-bounce guard"
	case r.Decision.Action == "soft":
		return fmt.Sprintf("soft bounce %d of 3", r.Outcome.SoftCount)
	case r.Incident != nil && opened(r):
		return "incident opened; recipient untouched"
	case r.Incident != nil:
		return fmt.Sprintf("incident count %d; recipient untouched", r.Incident.Count)
	}
	return "recorded"
}

// opened says whether this delivery reports the incident as opened by it, as the
// process role's metric and log line do.
func opened(r process.Result) bool {
	o, _ := r.OpenedHere()
	return o
}

func printState(ctx context.Context, out io.Writer, a *app.App) error {
	sups, err := a.Store().ListSuppressions(ctx, "", 0, 100)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\nSuppression list (%d):\n", len(sups))
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ADDRESS\tREASON\tCODE\tEXPIRES")
	for _, s := range sups {
		exp := "never"
		if s.ExpiresAt != nil {
			exp = s.ExpiresAt.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.Address, s.Reason, s.Code, exp)
	}
	tw.Flush()
	incs, err := openIncidents(ctx, a)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\nOpen sender-side incidents (%d) — the recipients above were NOT suppressed for these:\n", len(incs))
	for _, inc := range incs {
		fmt.Fprintf(out, "\n  [%s, %s] %s\n", inc.Severity, inc.State, alert.Summary(&inc, codeTitle(a, inc.Code)))
		if len(inc.Examples) > 0 {
			fmt.Fprintf(out, "    example: %s\n", inc.Examples[0])
		}
		for i, f := range inc.Fix {
			fmt.Fprintf(out, "    fix %d. %s\n", i+1, f)
		}
	}
	return nil
}

// openIncidents waits (a few seconds at most) until the notify role has delivered every
// open incident's page, so the summary shows them notified, and returns them.
func openIncidents(ctx context.Context, a *app.App) ([]alert.Incident, error) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		incs, err := a.Alerts().List(ctx, alert.Filter{State: "open"})
		if err != nil {
			return nil, err
		}
		pending := 0
		for _, inc := range incs {
			if inc.State != alert.StateNotified {
				pending++
			}
		}
		if pending == 0 || time.Now().After(deadline) {
			return incs, nil
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func codeTitle(a *app.App, code string) string {
	if e, ok := a.Catalog().Entry(code); ok && code != "" {
		return e.Title
	}
	return ""
}

// post sends one webhook and returns how many events the ingest accepted.
func post(ctx context.Context, url string, hdr http.Header, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header = hdr.Clone()
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("demo: post %s: %w", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("demo: post %s: %s: %s", url, resp.Status, b)
	}
	var r struct {
		Accepted int `json:"accepted"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return 0, fmt.Errorf("demo: post %s: %w", url, err)
	}
	return r.Accepted, nil
}

// demoAddr uses the configured address, else preferred when it is free, else any
// free port: the demo must run even where 8080 or 9090 is taken.
func demoAddr(configured, preferred string) string {
	if configured != "" {
		return configured
	}
	l, err := net.Listen("tcp", preferred)
	if err != nil {
		return "127.0.0.1:0"
	}
	l.Close()
	return preferred
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.TrimSpace(s[:n-1]) + "…"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func ipSuffix(ip string) string {
	if ip == "" {
		return ""
	}
	return " via " + ip
}

// removePrefix deletes the demo's keys from a Redis the user pointed it at.
func removePrefix(cfg config.Config, log *zap.Logger) {
	rdb, err := app.RedisClient(cfg)
	if err != nil {
		return
	}
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	iter := rdb.Scan(ctx, 0, cfg.RedisPrefix+"*", 500).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	for i := 0; i < len(keys); i += 500 {
		rdb.Unlink(ctx, keys[i:min(i+500, len(keys))]...)
	}
	if err := iter.Err(); err != nil {
		log.Warn("demo keys not removed", zap.String("prefix", cfg.RedisPrefix), zap.Error(err))
	}
}
