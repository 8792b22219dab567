// Package app wires the roles of one worker process: it connects to NATS and Redis,
// provisions the streams, starts the HTTP server and the enabled roles, and shuts them
// down in order. main, the demo and the end-to-end tests all start the service here.
package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/reboundhq/rebound/internal/alert"
	"github.com/reboundhq/rebound/internal/alert/receiver"
	"github.com/reboundhq/rebound/internal/api"
	"github.com/reboundhq/rebound/internal/catalog"
	"github.com/reboundhq/rebound/internal/config"
	"github.com/reboundhq/rebound/internal/guard"
	"github.com/reboundhq/rebound/internal/ingest"
	"github.com/reboundhq/rebound/internal/ingest/all"
	"github.com/reboundhq/rebound/internal/metrics"
	"github.com/reboundhq/rebound/internal/policy"
	"github.com/reboundhq/rebound/internal/process"
	"github.com/reboundhq/rebound/internal/stream"
	"github.com/reboundhq/rebound/internal/suppress"
)

// Hooks let the demo and tests observe the pipeline; all are optional.
type Hooks struct {
	OnProcessed func(process.Result)
	// OnAlert is called after a notification reached a receiver.
	OnAlert func(receiver string, n receiver.Notification)
	// OnListening is called with the bound HTTP address once the server accepts requests.
	OnListening func(addr string)
	// OnAdminListening is called with the bound admin address (REBOUND_ADMIN_ADDR: /v1,
	// /metrics) once it accepts requests, before OnListening.
	OnAdminListening func(addr string)
}

// App is one running worker process.
type App struct {
	cfg     config.Config
	log     *zap.Logger
	hooks   Hooks
	nc      *nats.Conn
	js      jetstream.JetStream
	rdb     redis.UniversalClient
	store   *suppress.Store
	alerts  *alert.Store
	guard   *guard.Guard
	alertCf *alert.Config
	catalog *catalog.Catalog
	metrics *metrics.Metrics
	policy  *policy.Holder
	shadow  *policy.Holder // nil without a shadow policy
	cons    jetstream.Consumer
	// The ingest role's adapters and their body limits, built from the settings before
	// anything connects (nil without the role).
	adapters []ingest.Adapter
	limits   map[string]int64
}

