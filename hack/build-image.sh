#!/usr/bin/env bash
# Builds the project's container images without a registry: `make image`.
#
#   operator   localhost/hubsettings-operator:<chart appVersion>  `hubsettings run`, uid 65532, works with a
#              read-only root filesystem, no compiler, no pip.
#   hub        localhost/hubsettings-hub:<appVersion>   a Hub stand-in: the same layer, in the same archive
#              (stored and imported once), entrypoint `python -m hubsettings_operator.table.listener` (the
#              project's reference Hub replica).
#   pause      localhost/hubsettings-pause:3.10   the node tier's pod sandbox image (a static Go binary).
#
# Two ways to build the operator image, same contents (Python 3.11, the project in /opt/venv with its runtime
# dependencies only, byte-compiled, user 65532):
#   - docker: `docker build -f operator/Dockerfile` when a Docker engine answers (HUBSETTINGS_IMAGE_BUILDER=docker
#     forces it, =rootfs never uses it), then `docker save` into the same archive path;
#   - rootfs (no daemon, no registry): debootstrap a minimal Debian bookworm with python3 from Debian's mirror,
#     a venv of the project's wheel and its dependency wheels (downloaded by the host's pip, installed offline
#     in a chroot), trimmed, packed by hack/mkimage.py into an OCI archive.
#
# Everything is cached under ${HUBSETTINGS_CACHE:-~/.cache/hubsettings}/images, keyed by the sha256 of its inputs
# (the Debian root filesystem by suite and package list; the images by that plus the project's sources and these
# scripts), so a warm run only hashes. Archives load into any runtime:
#   containerd: ctr -n k8s.io images import ARCHIVE     kind: kind load image-archive ARCHIVE
#   docker:     docker load -i ARCHIVE                    a registry: skopeo copy oci-archive:ARCHIVE docker://...
# The node tier (make cluster-up, tests/cluster) imports them into its own containerd.
#
# Usage: hack/build-image.sh [--print-paths|--load]
#   --print-paths  stdout gets only NAME_ARCHIVE=path and NAME_IMAGE=ref lines (progress goes to stderr).
#   --load         then load the operator and Hub images into every local runtime found: the node tier's
#                  containerd (make cluster-up), each kind cluster, a Docker engine (`make image`).
set -euo pipefail

# --- pinned inputs (change here only) --------------------------------------------------------------------------
DEBIAN_SUITE="${DEBIAN_SUITE:-bookworm}"
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
# python3 is Debian's 3.11 (the Dockerfile's base is python:3.11-slim); ca-certificates as in that base.
BASE_PACKAGES="python3,python3-venv,ca-certificates"
PAUSE_IMAGE="localhost/hubsettings-pause:3.10"
# ----------------------------------------------------------------------------------------------------------------

HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "${HACK_DIR}/.." && pwd)"
CACHE="${HUBSETTINGS_CACHE:-${HOME}/.cache/hubsettings}"
BIN_ROOT="${CACHE}/bin"
BUILD_ROOT="${CACHE}/build"
IMG_ROOT="${CACHE}/images"
# The project's venv has a current pip (make venv); a bare python3 may have none.
PYTHON="${PYTHON:-$([[ -x "${REPO}/.venv/bin/python" ]] && echo "${REPO}/.venv/bin/python" || echo python3)}"
APP_VERSION="$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "${REPO}/helm/hubsettings-operator/Chart.yaml")"
OPERATOR_IMAGE="localhost/hubsettings-operator:${APP_VERSION}"
HUB_IMAGE="localhost/hubsettings-hub:${APP_VERSION}"
HUB_ENTRYPOINT='["python", "-m", "hubsettings_operator.table.listener"]'

print_paths=0
load=0
case "${1:-}" in
  "") ;;
  --print-paths) print_paths=1 ;;
  --load) load=1 ;;
  *)
    echo "usage: $0 [--print-paths|--load]" >&2
    exit 2
    ;;
esac

