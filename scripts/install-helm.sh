#!/usr/bin/env bash
# Builds Helm v3 from its Go module, once, and prints the binary's path.
#
# The chart in deploy/helm/rebound is checked without a cluster: `helm lint --strict` and
# `helm template` for the default values and every ci/*-values.yaml, then a Go test
# (deploy/helm) decodes what was rendered into the Kubernetes API types. The test
# machines reach the Go module proxy but not Helm's release downloads, so the binary is
# compiled from the module. That takes minutes on a small machine, hence the cache: the
# binary lives at
#   ${REBOUND_CACHE_DIR:-$HOME/.cache/rebound}/helm-<version>/helm
# and is used as it is for as long as it is there. Another version builds beside it.
#
# Usage: scripts/install-helm.sh        # prints the binary's path on stdout
#        HELM_VERSION=v3.22.0 scripts/install-helm.sh
# Everything except the path goes to stderr, so callers can write bin=$(scripts/...).
set -euo pipefail

version="${HELM_VERSION:-v3.22.0}"
module="helm.sh/helm/v3"
cache="${REBOUND_CACHE_DIR:-${HOME:?HOME is not set}/.cache/rebound}"
dir="$cache/helm-$version"
bin="$dir/helm"

if [[ -x "$bin" ]]; then
	echo "$bin"
	exit 0
fi

if ! command -v go >/dev/null 2>&1; then
	echo "install-helm: go is not on PATH; Helm $version is built from its Go module $module" >&2
	exit 1
fi

mkdir -p "$dir"

# Several test binaries may ask at once: the lock makes the later ones wait for the
# first build instead of compiling it again.
exec 9>"$dir/.lock"
if command -v flock >/dev/null 2>&1; then
	flock 9
fi
if [[ -x "$bin" ]]; then
	echo "$bin"
	exit 0
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/rebound-helm.XXXXXX")"
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT

# Everything runs from an empty folder with GOWORK off, so neither Rebound's go.mod nor
# a go.work is in scope: Rebound's go.mod and go.sum are never read or written, and Helm
# gets exactly the dependencies its own go.mod pins. GOFLAGS is replaced, not inherited,
# so that a developer's -mod=vendor or -modfile cannot get in the way.
export GOWORK=off GOFLAGS=-mod=mod CGO_ENABLED=0
cd "$work"

echo "install-helm: building Helm $version from $module (first time only, a few minutes)..." >&2
start=$SECONDS

if ! info="$(go mod download -json "$module@$version")"; then
	# The reason is in the JSON's "Error" field, not on stderr.
	echo "install-helm: cannot download $module@$version (GOPROXY=$(go env GOPROXY)):" >&2
	echo "$info" >&2
	exit 1
fi
src="$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p' <<<"$info")"
if [[ -z "$src" || ! -f "$src/go.mod" ]]; then
	echo "install-helm: go mod download $module@$version gave no source folder:" >&2
	echo "$info" >&2
	exit 1
fi
# A writable copy: the module cache is read-only, and -mod=mod may touch go.sum.
cp -R "$src" "$work/src"
chmod -R u+w "$work/src"

(
	cd "$work/src"
	# The same version stamps Helm's Makefile sets. The Kubernetes version is the one
	# `helm template` and `helm lint` assume for .Capabilities.KubeVersion and for the
	# deprecated-API check; Helm derives it from its client-go (v0.X -> 1.X).
	k8s="$(go list -f '{{.Version}}' -m k8s.io/client-go)"
	k8s_minor="$(cut -d. -f2 <<<"${k8s#v}")"
	ldflags="-s -w -X $module/internal/version.version=$version -X $module/internal/version.metadata="
	ldflags+=" -X $module/internal/version.gitTreeState=clean"
	for pkg in pkg/lint/rules pkg/chartutil; do
		ldflags+=" -X $module/$pkg.k8sVersionMajor=1 -X $module/$pkg.k8sVersionMinor=$k8s_minor"
	done
	go build -trimpath -o "$work/helm" -ldflags "$ldflags" ./cmd/helm
) >&2

# Move into place only once the build is complete: an interrupted build must not leave
# a file that the next run would take for a good binary.
mv -f "$work/helm" "$bin.tmp"
mv -f "$bin.tmp" "$bin"
echo "install-helm: built $bin in $((SECONDS - start))s" >&2
echo "$bin"