// New connects to the services and provisions the streams. Close releases them.
func New(ctx context.Context, cfg config.Config, log *zap.Logger, hooks Hooks) (*App, error) {
	a := &App{cfg: cfg, log: log, hooks: hooks, metrics: metrics.New()}
	cat, err := catalog.Load(cfg.CatalogRules)
	if err != nil {
		return nil, fmt.Errorf("REBOUND_CATALOG_RULES: %w", err)
	}
	a.catalog = cat
	if a.policy, err = policy.NewHolder(cfg.PolicyFile, cat); err != nil {
		return nil, fmt.Errorf("REBOUND_POLICY_FILE: %w", err)
	}
	if cfg.ShadowPolicy != "" {
		if a.shadow, err = policy.NewHolder(cfg.ShadowPolicy, cat); err != nil {
			return nil, fmt.Errorf("REBOUND_POLICY_SHADOW_FILE: %w", err)
		}
	}

	if a.alertCf, err = LoadAlertConfig(cfg); err != nil {
		return nil, err
	}
	if cfg.Has(config.RoleIngest) {
		if a.adapters, a.limits, err = webhookAdapters(cfg, log); err != nil {
			return nil, err
		}
	}

	creds, err := natsCredentials(cfg)
	if err != nil {
		return nil, err
	}
	a.nc, err = nats.Connect(cfg.NATSURL, append(creds,
		nats.Name("rebound"),
		nats.MaxReconnects(-1), // ride out a NATS restart; /readyz reports it meanwhile
		nats.ReconnectWait(time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil { // nil: our own Drain at shutdown
				log.Warn("nats disconnected", zap.Error(err))
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) { log.Info("nats reconnected", zap.String("server", c.ConnectedUrlRedacted())) }),
	)...)
	if err != nil {
		return nil, fmt.Errorf("connect NATS (REBOUND_NATS_URL): %w", err)
	}
	a.js, err = jetstream.New(a.nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		a.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	SetRedisLogger(log) // go-redis's own lines into the JSON log, at debug (redislog.go)
	a.rdb, err = RedisClient(cfg)
	if err != nil {
		a.Close()
		return nil, err
	}
	a.store = suppress.New(a.rdb, cfg.StoreOptions())
	a.alerts = alert.NewStore(a.rdb, alert.StoreOptions{Prefix: cfg.RedisPrefix, RecipientKey: []byte(cfg.AddressHashKey)})
	a.guard = guard.New(guard.Config{Redis: a.rdb, Prefix: cfg.RedisPrefix, Store: a.store, Alerts: a.alerts, Metrics: a.metrics, Log: log})

	pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := a.store.Ping(pctx); err != nil {
		a.Close()
		return nil, fmt.Errorf("REBOUND_REDIS_URL: %w", err)
	}
	if err := a.store.Load(pctx); err != nil {
		a.Close()
		return nil, err
	}
	if err := a.alerts.Load(pctx); err != nil {
		a.Close()
		return nil, err
	}
	if err := a.guard.Load(pctx); err != nil {
		a.Close()
		return nil, err
	}
	a.cons, err = stream.Provision(pctx, a.js, cfg.Names, stream.Settings{
		Replicas: cfg.StreamReplicas, MaxAge: cfg.StreamMaxAge, DedupWindow: cfg.DedupWindow,
		AckWait: cfg.AckWait, MaxDeliver: cfg.MaxDeliver, MaxAckPending: cfg.MaxAckPending,
	})
	if err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}

// webhookAdapters builds the ingest role's adapters (every listed ESP and the generic
// endpoint) and their body limits from the settings alone, so that an ESP's missing
// secret or a malformed REBOUND_<ESP>_MAX_BODY_BYTES stops the process before it
// connects to anything, naming the setting.
func webhookAdapters(cfg config.Config, log *zap.Logger) ([]ingest.Adapter, map[string]int64, error) {
	adapters, err := all.Adapters(ingest.Env{Getenv: cfg.Getenv, Log: log})
	if err != nil {
		return nil, nil, err
	}
	adapters = append(adapters, ingest.NewGeneric(cfg.GenericToken).AllowRelay(cfg.GenericAllowRelay))
	limits, err := ingest.BodyLimits(cfg.Getenv, adapters)
	if err != nil {
		return nil, nil, err
	}
	return adapters, limits, nil
}

// RedisClient builds the go-redis client for the configured topology. For Sentinel
// and Cluster, the user, password, database and TLS (rediss://) of REBOUND_REDIS_URL
// apply to the data nodes, so one URL carries the credentials whatever the topology.
func RedisClient(cfg config.Config) (redis.UniversalClient, error) {
	opt, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("REBOUND_REDIS_URL: %w", err)
	}
	if cfg.RedisPassword != "" {
		opt.Password = cfg.RedisPassword
	}
	if cfg.RedisCAFile != "" && opt.TLSConfig != nil { // Validate requires rediss:// with it
		if opt.TLSConfig.RootCAs, err = redisCAPool(cfg.RedisCAFile); err != nil {
			return nil, err
		}
	}
	switch {
	case len(cfg.RedisSentinelAddrs) > 0:
		return redis.NewFailoverClient(&redis.FailoverOptions{
			MasterName: cfg.RedisSentinelMaster, SentinelAddrs: cfg.RedisSentinelAddrs,
			Username: opt.Username, Password: opt.Password, DB: opt.DB, TLSConfig: opt.TLSConfig,
		}), nil
	case len(cfg.RedisClusterAddrs) > 0:
		return redis.NewClusterClient(&redis.ClusterOptions{
			Addrs: cfg.RedisClusterAddrs, Username: opt.Username, Password: opt.Password, TLSConfig: opt.TLSConfig,
		}), nil
	}
	return redis.NewClient(opt), nil
}

