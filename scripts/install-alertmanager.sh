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

version="${ALERTMANAGER_VERSION:-v0.35.0}"
module="github.com/prometheus/alertmanager"
cache="${REBOUND_CACHE_DIR:-${HOME:?HOME is not set}/.cache/rebound}"
dir="$cache/alertmanager-$version"
bin="$dir/alertmanager"

if [[ -x "$bin" ]]; then
	echo "$bin"
	exit 0
fi

if ! command -v go >/dev/null 2>&1; then
	echo "install-alertmanager: go is not on PATH; Alertmanager $version is built from its Go module $module" >&2
	exit 1
fi

mkdir -p "$dir"

# Several test binaries may ask at once (go test runs packages in parallel): the lock
# makes the later ones wait for the first build instead of compiling it again.
exec 9>"$dir/.lock"
if command -v flock >/dev/null 2>&1; then
	flock 9
fi
if [[ -x "$bin" ]]; then
	echo "$bin"
	exit 0
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/rebound-alertmanager.XXXXXX")"
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT

# Everything runs from an empty folder with GOWORK off, so neither Rebound's go.mod nor
# a go.work is in scope: Rebound's go.mod and go.sum are never read or written, and
# Alertmanager gets exactly the dependencies its own go.mod pins. GOFLAGS is replaced,
# not inherited, so that a developer's -mod=vendor or -modfile cannot get in the way.
export GOWORK=off GOFLAGS=-mod=mod CGO_ENABLED=0
cd "$work"

echo "install-alertmanager: building Alertmanager $version from $module (first time only, a few minutes)..." >&2
start=$SECONDS

# Download the module (checked against go.sum's checksum database like any module) and
# take a writable copy of it: the module cache is read-only, and the copy needs a file
# the module does not ship (below).
if ! info="$(go mod download -json "$module@$version")"; then
	# The reason is in the JSON's "Error" field, not on stderr.
	echo "install-alertmanager: cannot download $module@$version (GOPROXY=$(go env GOPROXY)):" >&2
	echo "$info" >&2
	exit 1
fi
src="$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p' <<<"$info")"
if [[ -z "$src" || ! -f "$src/go.mod" ]]; then
	echo "install-alertmanager: go mod download $module@$version gave no source folder:" >&2
	echo "$info" >&2
	exit 1
fi
cp -R "$src" "$work/src"
chmod -R u+w "$work/src"

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

# Move into place only once the build is complete: an interrupted build must not leave
# a file that the next run would take for a good binary.
mv -f "$work/alertmanager" "$bin.tmp"
mv -f "$bin.tmp" "$bin"
echo "install-alertmanager: built $bin in $((SECONDS - start))s" >&2
echo "$bin"
