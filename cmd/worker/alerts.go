package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/reboundhq/rebound/internal/alert"
	"github.com/reboundhq/rebound/internal/app"
	"github.com/reboundhq/rebound/internal/config"
	"github.com/reboundhq/rebound/internal/suppress"
)

const alertsUsage = "want `alerts list [--state open|notified|resolved|reopened] [--class C] [--tenant T]`, `alerts show ID`, `alerts ack ID`, `alerts resolve ID` or `alerts check FILE`"

// alertsCmd reads and changes sender-side incidents, and validates alerting files.
func alertsCmd(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) == 0 {
		return errors.New(alertsUsage)
	}
	if args[0] == "check" {
		// No service is needed to validate a file.
		if len(args) != 2 {
			return errors.New("want exactly one file: `worker alerts check FILE`")
		}
		c, err := alert.LoadFile(args[1])
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: valid: %d receiver(s), %d route(s)\n", args[1], len(c.Receivers), len(c.Routes))
		return nil
	}
	fs := flag.NewFlagSet("worker alerts", flag.ContinueOnError)
	fs.SetOutput(stderr)
	state := fs.String("state", "", "list: open (every state but resolved), notified, resolved or reopened")
	class := fs.String("class", "", "list: only this class")
	tenant := fs.String("tenant", "", "list: only this tenant")
	by := fs.String("by", "cli", "ack, resolve: who did it (recorded and shown to receivers)")
	cfg, err := config.Parse(fs, args[1:], getenv)
	if err != nil {
		return err
	}
	rest := fs.Args()
	rdb, err := app.RedisClient(cfg)
	if err != nil {
		return err
	}
	defer rdb.Close()
	store := alert.NewStore(rdb, alert.StoreOptions{Prefix: cfg.RedisPrefix})
	switch {
	case args[0] == "list" && len(rest) == 0:
		incs, err := store.List(ctx, alert.Filter{State: *state, Class: *class, Tenant: *tenant, Limit: 1000})
		if err != nil {
			return err
		}
		if len(incs) == 0 {
			fmt.Fprintln(stdout, "No incident.")
			return nil
		}
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tSTATE\tSEVERITY\tCLASS\tWHERE\tMESSAGES\tRECIPIENTS\tLAST SEEN")
		for _, inc := range incs {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\n", inc.ID, inc.State, inc.Severity, inc.Class, where(inc),
				inc.Messages, inc.Recipients, inc.LastSeen.Format(time.RFC3339))
		}
		return tw.Flush()
	case args[0] == "show" && len(rest) == 1:
		inc, err := store.Get(ctx, rest[0])
		if err != nil {
			return err
		}
		printIncident(stdout, &inc, getenv)
		return nil
	case (args[0] == "ack" || args[0] == "resolve") && len(rest) == 1:
		if err := store.Load(ctx); err != nil {
			return err
		}
		var changed bool
		if args[0] == "ack" {
			changed, err = store.Ack(ctx, rest[0], *by)
		} else {
			changed, err = store.Resolve(ctx, rest[0], *by)
		}
		if err != nil {
			return err
		}
		if !changed {
			fmt.Fprintf(stdout, "%s: nothing to do (already %sd, or resolved)\n", rest[0], args[0])
			return nil
		}
		fmt.Fprintf(stdout, "%s: %s; the notify role tells the receivers\n", rest[0], map[string]string{"ack": "acknowledged", "resolve": "resolved"}[args[0]])
		return nil
	}
	return fmt.Errorf("unknown alerts command %q: %s", strings.Join(args, " "), alertsUsage)
}

func where(inc alert.Incident) string {
	if inc.ReceivingDomain != "" {
		return "to " + inc.ReceivingDomain
	}
	w := inc.SendingDomain
	if inc.SendingIP != "" {
		w += " via " + inc.SendingIP
	}
	if inc.Tenant != "" {
		w += " (" + inc.Tenant + ")"
	}
	return w
}

func printIncident(w io.Writer, inc *alert.Incident, getenv func(string) string) {
	title := ""
	if cat, err := loadCatalog(getenv); err == nil {
		if e, ok := cat.Entry(inc.Code); ok && inc.Code != "" {
			title = e.Title
		}
	}
	fmt.Fprintf(w, "%s  [%s, %s]\n%s\n\n", inc.ID, inc.Severity, inc.State, alert.Summary(inc, title))
	fmt.Fprintf(w, "First seen %s, last seen %s; %d message(s) in all episodes, reopened %d time(s).\n",
		inc.FirstSeen.Format(time.RFC3339), inc.LastSeen.Format(time.RFC3339), inc.TotalMessages, inc.Reopened)
	if !inc.AckedAt.IsZero() {
		fmt.Fprintf(w, "Acknowledged by %s at %s.\n", inc.AckedBy, inc.AckedAt.Format(time.RFC3339))
	}
	if !inc.ResolvedAt.IsZero() {
		fmt.Fprintf(w, "Resolved (%s) at %s.\n", inc.ResolvedBy, inc.ResolvedAt.Format(time.RFC3339))
	}
	if len(inc.Examples) > 0 {
		fmt.Fprintln(w, "\nExample replies")
		for _, e := range inc.Examples {
			fmt.Fprintf(w, "  %s\n", e)
		}
	}
	if len(inc.Domains) > 0 {
		fmt.Fprintf(w, "\nReceiving domains: %s\n", strings.Join(inc.Domains, ", "))
	}
	if len(inc.Fix) > 0 {
		fmt.Fprintln(w, "\nHow to fix")
		for i, f := range inc.Fix {
			fmt.Fprintf(w, "  %d. %s\n", i+1, wrap(f, 5))
		}
	}
	fmt.Fprintln(w, "\nTransitions")
	for _, t := range inc.Transitions {
		fmt.Fprintf(w, "  %d. %-8s %s %s\n", t.Seq, t.Kind, t.At.Format(time.RFC3339), t.By)
	}
	if len(inc.Deliveries) > 0 {
		fmt.Fprintln(w, "\nDeliveries")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  RECEIVER\tSENT UP TO\tTRIES\tNEXT TRY\tLAST ERROR")
		for _, d := range inc.Deliveries {
			next := "-"
			if !d.NextTry.IsZero() {
				next = d.NextTry.Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "  %s\t%d/%d\t%d\t%s\t%s\n", d.Receiver, d.Sent, inc.Seq, d.Tries, next, d.LastError)
		}
		_ = tw.Flush()
	}
}

// unknownCmd lists the replies no rule recognised, so the rules can grow from traffic.
func unknownCmd(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("worker unknown", flag.ContinueOnError)
	fs.SetOutput(stderr)
	limit := fs.Int("limit", 50, "how many, most frequent first (at most 1000)")
	cfg, err := config.Parse(fs, args, getenv)
	if err != nil {
		return err
	}
	if *limit < 1 || *limit > 1000 {
		return errors.New("--limit: want 1 to 1000")
	}
	rdb, err := app.RedisClient(cfg)
	if err != nil {
		return err
	}
	defer rdb.Close()
	list, err := suppress.New(rdb, cfg.StoreOptions()).UnknownReplies(ctx, *limit)
	if err != nil {
		return err
	}
	if len(list) == 0 {
		fmt.Fprintln(stdout, "No unrecognised reply recorded.")
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "COUNT\tLAST SEEN\tESP\tREPLY")
	for _, u := range list {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", u.Count, u.LastSeen.Format(time.RFC3339), u.ESP, u.Reply)
	}
	return tw.Flush()
}