// LoadAlertConfig reads REBOUND_ALERT_CONFIG (or the built-in empty configuration)
// and adds the REBOUND_ALERT_WEBHOOK_URL shortcut.
func LoadAlertConfig(cfg config.Config) (*alert.Config, error) {
	c := alert.Default()
	if cfg.AlertConfig != "" {
		var err error
		if c, err = alert.LoadFile(cfg.AlertConfig); err != nil {
			return nil, fmt.Errorf("REBOUND_ALERT_CONFIG: %w", err)
		}
	}
	if cfg.AlertWebhookURL != "" {
		if err := c.AddWebhookShortcut(cfg.AlertWebhookURL, cfg.AlertWebhookSecret); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Alerts exposes the incident store.
func (a *App) Alerts() *alert.Store { return a.alerts }

// Guard exposes the mass-bounce guard.
func (a *App) Guard() *guard.Guard { return a.guard }

// Store exposes the Redis state (the demo reads it for its summary).
func (a *App) Store() *suppress.Store { return a.store }

// Catalog exposes the classification catalog.
func (a *App) Catalog() *catalog.Catalog { return a.catalog }

// Metrics exposes the metrics.
func (a *App) Metrics() *metrics.Metrics { return a.metrics }

// Close releases the connections.
func (a *App) Close() {
	if a.nc != nil {
		_ = a.nc.Drain()
	}
	if a.rdb != nil {
		_ = a.rdb.Close()
	}
}

// Run serves until ctx is cancelled, then shuts down in order: stop accepting webhooks,
// finish the batch in flight, stop the notifier. It returns nil after a clean shutdown.
func (a *App) Run(ctx context.Context) error {
	cfg := a.cfg
	pub := stream.NewPublisher(a.js, cfg.Names, 5*time.Second)
	pol := a.policy.Get
	mux := http.NewServeMux()
	var proc *process.Processor
	if cfg.Has(config.RoleProcess) {
		pc := process.Config{
			Consumer: a.cons, Store: a.store, Alerts: a.alerts, Guard: a.guard, Catalog: a.catalog, Policy: pol, Publisher: pub,
			Metrics: a.metrics, Log: a.log, BatchSize: cfg.BatchSize, Concurrency: cfg.Concurrency, MaxDeliver: cfg.MaxDeliver,
			OnProcessed: a.hooks.OnProcessed,
		}
		if a.shadow != nil {
			pc.Shadow = a.shadow.Get
		}
		proc = process.New(pc)
	}
	checks := map[string]func(context.Context) error{
		"nats": func(context.Context) error {
			if !a.nc.IsConnected() {
				return errors.New("not connected")
			}
			return nil
		},
		"redis":   a.store.Ping,
		"streams": func(ctx context.Context) error { return stream.Check(ctx, a.js, cfg.Names) },
	}
	if proc != nil {
		// Paused for a Redis outage: not ready, so traffic and autoscaling look elsewhere.
		checks["consumption"] = func(context.Context) error { return proc.Ready() }
	}
	(&api.Probes{Metrics: a.metrics, Log: a.log, Checks: checks}).Register(mux)
	if cfg.Has(config.RoleIngest) {
		if cfg.GenericToken == "" {
			a.log.Warn("REBOUND_GENERIC_TOKEN is not set: POST /webhooks/generic refuses every request")
		}
		h := ingest.NewHandler(pub, a.metrics, a.log, cfg.MaxBodyBytes, a.adapters...)
		h.SetLimits(a.limits)
		h.SetConcurrency(cfg.WebhookConcurrency, cfg.WebhookConcurrencyPerESP)
		// One-time tokens (Mailgun, Svix) are shared by every replica and survive restarts.
		h.SetReplayStore(ingest.NewRedisReplayStore(a.rdb, cfg.RedisPrefix))
		h.Register(mux)
	}
	admin, err := a.adminMux(mux, pol)
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("REBOUND_HTTP_ADDR: %w", err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 8 * time.Second, WriteTimeout: 15 * time.Second, IdleTimeout: 60 * time.Second}
	errc := make(chan error, 8)
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("http server: %w", err)
		}
	}()
	adminLn, err := net.Listen("tcp", cfg.AdminAddr)
	if err != nil {
		_ = srv.Close()
		return fmt.Errorf("REBOUND_ADMIN_ADDR: %w", err)
	}
	// Longer limits than the webhook listener's (a bulk check carries many addresses),
	// but limits: a client past its headers cannot hold a handler open. The streaming
	// import and export lift their own deadlines (api/transfer.go).
	adminSrv := &http.Server{Handler: admin, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 60 * time.Second, IdleTimeout: 60 * time.Second}
	go func() {
		if err := adminSrv.Serve(adminLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("admin server: %w", err)
		}
	}()
	a.log.Info("listening", zap.String("addr", ln.Addr().String()), zap.String("admin_addr", adminLn.Addr().String()), zap.Any("roles", cfg.Roles))
	if a.hooks.OnAdminListening != nil {
		a.hooks.OnAdminListening(adminLn.Addr().String())
	}
	if a.hooks.OnListening != nil {
		a.hooks.OnListening(ln.Addr().String())
	}

	roleCtx, stopRoles := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRoles()
	var wg sync.WaitGroup
	if proc != nil {
		md := &process.MaxDeliveries{JS: a.js, Names: cfg.Names, Publisher: pub, Metrics: a.metrics, Log: a.log}
		wg.Add(5)
		go func() { defer wg.Done(); a.pruneIndexes(roleCtx, 10*time.Minute) }()
		go func() { defer wg.Done(); errc <- proc.Run(roleCtx) }()
		go func() { defer wg.Done(); errc <- md.Run(roleCtx) }()
		go func() { defer wg.Done(); a.watchLag(roleCtx) }()
		go func() {
			defer wg.Done()
			a.guard.RunSweeper(roleCtx, pol, 30*time.Second)
		}()
	}
	if cfg.Has(config.RoleNotify) {
		n := &alert.Notifier{
			Store: a.alerts, Config: a.alertCf, Targets: a.targets(), Describe: a.catalog, Metrics: a.metrics, Log: a.log,
			Lifecycle: func() alert.Lifecycle { return pol().Incidents }, OnSent: a.hooks.OnAlert,
		}
		wg.Add(1)
		go func() { defer wg.Done(); errc <- n.Run(roleCtx) }()
	}

	// Policy files are reloaded on change and on SIGHUP; an invalid one is refused and
	// the policy in force stays.
	for _, h := range []*policy.Holder{a.policy, a.shadow} {
		if h == nil || h.Path() == "" {
			continue
		}
		// A channel per holder: one SIGHUP reloads both the live and the shadow policy.
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		wg.Add(1)
		go func() {
			defer wg.Done()
			h.Watch(roleCtx, 2*time.Second, hup, func(changed bool, err error) {
				if err != nil {
					a.metrics.PolicyReloads.WithLabelValues("refused").Inc()
					a.log.Error("policy file refused; the policy in force stays", zap.String("file", h.Path()), zap.Error(err))
					return
				}
				a.metrics.PolicyReloads.WithLabelValues("applied").Inc()
				a.log.Info("policy reloaded", zap.String("file", h.Path()))
			})
		}()
	}

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	a.log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	_ = srv.Shutdown(sctx) // webhooks in flight finish their publish first
	_ = adminSrv.Shutdown(sctx)
	stopRoles()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-sctx.Done():
		return errors.New("shutdown timed out with work in flight (REBOUND_SHUTDOWN_TIMEOUT)")
	}
	// Flush the acks of the last batch before the connection goes.
	_ = a.nc.FlushTimeout(5 * time.Second)
	return runErr
}

