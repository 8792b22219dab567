// Command worker is Rebound's one binary. With no sub-command it serves the roles named
// by REBOUND_ROLES (all by default); `demo`, `classify` and `explain` are tools.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/reboundhq/rebound/internal/alert"
	"github.com/reboundhq/rebound/internal/api"
	"github.com/reboundhq/rebound/internal/app"
	"github.com/reboundhq/rebound/internal/catalog"
	"github.com/reboundhq/rebound/internal/config"
	"github.com/reboundhq/rebound/internal/deadletter"
	"github.com/reboundhq/rebound/internal/demo"
	"github.com/reboundhq/rebound/internal/events"
	"github.com/reboundhq/rebound/internal/guard"
	"github.com/reboundhq/rebound/internal/policy"
	"github.com/reboundhq/rebound/internal/replay"
	"github.com/reboundhq/rebound/internal/suppress"
)

const usage = `Usage: worker [serve] [flags]      run the roles in REBOUND_ROLES (default: all)
       worker demo [--exit]          whole pipeline on embedded services, with sample webhooks
       worker classify [--sender ADDR] [REPLY ...]   classify SMTP replies (arguments, or one per line on stdin)
       worker explain CODE           print the catalog entry for a code (530, 5.1.1, …)
       worker score FILE|-           the catalog's figures on replies you labelled
                                     (VERDICT<TAB>REPLY per line); fails on a false suppression
       worker policy check FILE      validate a policy file (errors name the line)
       worker policy show            print the built-in policy file
       worker policy replay --since 24h --policy FILE
                                     what FILE would decide differently on the retained events
       worker mass-bounce list|apply DOMAIN|discard DOMAIN [--tenant T]
                                     suppressions held by the mass-bounce guard
       worker unknown [--limit N]    replies no rule recognised, most frequent first
       worker recipients erase ADDRESS [--tenant T] [--reason R]
                                     remove a recipient's history and clear-text data
       worker suppressions export [--tenant T] [--format ndjson|csv] [--out FILE]
       worker suppressions import [--tenant T] [--resume] FILE|-
                                     a tenant's list out, or a list in: a Rebound export or
                                     an SES, SendGrid, Postmark or Mailgun one (docs/api.md)
       worker alerts list [--state open] [--class C] [--tenant T]
       worker alerts show|ack|resolve ID   sender-side incidents: read one, acknowledge, resolve
       worker alerts check FILE      validate an alerting file (REBOUND_ALERT_CONFIG)
       worker deadletter list [--from SEQ] [--limit N]
       worker deadletter replay SEQ...
                                     input that could not be processed, with the reason; put it back
       worker loadgen [-events N]    throughput and latency of the process role against the ideal
                                     worker on the configured servers (docs/performance.md)

Run "worker serve -h" for every setting; each flag has a REBOUND_* environment variable.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	cmd := "serve"
	if len(args) == 1 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
		cmd, args = "help", nil // the sub-commands, not only serve's flags
	} else if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var err error
	switch cmd {
	case "serve":
		err = serve(ctx, args, stderr, getenv)
	case "demo":
		err = runDemo(ctx, args, stdout, stderr, getenv)
	case "classify":
		err = classify(args, stdin, stdout, getenv)
	case "explain":
		err = explain(args, stdout, getenv)
	case "score":
		err = scoreCmd(args, stdin, stdout, stderr, getenv)
	case "policy":
		err = policyCmd(ctx, args, stdout, stderr, getenv)
	case "mass-bounce":
		err = massBounceCmd(ctx, args, stdout, stderr, getenv)
	case "deadletter":
		err = deadLetterCmd(ctx, args, stdout, stderr, getenv)
	case "alerts":
		err = alertsCmd(ctx, args, stdout, stderr, getenv)
	case "unknown":
		err = unknownCmd(ctx, args, stdout, stderr, getenv)
	case "suppressions":
		err = suppressionsCmd(ctx, args, stdin, stdout, stderr, getenv)
	case "recipients":
		err = recipientsCmd(ctx, args, stdout, stderr, getenv)
	case "loadgen":
		err = loadgenCmd(ctx, args, stdout, stderr, getenv)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "worker: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "worker %s: %v\n", cmd, err)
		return 1
	}
	return 0
}

func serve(ctx context.Context, args []string, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("worker serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg, err := config.Parse(fs, args, getenv)
	if err != nil {
		return err
	}
	log, err := newLogger(cfg.LogLevel, cfg.LogFormat, stderr)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	a, err := app.New(ctx, cfg, log, app.Hooks{})
	if err != nil {
		return err
	}
	defer a.Close()
	return a.Run(ctx)
}

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("worker demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	exit := fs.Bool("exit", false, "quit after printing the summary")
	if err := fs.Parse(args); err != nil {
		return err
	}
	level := getenv("REBOUND_LOG_LEVEL")
	if level == "" {
		level = "warn"
	}
	log, err := newLogger(level, "console", stderr)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	return demo.Run(ctx, log, demo.Options{Exit: *exit, Out: stdout, Getenv: getenv})
}

func loadCatalog(getenv func(string) string) (*catalog.Catalog, error) {
	c, err := catalog.Load(getenv("REBOUND_CATALOG_RULES"))
	if err != nil {
		return nil, fmt.Errorf("REBOUND_CATALOG_RULES: %w", err)
	}
	return c, nil
}

// classify prints one JSON object per reply: the contract of `worker classify`.
func classify(args []string, stdin io.Reader, stdout io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("worker classify", flag.ContinueOnError)
	fs.SetOutput(stdout)
	sender := fs.String("sender", "", "our sender address for these replies (as an event carries it): a reply about it and no other address is our side's")
	if err := fs.Parse(args); err != nil {
		return err
	}
	args = fs.Args()
	cat, err := loadCatalog(getenv)
	if err != nil {
		return err
	}
	pol := policy.Default()
	enc := json.NewEncoder(stdout)
	emit := func(line string) error {
		if strings.TrimSpace(line) == "" {
			return nil
		}
		return enc.Encode(api.Classify(cat, pol, line, *sender))
	}
	if len(args) > 0 {
		for _, a := range args {
			if err := emit(a); err != nil {
				return err
			}
		}
		return nil
	}
	sc := bufio.NewScanner(stdin)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if err := emit(sc.Text()); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read stdin: %w", err)
	}
	return nil
}

func explain(args []string, stdout io.Writer, getenv func(string) string) error {
	if len(args) != 1 {
		return errors.New("want exactly one code, e.g. `worker explain 530` or `worker explain 5.1.1`")
	}
	cat, err := loadCatalog(getenv)
	if err != nil {
		return err
	}
	e, ok := cat.Entry(args[0])
	if !ok {
		return fmt.Errorf("no catalog entry for %q", args[0])
	}
	fmt.Fprintf(stdout, "%s — %s\n", e.Code, e.Title)
	perm := "transient (4xx: the sender retries)"
	if e.Permanent {
		perm = "permanent"
	}
	fmt.Fprintf(stdout, "Defined in: %s · %s · scope: %s · class: %s · severity: %s\n\n", e.RFC, perm, e.Scope, e.Class, e.Severity)
	fmt.Fprintf(stdout, "What it means\n  %s\n", wrap(e.Meaning, 2))
	if len(e.Causes) > 0 {
		fmt.Fprintln(stdout, "\nCommon causes")
		for _, c := range e.Causes {
			fmt.Fprintf(stdout, "  - %s\n", wrap(c, 4))
		}
	}
	if len(e.Fix) > 0 {
		fmt.Fprintln(stdout, "\nHow to fix")
		for i, f := range e.Fix {
			fmt.Fprintf(stdout, "  %d. %s\n", i+1, wrap(f, 5))
		}
	}
	return nil
}

// wrap folds text at about 88 columns, indenting continuation lines.
func wrap(s string, indent int) string {
	var b strings.Builder
	col := indent
	for i, w := range strings.Fields(s) {
		if i > 0 {
			if col+1+len(w) > 88 {
				b.WriteString("\n" + strings.Repeat(" ", indent))
				col = indent
			} else {
				b.WriteByte(' ')
				col++
			}
		}
		b.WriteString(w)
		col += len(w)
	}
	return b.String()
}

func newLogger(level, format string, w io.Writer) (*zap.Logger, error) {
	var lvl zapcore.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("REBOUND_LOG_LEVEL: %w", err)
	}
	encCfg := zap.NewProductionEncoderConfig()
	encCfg.EncodeTime = zapcore.ISO8601TimeEncoder
	var enc zapcore.Encoder
	if format == "console" {
		encCfg.EncodeLevel = zapcore.CapitalColorLevelEncoder
		enc = zapcore.NewConsoleEncoder(encCfg)
	} else {
		enc = zapcore.NewJSONEncoder(encCfg)
	}
	return zap.New(zapcore.NewCore(enc, zapcore.AddSync(w), lvl)), nil
}

func policyCmd(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) == 0 {
		return errors.New("want `policy check FILE`, `policy show` or `policy replay --since 24h --policy FILE`")
	}
	cat, err := loadCatalog(getenv)
	if err != nil {
		return err
	}
	switch args[0] {
	case "show":
		_, err := stdout.Write(policy.DefaultYAML())
		return err
	case "check":
		if len(args) != 2 {
			return errors.New("want exactly one file: `worker policy check FILE`")
		}
		data, err := os.ReadFile(args[1])
		if err != nil {
			return err
		}
		if _, err := policy.Parse(data, args[1], cat); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: valid\n", args[1])
		return nil
	case "replay":
		fs := flag.NewFlagSet("worker policy replay", flag.ContinueOnError)
		fs.SetOutput(stderr)
		since := fs.String("since", "24h", "replay events from this long ago (e.g. 30m, 24h, 7d)")
		candidateFile := fs.String("policy", "", "the candidate policy file (required)")
		cfg, err := config.Parse(fs, args[1:], getenv)
		if err != nil {
			return err
		}
		if *candidateFile == "" {
			return errors.New("--policy: required")
		}
		back, err := policy.ParseDuration(*since)
		if err != nil {
			return fmt.Errorf("--since: %w", err)
		}
		data, err := os.ReadFile(*candidateFile)
		if err != nil {
			return err
		}
		candidate, err := policy.Parse(data, *candidateFile, cat)
		if err != nil {
			return err
		}
		live, err := policy.NewHolder(cfg.PolicyFile, cat)
		if err != nil {
			return fmt.Errorf("REBOUND_POLICY_FILE: %w", err)
		}
		nc, err := nats.Connect(cfg.NATSURL, nats.Name("rebound-replay"))
		if err != nil {
			return fmt.Errorf("connect NATS (REBOUND_NATS_URL): %w", err)
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			return err
		}
		rep, err := replay.Run(ctx, js, cfg.Names, time.Now().Add(-back), cat, live.Get(), candidate)
		if err != nil {
			return err
		}
		liveName := cfg.PolicyFile
		if liveName == "" {
			liveName = "the built-in policy"
		}
		rep.Print(stdout, liveName, *candidateFile)
		return nil
	}
	return fmt.Errorf("unknown policy command %q", args[0])
}

func massBounceCmd(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("worker mass-bounce", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var tenant *string
	fs.Func("tenant", "apply or discard only this tenant's hold of the domain (\"\" is the default tenant)", func(v string) error {
		tenant = &v
		return nil
	})
	cfg, err := config.Parse(fs, args, getenv)
	if err != nil {
		return err
	}
	// The flag may also follow the domain (`mass-bounce apply gmail.com --tenant acme`):
	// config.Parse reads flags wherever they stand.
	rest := fs.Args()
	if len(rest) == 0 {
		return errors.New("want `mass-bounce list`, `mass-bounce apply DOMAIN [--tenant T]` or `mass-bounce discard DOMAIN [--tenant T]`")
	}
	if tenant != nil {
		if err := events.ValidateTenant(*tenant); err != nil {
			return fmt.Errorf("--tenant: %w", err)
		}
	}
	rdb, err := app.RedisClient(cfg)
	if err != nil {
		return err
	}
	defer rdb.Close()
	store := suppress.New(rdb, cfg.StoreOptions())
	// Warnings only (an incident that could not be resolved); the result goes to stdout.
	log, err := newLogger("warn", cfg.LogFormat, stderr)
	if err != nil {
		return err
	}
	app.SetRedisLogger(log)
	g := guard.New(guard.Config{Redis: rdb, Prefix: cfg.RedisPrefix, Store: store, Log: log,
		Alerts: alert.NewStore(rdb, alert.StoreOptions{Prefix: cfg.RedisPrefix, RecipientKey: []byte(cfg.AddressHashKey)})})
	switch {
	case rest[0] == "list" && len(rest) == 1:
		held, err := g.Held(ctx)
		if err != nil {
			return err
		}
		if len(held) == 0 {
			fmt.Fprintln(stdout, "No domain is held.")
			return nil
		}
		// One line per hold: a domain-wide hold (every tenant's suppressions for the
		// domain, TENANT "*") or one tenant's. RECIPIENTS IN WINDOW is the number the
		// hold's log line gave.
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "DOMAIN\tSCOPE\tTENANT\tSINCE\tRECIPIENTS IN WINDOW\tPENDING")
		for _, h := range held {
			t := h.Tenant
			switch {
			case h.Scope == guard.ScopeDomain:
				t = "*"
			case t == "":
				t = "(default)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\n", h.Domain, h.Scope, t, h.Since.Format(time.RFC3339), h.Count, h.Pending)
		}
		return tw.Flush()
	case (rest[0] == "apply" || rest[0] == "discard") && len(rest) == 2:
		if err := store.Load(ctx); err != nil {
			return err
		}
		apply := rest[0] == "apply"
		domain := strings.ToLower(rest[1])
		var n int
		if tenant != nil {
			n, err = g.ReleaseTenant(ctx, domain, *tenant, apply)
		} else {
			n, err = g.Release(ctx, domain, apply)
		}
		if err != nil {
			return err
		}
		what := rest[1]
		if tenant != nil {
			what += " (tenant " + strconv.Quote(*tenant) + ")"
		}
		fmt.Fprintf(stdout, "%s: %s %d held suppression(s)\n", what, map[bool]string{true: "applied", false: "discarded"}[apply], n)
		return nil
	}
	return fmt.Errorf("unknown mass-bounce command %q", strings.Join(rest, " "))
}

func deadLetterCmd(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("worker deadletter", flag.ContinueOnError)
	fs.SetOutput(stderr)
	from := fs.Uint64("from", 0, "list from this dead-letter sequence")
	limit := fs.Int("limit", 100, "list at most this many")
	cfg, err := config.Parse(fs, args, getenv)
	if err != nil {
		return err
	}
	rest := fs.Args()
	if len(rest) == 0 {
		return errors.New("want `deadletter list` or `deadletter replay SEQ...`")
	}
	nc, err := nats.Connect(cfg.NATSURL, nats.Name("rebound-deadletter"))
	if err != nil {
		return fmt.Errorf("connect NATS (REBOUND_NATS_URL): %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	switch rest[0] {
	case "list":
		letters, err := deadletter.List(ctx, js, cfg.Names, *from, *limit)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "SEQ\tAT\tSTAGE\tESP\tBYTES\tREASON")
		for _, l := range letters {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%s\n", l.Seq, l.At.Format(time.RFC3339), l.Stage, l.ESP, len(l.Raw), l.Reason)
		}
		return tw.Flush()
	case "replay":
		if len(rest) < 2 {
			return errors.New("want the sequence numbers to replay (see `deadletter list`)")
		}
		var failed int
		for _, a := range rest[1:] {
			seq, err := strconv.ParseUint(a, 10, 64)
			if err != nil {
				return fmt.Errorf("%q is not a sequence number", a)
			}
			if err := deadletter.Replay(ctx, js, cfg.Names, seq, deadletter.Options{AllowRelay: cfg.GenericAllowRelay}); err != nil {
				failed++
				fmt.Fprintf(stdout, "%d: %v\n", seq, err)
				continue
			}
			fmt.Fprintf(stdout, "%d: replayed\n", seq)
		}
		if failed > 0 {
			return fmt.Errorf("%d of %d not replayed", failed, len(rest)-1)
		}
		return nil
	}
	return fmt.Errorf("unknown deadletter command %q", rest[0])
}
