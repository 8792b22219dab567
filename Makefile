# Rebound — the two commands a new user needs are `make demo` and `make test`.
GO        ?= go
PKGS      := ./...
FUZZTIME  ?= 10s
BIN       := bin/worker

.PHONY: demo demo-serve test test-short tools fuzz bench bench-e2e build lint docker help

help:
	@echo "make demo        whole pipeline on embedded services, prints what it decided, exits"
	@echo "make demo-serve  the same, then keeps serving (webhooks on 127.0.0.1:8080, API on 127.0.0.1:9090) for curl"
	@echo "make test        every test (unit, integration against real NATS and Redis, end-to-end), with -race"
	@echo "make fuzz        each fuzz target for FUZZTIME (default $(FUZZTIME))"
	@echo "make bench       benchmarks of the hot path"
	@echo "make bench-e2e   the process role end to end against the ideal worker (docs/performance.md)"
	@echo "make build       static binary in $(BIN)"
	@echo "make lint        gofmt and go vet"
	@echo "make tools       build the test tools once (a real Alertmanager, helm), cached in ~/.cache/rebound; Debian's chromium if missing"

demo:
	$(GO) run ./cmd/worker demo --exit

demo-serve:
	$(GO) run ./cmd/worker demo

# Integration tests find NATS and Redis through REBOUND_NATS_URL / REBOUND_REDIS_URL,
# then 127.0.0.1:4222 / 127.0.0.1:6379, else start their own (nats-server embedded from
# its Go module, redis-server from PATH); they fail, never skip, when neither works.
test: lint tools
	$(GO) test -race -count=1 -timeout 20m $(PKGS)

# Tools the tests run, built from their Go modules once and cached under
# $$HOME/.cache/rebound (REBOUND_CACHE_DIR): a real Alertmanager for the alerting tests,
# helm for the chart's checks (deploy/helm). The first builds take about 4 and 8 minutes
# on 2 cores; later runs find them at once.
tools:
	@bash scripts/install-alertmanager.sh >/dev/null
	@bash scripts/install-helm.sh >/dev/null
	@bash scripts/install-chromium.sh >/dev/null

test-short:
	$(GO) test -count=1 -short $(PKGS)

# Every fuzz target, one after the other, for a bounded time each; a failing target does
# not stop the others, and the list of failures closes the run.
fuzz:
	@failed=""; for pkg in $$($(GO) list ./...); do \
	  for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "fuzz $$pkg $$t ($(FUZZTIME))"; \
	    $(GO) test -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME) $$pkg || failed="$$failed $$pkg.$$t"; \
	  done; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz failures:$$failed"; exit 1; fi

bench:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

# The process role end to end against the "ideal worker", on the NATS and Redis of
# REBOUND_NATS_URL / REBOUND_REDIS_URL (default the local ones), private stream and key
# prefix, removed afterwards. Not part of `make test`: it loads the machine for a minute.
# GOGC=400 as the chart runs the process role (process.gogc): the figures are the
# product's as deployed; BENCH_GOGC=100 gives the runtime's default.
BENCH_EVENTS ?= 200000
BENCH_GOGC   ?= 400
bench-e2e:
	GOGC=$(BENCH_GOGC) $(GO) run ./cmd/worker loadgen -events $(BENCH_EVENTS) $(BENCH_FLAGS)

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w' -o $(BIN) ./cmd/worker

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

docker:
	docker build -t rebound:dev .