log() { printf '[build-image] %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}
mkdir -p "${IMG_ROOT}"
# One build at a time (make image and a test session may both ask).
exec 9>"${IMG_ROOT}/.lock"
flock 9

hash_inputs() { # sha256 over the names and contents of the given files/dirs (no __pycache__)
  (cd "${REPO}" && find "$@" -type f ! -path '*/__pycache__/*' ! -name '*.pyc' -print0 | LC_ALL=C sort -z |
    xargs -0 sha256sum) | sha256sum | cut -c1-16
}

# --- pause ------------------------------------------------------------------------------------------------------
build_pause() {
  local key archive
  key="$(hash_inputs hack/pause hack/mkimage.py)"
  archive="${IMG_ROOT}/pause-${key}.tar"
  PAUSE_ARCHIVE="${archive}"
  [[ -f "${archive}" ]] && return
  find "${IMG_ROOT}" -maxdepth 1 -name 'pause-*.tar' -delete # older builds
  # shellcheck source=hack/go-env.sh
  source "${HACK_DIR}/go-env.sh"
  local work
  work="$(mktemp -d "${IMG_ROOT}/.pause.XXXXXX")"
  (cd "${REPO}/hack/pause" && "${GO}" build -trimpath -ldflags '-s -w' -o "${work}/rootfs/pause" .)
  "${PYTHON}" "${HACK_DIR}/mkimage.py" --rootfs "${work}/rootfs" --name "${PAUSE_IMAGE}" --out "${archive}" \
    --entrypoint '["/pause"]' --user 65535:65535 >&2
  rm -rf "${work}"
}

# --- Debian root filesystem with python3 (cached by suite and packages) -----------------------------------------
base_rootfs() {
  local key dir
  key="$(printf '%s\n' "${DEBIAN_SUITE}" "${BASE_PACKAGES}" minbase | sha256sum | cut -c1-16)"
  dir="${IMG_ROOT}/debian-${DEBIAN_SUITE}-${key}"
  BASE_ROOTFS="${dir}/rootfs"
  BASE_KEY="${key}"
  [[ -x "${BASE_ROOTFS}/usr/bin/python3" ]] && return
  command -v debootstrap >/dev/null || die "debootstrap missing (make deps installs it)"
  local start=${SECONDS} tmp
  rm -rf "${dir}"
  tmp="$(mktemp -d "${IMG_ROOT}/.debootstrap.XXXXXX")"
  log "debootstrap ${DEBIAN_SUITE} (minbase + ${BASE_PACKAGES}) from ${DEBIAN_MIRROR}"
  debootstrap --variant=minbase --include="${BASE_PACKAGES}" "${DEBIAN_SUITE}" "${tmp}/rootfs" "${DEBIAN_MIRROR}" \
    >"${tmp}/debootstrap.log" 2>&1 || {
    tail -n 20 "${tmp}/debootstrap.log" >&2
    die "debootstrap failed (log above)"
  }
  mv "${tmp}" "${dir}"
  log "debian rootfs in $((SECONDS - start))s: ${BASE_ROOTFS}"
}

# --- operator + hub (rootfs path) -------------------------------------------------------------------------------
build_rootfs_images() {
  local start=${SECONDS} work r
  work="$(mktemp -d "${IMG_ROOT}/.operator.XXXXXX")"
  r="${work}/rootfs"
  # Wheels on the host (its pip knows the index, proxy and CA): the project's, then its runtime dependencies,
  # binary only, for the chroot's interpreter (CPython 3.11, glibc 2.36, x86_64).
  mkdir -p "${work}/wheels"
  "${PYTHON}" -m pip wheel -q --no-deps --wheel-dir "${work}/wheels" "${REPO}" >&2
  "${PYTHON}" -m pip download -q --only-binary=:all: --python-version 3.11 --implementation cp \
    --platform manylinux_2_36_x86_64 --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 \
    --platform linux_x86_64 --dest "${work}/wheels" "${work}"/wheels/hubsettings_operator-*.whl >&2
  log "wheels after $((SECONDS - start))s: $(find "${work}/wheels" -name '*.whl' | wc -l)"
  cp -a "${BASE_ROOTFS}" "${r}"
  mv "${work}/wheels" "${r}/wheels"
  cp "${HACK_DIR}/slim-venv.sh" "${r}/wheels/"
  # The Dockerfile's builder stage, offline in a chroot.
  env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 chroot "${r}" /bin/sh -euc '
    export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1
    python3 -m venv /opt/venv
    /opt/venv/bin/pip install -q --no-index --find-links /wheels --only-binary=:all: hubsettings-operator
    sh /wheels/slim-venv.sh /opt/venv
    /opt/venv/bin/hubsettings --help >/dev/null
    /opt/venv/bin/python -c "import hubsettings_operator.runtime.runner, hubsettings_operator.table.listener, kubernetes.client, psycopg_binary"
  ' >&2
  # The final stage: only what runs. No package manager state, docs, locales, wheels, perl or apt.
  echo 'nonroot:x:65532:65532:nonroot:/tmp:/usr/sbin/nologin' >>"${r}/etc/passwd"
  echo 'nonroot:x:65532:' >>"${r}/etc/group"
  rm -rf "${r}/wheels" "${r}/usr/share/python-wheels" "${r}/var/lib/apt/lists/"* "${r}/var/cache/"* \
    "${r}/var/log/"* "${r}/usr/share/doc" "${r}/usr/share/man" "${r}/usr/share/info" "${r}/usr/share/locale" \
    "${r}/usr/share/i18n" "${r}/usr/share/lintian" "${r}/usr/share/common-licenses" "${r}/usr/share/zoneinfo" \
    "${r}/usr/share/perl5" "${r}/usr/lib/x86_64-linux-gnu/perl-base" "${r}/usr/bin/perl"* \
    "${r}/usr/lib/apt" "${r}/usr/bin/apt"* "${r}/usr/lib/x86_64-linux-gnu/libapt"* \
    "${r}/usr/lib/x86_64-linux-gnu/gconv" "${r}/usr/lib/python3.11/ensurepip" \
    "${r}/usr/lib/python3.11/lib2to3" "${r}/usr/lib/python3.11/pydoc_data" "${r}/usr/lib/python3.11/idlelib" \
    "${r}/usr/lib/python3.11/tkinter" "${r}/usr/lib/python3.11/turtledemo"
  : >"${r}/etc/resolv.conf"
  chmod 1777 "${r}/tmp"
  log "rootfs $(du -sh "${r}" | cut -f1) after $((SECONDS - start))s"
  # The SBOM of exactly this root filesystem, beside the archive; the image's labels name it and its digest.
  local site
  site="$(cd "${r}" && echo opt/venv/lib/python3*/site-packages)"
  "${PYTHON}" "${HACK_DIR}/sbom.py" --rootfs "${r}" --site-packages "/${site}" --name "${OPERATOR_IMAGE}" \
    --version "${APP_VERSION}" --out "${SBOM}"
  local sbom_labels
  mapfile -t sbom_labels < <(sbom_label_args)
  local env=(--env PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
    --env PYTHONDONTWRITEBYTECODE=1 --env PYTHONUNBUFFERED=1 --env HOME=/tmp --env TMPDIR=/tmp --env LANG=C.UTF-8)
  # One archive, one layer, two images: the operator and the Hub stand-in (its entrypoint only differs).
  "${PYTHON}" "${HACK_DIR}/mkimage.py" --rootfs "${r}" --name "${OPERATOR_IMAGE}" --out "${ARCHIVE}" \
    --entrypoint '["hubsettings", "run"]' --user 65532:65532 --workdir /tmp "${env[@]}" \
    --exposed-port 8080/tcp --exposed-port 9090/tcp \
    --label org.opencontainers.image.title=hubsettings-operator \
    --label "org.opencontainers.image.version=${APP_VERSION}" \
    "${sbom_labels[@]}" \
    --also "${HUB_IMAGE}=${HUB_ENTRYPOINT}" >&2
  rm -rf "${work}"
  log "operator image in $((SECONDS - start))s"
}

# Labels that point from the image to its SBOM (CycloneDX JSON beside the archive): file name, format, digest.
sbom_label_args() {
  printf '%s\n' --label "dev.scion.sbom.file=$(basename "${SBOM}")" --label "dev.scion.sbom.format=CycloneDX-1.6+json" \
    --label "dev.scion.sbom.sha256=$(sha256sum "${SBOM}" | cut -d' ' -f1)"
}

build_docker_images() {
  local start=${SECONDS}
  log "docker build -f operator/Dockerfile"
  docker build -f "${REPO}/operator/Dockerfile" --build-arg "VERSION=${APP_VERSION}" -t "${OPERATOR_IMAGE}" \
    "${REPO}" >&2
  # The SBOM of the image's own file system (exported), then labels naming it (metadata only, same layers).
  local cid tmp
  cid="$(docker create "${OPERATOR_IMAGE}")"
  tmp="$(mktemp -d "${IMG_ROOT}/.export.XXXXXX")"
  docker export "${cid}" | tar -x -C "${tmp}" --exclude='dev/*'
  docker rm "${cid}" >/dev/null
  "${PYTHON}" "${HACK_DIR}/sbom.py" --rootfs "${tmp}" \
    --site-packages "/$(cd "${tmp}" && echo opt/venv/lib/python3*/site-packages)" --name "${OPERATOR_IMAGE}" \
    --version "${APP_VERSION}" --out "${SBOM}"
  rm -rf "${tmp}"
  printf 'FROM %s\nLABEL dev.scion.sbom.file="%s" dev.scion.sbom.format="CycloneDX-1.6+json" dev.scion.sbom.sha256="%s"\n' \
    "${OPERATOR_IMAGE}" "$(basename "${SBOM}")" "$(sha256sum "${SBOM}" | cut -d' ' -f1)" |
    docker build -t "${OPERATOR_IMAGE}" - >&2
  printf 'FROM %s\nENTRYPOINT %s\n' "${OPERATOR_IMAGE}" "${HUB_ENTRYPOINT}" | docker build -t "${HUB_IMAGE}" - >&2
  docker save -o "${ARCHIVE}.tmp" "${OPERATOR_IMAGE}" "${HUB_IMAGE}"
  mv -f "${ARCHIVE}.tmp" "${ARCHIVE}"
  log "operator image (docker) in $((SECONDS - start))s"
}

build_operator() {
  local builder="${HUBSETTINGS_IMAGE_BUILDER:-auto}"
  if [[ "${builder}" == auto ]]; then
    builder=rootfs
    if command -v docker >/dev/null && docker info >/dev/null 2>&1; then builder=docker; fi
  fi
  local key
  key="$(hash_inputs pyproject.toml README.md operator/hubsettings_operator operator/Dockerfile \
    hack/build-image.sh hack/mkimage.py hack/slim-venv.sh hack/sbom.py)"
  ARCHIVE="${IMG_ROOT}/hubsettings-images-${builder}-${key}.tar"
  SBOM="${ARCHIVE%.tar}.cdx.json"
  OPERATOR_SBOM="${SBOM}"
  OPERATOR_ARCHIVE="${ARCHIVE}"
  HUB_ARCHIVE="${ARCHIVE}"
  if [[ ! -f "${ARCHIVE}" ]]; then
    case "${builder}" in
      docker) build_docker_images ;;
      rootfs)
        base_rootfs
        build_rootfs_images
        ;;
      *) die "HUBSETTINGS_IMAGE_BUILDER must be auto, docker or rootfs (got ${builder})" ;;
    esac
    # Older builds of the same images are not needed any more.
    find "${IMG_ROOT}" -maxdepth 1 \( -name 'hubsettings-*.tar' -o -name 'hubsettings-*.cdx.json' \) \
      ! -name "*-${key}.*" -delete
  fi
}

