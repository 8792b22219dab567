#!/usr/bin/env bash
# Builds Prometheus Alertmanager from its Go module, once, and prints the binary's path.
#
# Rebound's tests talk to a real Alertmanager instead of a fake of its API, so that a
# change in what Alertmanager accepts, or in how it lists alerts, shows up in our tests
# before it shows up in production. The test machines reach the Go module proxy but not
# GitHub releases, so the binary is compiled from the module. That takes minutes on a
# small machine, hence the cache: the binary lives at
#   ${REBOUND_CACHE_DIR:-$HOME/.cache/rebound}/alertmanager-<version>/alertmanager
# and is used as it is for as long as it is there. Another version builds beside it.
#
# Usage: scripts/install-alertmanager.sh        # prints the binary's path on stdout
#        ALERTMANAGER_VERSION=v0.35.0 scripts/install-alertmanager.sh
# Everything except the path goes to stderr, so callers can write bin=$(scripts/...).
set -euo pipefail
# shellcheck source=scripts/lib/gotool.sh
source "$(dirname "$0")/lib/gotool.sh"

name=alertmanager
version="${ALERTMANAGER_VERSION:-v0.35.0}"
module="github.com/prometheus/alertmanager"

gotool_cached
gotool_source

# The web UI is embedded with //go:embed app/dist, and app/dist is built by npm in
# Alertmanager's release process, so it is not in the module zip and a plain
# `go install module@version` fails with "pattern app/dist: no matching files found".
# Tests only use the HTTP API, so a one-page placeholder stands in for the UI.
for ui in elm mantine; do
	mkdir -p "$work/src/ui/app/dist/$ui"
	printf '<!doctype html><title>Alertmanager</title><p>Built by Rebound for tests: the web UI is not included; the API is at /api/v2/.\n' \
		>"$work/src/ui/app/dist/$ui/index.html"
done

(
	cd "$work/src"
	go build -trimpath -o "$work/alertmanager" \
		-ldflags "-s -w -X github.com/prometheus/common/version.Version=${version#v} -X github.com/prometheus/common/version.Branch=module" \
		./cmd/alertmanager
) >&2

gotool_install
