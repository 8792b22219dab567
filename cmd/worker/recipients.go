package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/reboundhq/rebound/internal/alert"
	"github.com/reboundhq/rebound/internal/app"
	"github.com/reboundhq/rebound/internal/config"
	"github.com/reboundhq/rebound/internal/erasure"
	"github.com/reboundhq/rebound/internal/events"
	"github.com/reboundhq/rebound/internal/guard"
	"github.com/reboundhq/rebound/internal/policy"
	"github.com/reboundhq/rebound/internal/suppress"
)

const recipientsUsage = "want `recipients erase ADDRESS [--tenant T] [--reason R]`"

// recipientsCmd erases a recipient, as DELETE /v1/recipients/{address} does; the
// policy file's erasure.marker decides whether a hashed do-not-mail marker stays.
func recipientsCmd(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) == 0 || args[0] != "erase" {
		return errors.New(recipientsUsage)
	}
	fs := flag.NewFlagSet("worker recipients erase", flag.ContinueOnError)
	fs.SetOutput(stderr)
	tenant := fs.String("tenant", "", "the tenant's namespace is erased with the global one")
	reason := fs.String("reason", "", "why (kept in the audit log, which names no address)")
	cfg, err := config.Parse(fs, args[1:], getenv)
	if err != nil {
		return err
	}
	if len(fs.Args()) != 1 {
		return errors.New(recipientsUsage)
	}
	addr, err := events.NormalizeAddress(fs.Args()[0])
	if err != nil {
		return fmt.Errorf("address: %w", err)
	}
	if err := events.ValidateTenant(*tenant); err != nil {
		return fmt.Errorf("--tenant: %w", err)
	}
	cat, err := loadCatalog(getenv)
	if err != nil {
		return err
	}
	pol, err := policy.NewHolder(cfg.PolicyFile, cat)
	if err != nil {
		return err
	}
	rdb, err := app.RedisClient(cfg)
	if err != nil {
		return err
	}
	defer rdb.Close()
	store := suppress.New(rdb, cfg.StoreOptions())
	if err := store.Load(ctx); err != nil {
		return err
	}
	alerts := alert.NewStore(rdb, alert.StoreOptions{Prefix: cfg.RedisPrefix, RecipientKey: []byte(cfg.AddressHashKey)})
	g := guard.New(guard.Config{Redis: rdb, Prefix: cfg.RedisPrefix, Store: store, Alerts: alerts})
	rep, err := erasure.Eraser{Store: store, Guard: g, Alerts: alerts}.Erase(ctx, *tenant, addr, pol.Get().ErasureMarker)
	if err != nil {
		return err
	}
	target := "(erased)"
	if rep.Marker {
		target = store.AddressKey(addr)
	}
	if err := store.Audit(ctx, suppress.AuditEntry{Actor: "cli", Action: suppress.AuditRecipientErase, Tenant: *tenant, Target: target, Reason: *reason}, false); err != nil {
		return fmt.Errorf("erased, but not audited: %w", err)
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}
