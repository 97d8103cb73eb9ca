# Shared by hack/install-helm.sh and hack/install-kubectl.sh (sourced, not run): the argument handling, the
# "a working binary on PATH" rule, the build lock and the atomic placement in the cache, written once.
# The caller sets CACHE and defines log() before sourcing it.

# install_args BIN "$@": --path-only prints BIN and exits; no argument or --print-path goes on; else usage.
install_args() {
  local bin="$1"
  shift
  case "${1:-}" in
    "" | --print-path) ;;
    --path-only)
      printf '%s\n' "${bin}"
      exit 0
      ;;
    *)
      echo "usage: $0 [--print-path|--path-only]" >&2
      exit 2
      ;;
  esac
}

# use_from_path NAME ALLOWED CHECK: when ALLOWED is not 0 and `NAME` on PATH passes `CHECK PATH` (a function
# that may log why not), print its path and exit.
use_from_path() {
  local name="$1" allowed="$2" check="$3" found
  [[ "${allowed}" != 0 ]] || return 0
  found="$(command -v "${name}" || true)"
  if [[ -n "${found}" ]] && "${check}" "${found}"; then
    printf '%s\n' "${found}"
    exit 0
  fi
}

# build_lock NAME: one build at a time (e.g. `make helm-bin` and a pytest session); a second run waits.
build_lock() {
  exec 9>"${CACHE}/.install-$1.lock"
  if ! flock -n 9; then
    log "another build is running; waiting for it"
    flock 9
  fi
}

# place_binary SRC DEST: copy beside DEST and rename into place, so an interrupted run never leaves a
# half-written binary that later looks cached.
place_binary() {
  local src="$1" dest="$2" tmp
  mkdir -p "$(dirname "${dest}")"
  tmp="$(mktemp "$(dirname "${dest}")/.tmp.XXXXXX")"
  cp "${src}" "${tmp}"
  chmod 0755 "${tmp}"
  mv -f "${tmp}" "${dest}"
}
