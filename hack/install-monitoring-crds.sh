#!/usr/bin/env bash
# The Prometheus Operator's published CRDs (ServiceMonitor, PodMonitor, PrometheusRule), so the e2e tier can
# have the real API server validate the chart's monitoring objects against their real schemas.
#
# They come from the Go module github.com/prometheus-operator/prometheus-operator (its
# example/prometheus-operator-crd/ directory is the upstream release's CRD set), fetched with `go mod download`
# through the Go module proxy, and copied to ${HUBSETTINGS_CACHE:-~/.cache/hubsettings}/monitoring-crds/<version>/.
# The directory is the last line on stdout; progress goes to stderr. `--path-only` prints it without fetching.
set -euo pipefail

VERSION="${PROMETHEUS_OPERATOR_VERSION:-v0.85.0}"
KINDS=(servicemonitors podmonitors prometheusrules)

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${HUBSETTINGS_CACHE:-${HOME}/.cache/hubsettings}"
BIN_ROOT="${CACHE}/bin"
BUILD_ROOT="${CACHE}/build"
OUT="${CACHE}/monitoring-crds/${VERSION}"

log() { printf '[install-monitoring-crds] %s\n' "$*" >&2; }

complete() {
  local kind
  for kind in "${KINDS[@]}"; do [[ -s "${OUT}/monitoring.coreos.com_${kind}.yaml" ]] || return 1; done
}

if [[ "${1:-}" == --path-only ]] || complete; then
  printf '%s\n' "${OUT}"
  exit 0
fi

# shellcheck source=hack/go-env.sh
source "${HERE}/go-env.sh"

work="$(mktemp -d "${BUILD_ROOT}/monitoring-crds.XXXXXX")"
trap 'rm -rf "${work}"' EXIT
log "go mod download github.com/prometheus-operator/prometheus-operator@${VERSION}"
dir="$(cd "${work}" && "${GO}" mod download -json "github.com/prometheus-operator/prometheus-operator@${VERSION}" \
  | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
if [[ -z "${dir}" || ! -d "${dir}/example/prometheus-operator-crd" ]]; then
  log "error: the module has no example/prometheus-operator-crd directory"
  exit 1
fi
mkdir -p "${OUT}.tmp"
for kind in "${KINDS[@]}"; do
  cp "${dir}/example/prometheus-operator-crd/monitoring.coreos.com_${kind}.yaml" "${OUT}.tmp/"
done
chmod -R u+w "${OUT}.tmp"
rm -rf "${OUT}"
mv "${OUT}.tmp" "${OUT}"
log "CRDs of prometheus-operator ${VERSION} in ${OUT}"
printf '%s\n' "${OUT}"