// watchLag exports the consumer's lag every few seconds.
func (a *App) watchLag(ctx context.Context) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		ictx, cancel := context.WithTimeout(ctx, 2*time.Second)
		info, err := a.cons.Info(ictx)
		cancel()
		if err == nil {
			a.metrics.ConsumerPending.Set(float64(info.NumPending))
			a.metrics.ConsumerAckPend.Set(float64(info.NumAckPending))
			a.metrics.ConsumerRedelivd.Set(float64(info.NumRedelivered))
		}
		ictx, cancel = context.WithTimeout(ctx, 2*time.Second)
		if s, err := a.js.Stream(ictx, a.cfg.Names.DeadStream); err == nil {
			if info, err := s.Info(ictx); err == nil {
				a.metrics.DeadLetterMessages.Set(float64(info.State.Msgs))
			}
		}
		cancel()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// targets are the notify role's receivers: the configured ones, the log line when none
// is configured (an incident is never silent), and the control signal on NATS.
func (a *App) targets() []alert.Target {
	ts := a.alertCf.Build(nil)
	if len(ts) == 0 {
		a.log.Warn("no alert receivers configured (REBOUND_ALERT_CONFIG, REBOUND_ALERT_WEBHOOK_URL): incidents are only logged")
		ts = append(ts, alert.Target{Name: alert.ReceiverLog, Receiver: alert.LogReceiver{Log: a.log}, All: true})
	}
	if a.alertCf.ControlSignalOn() {
		ts = append(ts, alert.Target{Name: alert.ReceiverControl, Receiver: alert.ControlReceiver{NC: a.nc, Prefix: a.cfg.Names.SubjectPrefix}, All: true})
	}
	return ts
}

// pruneIndexes drops expired suppressions from every tenant's listing indexes every
// period (a listing prunes only its own tenant's). Replicas may overlap: pruning is
// idempotent.
func (a *App) pruneIndexes(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := a.store.PruneIndexes(ctx)
		if err != nil && ctx.Err() == nil {
			a.log.Warn("pruning the suppression listing indexes failed", zap.Error(err))
			continue
		}
		a.log.Debug("suppression listing indexes pruned", zap.Int("expired_dropped", n))
	}
}
