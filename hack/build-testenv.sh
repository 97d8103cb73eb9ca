#!/usr/bin/env bash
# Builds the binaries of the real Kubernetes test tier (kube-apiserver + etcd) from the published Go modules.
#
# Only the Go module proxy is needed: no GitHub release downloads, no dl.k8s.io. kube-apiserver comes from
# k8s.io/kubernetes (whose go.mod points every k8s.io/* staging module at ./staging/src with a v0.0.0
# requirement, so a small wrapper module re-points each of them at the matching published v0.X.Y tag), and
# etcd from go.etcd.io/etcd/server/v3 (whose module root is the etcd main package).
#
# Binaries are cached under ${HUBSETTINGS_CACHE:-~/.cache/hubsettings}/bin/<component>-<version>/, so a
# second run prints "cached" and exits at once. Each binary is built into a temporary file and moved into
# place, so an interrupted build never leaves a half-written binary that later looks cached.
#
# Usage: hack/build-testenv.sh [--node] [--print-paths|--paths-only]
#   --node         also the node tier's kubelet, kube-controller-manager and kube-scheduler (tests/cluster),
#                  from the same k8s.io/kubernetes version as kube-apiserver.
#   --print-paths  print "NAME=PATH" for each binary (building first if needed) and nothing else on stdout.
#   --paths-only   print "NAME=PATH" for each binary without building (they may not exist yet).
set -euo pipefail

# --- pinned versions (change here only) -------------------------------------------------------------------
KUBERNETES_VERSION="${KUBERNETES_VERSION:-v1.35.4}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
# -----------------------------------------------------------------------------------------------------------

CACHE="${HUBSETTINGS_CACHE:-${HOME}/.cache/hubsettings}"
BIN_ROOT="${CACHE}/bin"
BUILD_ROOT="${CACHE}/build"
KUBE_APISERVER_BIN="${BIN_ROOT}/kube-apiserver-${KUBERNETES_VERSION}/kube-apiserver"
ETCD_BIN="${BIN_ROOT}/etcd-${ETCD_VERSION}/etcd"
KUBELET_BIN="${BIN_ROOT}/kubelet-${KUBERNETES_VERSION}/kubelet"
KUBE_CONTROLLER_MANAGER_BIN="${BIN_ROOT}/kube-controller-manager-${KUBERNETES_VERSION}/kube-controller-manager"
KUBE_SCHEDULER_BIN="${BIN_ROOT}/kube-scheduler-${KUBERNETES_VERSION}/kube-scheduler"

node=0
if [[ "${1:-}" == --node ]]; then
  node=1
  shift
fi

paths() {
  printf 'KUBE_APISERVER=%s\nETCD=%s\n' "${KUBE_APISERVER_BIN}" "${ETCD_BIN}"
  if [[ ${node} -eq 1 ]]; then
    printf 'KUBELET=%s\nKUBE_CONTROLLER_MANAGER=%s\nKUBE_SCHEDULER=%s\n' "${KUBELET_BIN}" \
      "${KUBE_CONTROLLER_MANAGER_BIN}" "${KUBE_SCHEDULER_BIN}"
  fi
}

print_paths=0
case "${1:-}" in
  "") ;;
  --print-paths) print_paths=1 ;;
  --paths-only)
    paths
    exit 0
    ;;
  *)
    echo "usage: $0 [--node] [--print-paths|--paths-only]" >&2
    exit 2
    ;;
esac

# Progress goes to stderr so that --print-paths keeps stdout machine-readable.
log() { printf '[build-testenv] %s\n' "$*" >&2; }

emit_paths() {
  if [[ ${print_paths} -eq 1 ]]; then
    paths
  fi
}

all_cached() {
  [[ -x "${KUBE_APISERVER_BIN}" && -x "${ETCD_BIN}" ]] || return 1
  [[ ${node} -eq 0 || (-x "${KUBELET_BIN}" && -x "${KUBE_CONTROLLER_MANAGER_BIN}" && -x "${KUBE_SCHEDULER_BIN}") ]]
}

if all_cached; then
  log "cached: kube-apiserver ${KUBERNETES_VERSION}$([[ ${node} -eq 0 ]] || echo ' (+ node binaries)'), etcd ${ETCD_VERSION} under ${BIN_ROOT}"
  emit_paths
  exit 0
fi

# shellcheck source=hack/go-env.sh
source "$(dirname "${BASH_SOURCE[0]}")/go-env.sh"
# The wrapper module's go.mod is generated and completed by `go get`: let the build update it.
export GOFLAGS="${GOFLAGS} -mod=mod"

# Two concurrent runs (e.g. `make deps` and a pytest session) must not build into the same directories.
exec 9>"${CACHE}/.build-testenv.lock"
if ! flock -n 9; then
  log "another build is running; waiting for it"
  flock 9
fi
if all_cached; then
  log "cached (built by a concurrent run)"
  emit_paths
  exit 0
fi

log "using $("${GO}" version)"
total_start=${SECONDS}

# Moves a freshly built binary into its cache dir atomically (rename within the same filesystem).
install_binary() {
  local built="$1" dest="$2"
  mkdir -p "$(dirname "${dest}")"
  local tmp
  tmp="$(mktemp "$(dirname "${dest}")/.tmp.XXXXXX")"
  cp "${built}" "${tmp}"
  chmod 0755 "${tmp}"
  mv -f "${tmp}" "${dest}"
}