build_pause
build_operator
log "operator: ${OPERATOR_IMAGE} $(du -h "${OPERATOR_ARCHIVE}" | cut -f1) ${OPERATOR_ARCHIVE}"
if [[ ${print_paths} -eq 1 ]]; then
  printf 'OPERATOR_IMAGE=%s\nOPERATOR_ARCHIVE=%s\nHUB_IMAGE=%s\nHUB_ARCHIVE=%s\nPAUSE_IMAGE=%s\nPAUSE_ARCHIVE=%s\n' \
    "${OPERATOR_IMAGE}" "${OPERATOR_ARCHIVE}" "${HUB_IMAGE}" "${HUB_ARCHIVE}" "${PAUSE_IMAGE}" "${PAUSE_ARCHIVE}"
  printf 'OPERATOR_SBOM=%s\n' "${OPERATOR_SBOM}"
fi

load_images() {
  local loaded=0 sock="${HUBSETTINGS_NODE_DIR:-/tmp/hubsettings-node}/containerd/containerd.sock" archive
  if [[ -S "${sock}" ]] && ctr -a "${sock}" version >/dev/null 2>&1; then
    ctr -a "${sock}" -n k8s.io images import "${OPERATOR_ARCHIVE}" >&2
    log "loaded into the node tier's containerd (${sock})"
    loaded=1
  fi
  if command -v kind >/dev/null; then
    local cluster
    for cluster in $(kind get clusters 2>/dev/null); do
      kind load image-archive "${OPERATOR_ARCHIVE}" --name "${cluster}" >&2
      log "loaded into kind cluster ${cluster}"
      loaded=1
    done
  fi
  if [[ "${OPERATOR_ARCHIVE}" == *-rootfs-* ]] && command -v docker >/dev/null && docker info >/dev/null 2>&1; then
    docker load -i "${OPERATOR_ARCHIVE}" >&2
    log "loaded into Docker"
    loaded=1
  fi
  if [[ ${loaded} -eq 0 ]]; then
    log "no local runtime found to load into; load or push the archive yourself (see README, Quick start)"
  fi
  printf '%s\n' "${OPERATOR_ARCHIVE}"
}
if [[ ${load} -eq 1 ]]; then
  load_images
fi
