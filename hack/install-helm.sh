#!/usr/bin/env bash
# Provides a Helm 3 binary for the chart tests (`helm lint`, `helm template`) and hack/e2e-kind.sh.
#
# If a working `helm` (v3) is already on PATH it is used as is. Otherwise Helm is built from the published Go
# module helm.sh/helm/v3 through the Go module proxy (no get.helm.sh or GitHub release download), at the
# pinned version below, and cached under ${HUBSETTINGS_CACHE:-~/.cache/hubsettings}/bin/helm-<version>/helm.
# A second run prints the cached path at once. The binary is built into a temporary directory and moved into
# place, so an interrupted build never leaves a half-written binary that later looks cached.
#
# The path of the binary is always the last line on stdout; progress goes to stderr.
#
# Usage: hack/install-helm.sh [--print-path|--path-only]
#   --print-path  print the binary's path only (building first if needed); the default does the same.
#   --path-only   print where the built binary lives (or would live) without building or probing PATH.
# Environment: HELM_VERSION (default below), HUBSETTINGS_HELM_FROM_PATH=0 to ignore a helm found on PATH.
set -euo pipefail

# --- pinned version (change here only) --------------------------------------------------------------------
HELM_VERSION="${HELM_VERSION:-v3.21.4}"
# -----------------------------------------------------------------------------------------------------------

CACHE="${HUBSETTINGS_CACHE:-${HOME}/.cache/hubsettings}"
BIN_ROOT="${CACHE}/bin"
BUILD_ROOT="${CACHE}/build"
HELM_BIN="${BIN_ROOT}/helm-${HELM_VERSION}/helm"

log() { printf '[install-helm] %s\n' "$*" >&2; }
# shellcheck source=hack/install-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/install-lib.sh"
install_args "${HELM_BIN}" "$@"

# A helm on PATH counts only if it runs and is Helm 3 (the chart is apiVersion v2; Helm 2 cannot read it).
helm3_on_path() {
  local version
  if version="$("$1" version --template '{{.Version}}' 2>/dev/null)" && [[ "${version}" == v3.* ]]; then
    log "using helm ${version} from PATH"
    return 0
  fi
  log "ignoring $1: not a working Helm 3"
  return 1
}
use_from_path helm "${HUBSETTINGS_HELM_FROM_PATH:-1}" helm3_on_path

helm_works() { [[ -x "${HELM_BIN}" ]] && "${HELM_BIN}" version --short >/dev/null 2>&1; }

if helm_works; then
  log "cached: helm ${HELM_VERSION} at ${HELM_BIN}"
  printf '%s\n' "${HELM_BIN}"
  exit 0
fi

# shellcheck source=hack/go-env.sh
source "$(dirname "${BASH_SOURCE[0]}")/go-env.sh"

build_lock helm
if helm_works; then
  log "cached (built by a concurrent run): ${HELM_BIN}"
  printf '%s\n' "${HELM_BIN}"
  exit 0
fi

log "using $("${GO}" version)"
start=${SECONDS}
gobin="$(mktemp -d "${BUILD_ROOT}/helm-${HELM_VERSION}.XXXXXX")"
trap 'rm -rf "${gobin}"' EXIT

# Stamp the binary as Helm's own Makefile does: `helm version` reports internal/version.version, and the
# default Kubernetes version of `helm template`/`helm lint` (.Capabilities.KubeVersion, deprecation checks)
# is the client-go minor Helm is built with. Without the latter it stays at v1.20.0, and a chart's kubeVersion
# constraint fails offline rendering.
log "helm ${HELM_VERSION}: reading its go.mod"
helm_gomod="$(cd "${gobin}" && "${GO}" mod download -json "helm.sh/helm/v3@${HELM_VERSION}" \
  | sed -n 's/.*"GoMod": "\([^"]*\)".*/\1/p')"
k8s_minor="$(awk '$1 == "k8s.io/client-go" { split($2, v, "."); print v[2]; exit }' "${helm_gomod}")"
if [[ -z "${k8s_minor}" ]]; then
  log "error: cannot read k8s.io/client-go's version from ${helm_gomod}"
  exit 1
fi
ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=${HELM_VERSION}"
ldflags+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
pkg=""
for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
  ldflags+=" -X ${pkg}.k8sVersionMajor=1 -X ${pkg}.k8sVersionMinor=${k8s_minor}"
done
log "helm ${HELM_VERSION}: building helm.sh/helm/v3/cmd/helm, default Kubernetes v1.${k8s_minor} (takes minutes)"
GOBIN="${gobin}" "${GO}" install -trimpath -ldflags "${ldflags}" "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}"

place_binary "${gobin}/helm" "${HELM_BIN}"
log "helm ${HELM_VERSION}: built in $((SECONDS - start))s -> ${HELM_BIN} ($("${HELM_BIN}" version --short))"
printf '%s\n' "${HELM_BIN}"