build_etcd() {
  if [[ -x "${ETCD_BIN}" ]]; then
    log "etcd ${ETCD_VERSION}: cached"
    return
  fi
  local start=${SECONDS}
  local dir="${BUILD_ROOT}/etcd-${ETCD_VERSION}"
  rm -rf "${dir}"
  mkdir -p "${dir}"
  log "etcd ${ETCD_VERSION}: resolving modules in ${dir}"
  cat >"${dir}/go.mod" <<EOF
module hubsettings.local/testenv/etcd

go 1.25.0
EOF
  (cd "${dir}" && "${GO}" get "go.etcd.io/etcd/server/v3@${ETCD_VERSION}")
  log "etcd ${ETCD_VERSION}: compiling"
  (cd "${dir}" && "${GO}" build -trimpath -ldflags "-s -w" -o "${dir}/etcd.out" go.etcd.io/etcd/server/v3)
  install_binary "${dir}/etcd.out" "${ETCD_BIN}"
  rm -rf "${dir}"
  log "etcd ${ETCD_VERSION}: built in $((SECONDS - start))s -> ${ETCD_BIN}"
}

# Builds k8s.io/kubernetes/cmd/<component> (kube-apiserver; with --node also kubelet, kube-controller-manager and
# kube-scheduler) in one wrapper module, so the components share the resolved modules and the Go build cache.
build_kubernetes() {
  local comp="$1" out="$2"
  if [[ -x "${out}" ]]; then
    log "${comp} ${KUBERNETES_VERSION}: cached"
    return
  fi
  local start=${SECONDS}
  local dir="${BUILD_ROOT}/kubernetes-${KUBERNETES_VERSION}"
  # Staging modules are tagged v0.<minor>.<patch> for Kubernetes v1.<minor>.<patch>.
  local staging_version="v0.${KUBERNETES_VERSION#v1.}"
  if [[ ! -f "${dir}/go.mod" ]]; then
    rm -rf "${dir}"
    mkdir -p "${dir}"
    log "kubernetes ${KUBERNETES_VERSION}: downloading k8s.io/kubernetes's go.mod"
    local kmod
    kmod="$(cd "${dir}" && "${GO}" mod download -json "k8s.io/kubernetes@${KUBERNETES_VERSION}" \
      | sed -n 's/.*"GoMod": "\([^"]*\)".*/\1/p')"
    if [[ -z "${kmod}" || ! -f "${kmod}" ]]; then
      log "error: could not download k8s.io/kubernetes@${KUBERNETES_VERSION}'s go.mod"
      exit 1
    fi

    # Every `k8s.io/foo => ./staging/src/k8s.io/foo` replace becomes `k8s.io/foo => k8s.io/foo v0.X.Y`.
    local replaces
    replaces="$(awk -v ver="${staging_version}" \
      '$1 ~ /^k8s\.io\// && $2 == "=>" && $3 ~ /^\.\/staging\// { printf "\t%s => %s %s\n", $1, $1, ver }' \
      "${kmod}")"
    if [[ -z "${replaces}" ]]; then
      log "error: found no staging replaces in ${kmod}"
      exit 1
    fi
    log "kubernetes ${KUBERNETES_VERSION}: $(wc -l <<<"${replaces}") staging modules -> ${staging_version}"
    # Keep Kubernetes' own godebug defaults: they change runtime behaviour (e.g. TLS, x509 parsing).
    local godebug
    godebug="$(grep -E '^godebug ' "${kmod}" || true)"
    local gover
    gover="$(awk '$1 == "go" { print $2; exit }' "${kmod}")"

    cat >"${dir}/go.mod.tmp" <<EOF
module hubsettings.local/testenv/kubernetes

go ${gover}

${godebug}

require k8s.io/kubernetes ${KUBERNETES_VERSION}

replace (
${replaces}
)
EOF
    mv -f "${dir}/go.mod.tmp" "${dir}/go.mod"
  fi
  log "${comp} ${KUBERNETES_VERSION}: resolving modules in ${dir}"
  (cd "${dir}" && "${GO}" get "k8s.io/kubernetes/cmd/${comp}@${KUBERNETES_VERSION}")

  # The same version stamps the Kubernetes release build sets, so /version reports the real release.
  local minor="${KUBERNETES_VERSION#v1.}"
  minor="${minor%%.*}"
  local ldflags="-s -w"
  local pkg
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X ${pkg}.gitVersion=${KUBERNETES_VERSION}"
    ldflags+=" -X ${pkg}.gitMajor=1 -X ${pkg}.gitMinor=${minor}"
    ldflags+=" -X ${pkg}.gitTreeState=clean"
    ldflags+=" -X ${pkg}.buildDate=1970-01-01T00:00:00Z"
  done
  log "${comp} ${KUBERNETES_VERSION}: compiling (the first Kubernetes build takes many minutes)"
  (cd "${dir}" && "${GO}" build -trimpath -ldflags "${ldflags}" -o "${dir}/${comp}.out" \
    "k8s.io/kubernetes/cmd/${comp}")
  install_binary "${dir}/${comp}.out" "${out}"
  rm -f "${dir}/${comp}.out"
  log "${comp} ${KUBERNETES_VERSION}: built in $((SECONDS - start))s -> ${out}"
}

build_etcd
build_kubernetes kube-apiserver "${KUBE_APISERVER_BIN}"
if [[ ${node} -eq 1 ]]; then
  build_kubernetes kubelet "${KUBELET_BIN}"
  build_kubernetes kube-controller-manager "${KUBE_CONTROLLER_MANAGER_BIN}"
  build_kubernetes kube-scheduler "${KUBE_SCHEDULER_BIN}"
fi
log "done in $((SECONDS - total_start))s"
emit_paths
