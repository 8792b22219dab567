#!/usr/bin/env bash
# Copies the CustomResourceDefinitions the chart's test validates against into
# deploy/helm/testdata/crds, from the Go modules that ship them (through the module
# proxy: the test itself never fetches anything). Run it to move to newer versions, then
# `go test ./deploy/helm`. The files are copied as they are, with their licences.
set -euo pipefail

prom="${PROMETHEUS_OPERATOR_VERSION:-v0.89.0}"
keda="${KEDA_VERSION:-v2.21.0}"
gateway="${GATEWAY_API_VERSION:-v1.6.3}"

cd "$(dirname "$0")/.."
out=deploy/helm/testdata/crds
mkdir -p "$out"
export GOWORK=off GOFLAGS=-mod=mod

# dir MODULE@VERSION: the module's folder in the module cache, downloaded if needed.
dir() {
	local info src
	info="$(cd "${TMPDIR:-/tmp}" && go mod download -json "$1")" || { echo "$info" >&2; return 1; }
	src="$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p' <<<"$info")"
	[[ -n "$src" ]] || { echo "update-test-crds: no folder for $1: $info" >&2; return 1; }
	echo "$src"
}

p="$(dir "github.com/prometheus-operator/prometheus-operator@$prom")"
k="$(dir "github.com/kedacore/keda/v2@$keda")"
g="$(dir "sigs.k8s.io/gateway-api@$gateway")"

install -m 0644 "$p/example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml" "$out/"
install -m 0644 "$p/example/prometheus-operator-crd/monitoring.coreos.com_prometheusrules.yaml" "$out/"
install -m 0644 "$p/LICENSE" "$out/LICENSE.prometheus-operator"
install -m 0644 "$p/NOTICE" "$out/NOTICE.prometheus-operator"
install -m 0644 "$k/config/crd/bases/keda.sh_scaledobjects.yaml" "$out/"
install -m 0644 "$k/LICENSE" "$out/LICENSE.keda"
install -m 0644 "$g/config/crd/standard/gateway.networking.k8s.io_httproutes.yaml" "$out/"
install -m 0644 "$g/LICENSE" "$out/LICENSE.gateway-api"

cat >"$out/README.md" <<MD
# CRDs for the chart's test

The test in \`deploy/helm\` validates the ServiceMonitor, PrometheusRule, ScaledObject and
HTTPRoute the chart renders against these CustomResourceDefinitions' OpenAPI v3 schemas,
offline. Copied unchanged by \`scripts/update-test-crds.sh\` from the Go modules below;
each project's licence (Apache 2.0) and notice sit beside them.

| file | module | version |
|---|---|---|
| \`monitoring.coreos.com_servicemonitors.yaml\`, \`monitoring.coreos.com_prometheusrules.yaml\` | github.com/prometheus-operator/prometheus-operator (\`example/prometheus-operator-crd/\`) | $prom |
| \`keda.sh_scaledobjects.yaml\` | github.com/kedacore/keda/v2 (\`config/crd/bases/\`) | $keda |
| \`gateway.networking.k8s.io_httproutes.yaml\` | sigs.k8s.io/gateway-api (\`config/crd/standard/\`) | $gateway |
MD
echo "update-test-crds: $out refreshed (prometheus-operator $prom, KEDA $keda, Gateway API $gateway)" >&2
