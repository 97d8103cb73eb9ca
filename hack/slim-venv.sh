#!/bin/sh
# Trims the operator image's venv to what runs, byte-compiled; used by both image builds (operator/Dockerfile's
# builder stage and hack/build-image.sh's chroot), so both images have the same contents.
#   - pip and setuptools: install tools only.
#   - kubernetes/aio: the client's asyncio twin (68 MB); the operator uses kopf's own asyncio client and the
#     synchronous kubernetes client only.
#   - kubernetes/client: generated API and model classes (32 MB of sources): kept as bytecode only, beside where
#     the sources were (tracebacks through it show no source lines; nothing else changes).
#   - type stubs; then everything is compiled with unchecked-hash bytecode, valid whatever the file times (the
#     root filesystem is read-only at run time, so nothing is compiled there).
# Usage: slim-venv.sh VENV
set -eu
venv="$1"
"${venv}/bin/python" -m pip uninstall -q --yes pip setuptools 2>/dev/null || true
site="$("${venv}/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
rm -rf "${site}/kubernetes/aio" "${site}/pip" "${site}/setuptools" "${site}/_distutils_hack" "${site}/distutils-precedence.pth"
find "${site}" -name '*.pyi' -delete
find "${site}" -name __pycache__ -prune -exec rm -rf {} +
"${venv}/bin/python" -m compileall -q -b --invalidation-mode unchecked-hash "${site}/kubernetes/client"
find "${site}/kubernetes/client" -name '*.py' -delete
"${venv}/bin/python" -m compileall -q --invalidation-mode unchecked-hash "${venv}/lib"
