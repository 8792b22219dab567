// Package helm checks the Helm chart in deploy/helm/rebound without a cluster: `helm
// lint --strict` and `helm template` for the default values and every ci/*-values.yaml,
// each rendered object decoded strictly into its k8s.io/api type or validated against
// its CRD's schema (testdata/crds), and the chart's promises — hardened pods, probes,
// drain time, secrets only as files and only where a role needs them — asserted.
//
// The package has no code besides its tests. helm is built once from its Go module by
// scripts/install-helm.sh and cached (`make tools`; the first build takes minutes, so
// run it before a bare `go test ./deploy/helm` with go test's default timeout).
package helm
