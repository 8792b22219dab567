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
# shellcheck source=scripts/lib/gotool.sh
source "$(dirname "$0")/lib/gotool.sh"

name=helm
version="${HELM_VERSION:-v3.22.0}"
module="helm.sh/helm/v3"

gotool_cached
gotool_source

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

gotool_install
