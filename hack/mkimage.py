"""Pack a root filesystem directory into a one-layer OCI image archive, without a daemon or a registry.

The archive holds an OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/...`) and Docker's
`manifest.json`, so the same file is accepted by `ctr -n k8s.io images import`, `kind load image-archive`,
`docker load` and `podman load`. hack/build-image.sh builds the root filesystem; this only packs it.

Usage::

    python hack/mkimage.py --rootfs DIR --name REF --out FILE.tar [--entrypoint JSON] [--cmd JSON]
        [--env K=V]... [--user UID:GID] [--workdir DIR] [--label K=V]... [--exposed-port 8080/tcp]...
        [--also REF=ENTRYPOINT_JSON]...

`--also` adds another image to the same archive that shares the layer (stored and imported once) and the
configuration, except for its entrypoint and title label (the Hub stand-in next to the operator).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import tarfile
import tempfile
from pathlib import Path
from typing import IO, Any

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
EPOCH = "1970-01-01T00:00:00Z"


def _digest_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def write_layer(rootfs: Path, out: IO[bytes]) -> None:
    """Every entry under `rootfs` with relative names, in sorted order, numeric owners only.

    Sorted order and empty owner names keep the layer identical for identical trees; hard links are kept as
    links so a file is stored once.
    """
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for dirpath, dirnames, filenames in os.walk(rootfs):
            dirnames.sort()
            for name in [*dirnames, *sorted(filenames)]:
                full = os.path.join(dirpath, name)
                info = tar.gettarinfo(full, arcname=os.path.relpath(full, rootfs))
                info.uname = info.gname = ""
                if info.isreg():
                    with open(full, "rb") as f:
                        tar.addfile(info, f)
                else:
                    tar.addfile(info)


def image_config(args: argparse.Namespace, diff_id: str) -> dict[str, Any]:
    config: dict[str, Any] = {
        "Env": args.env or ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
        "WorkingDir": args.workdir,
    }
    if args.label:
        config["Labels"] = dict(kv.split("=", 1) for kv in args.label)
    if args.entrypoint:
        config["Entrypoint"] = json.loads(args.entrypoint)
    if args.cmd:
        config["Cmd"] = json.loads(args.cmd)
    if args.user:
        config["User"] = args.user
    if args.exposed_port:
        config["ExposedPorts"] = {port: {} for port in args.exposed_port}
    return {
        "architecture": "amd64",
        "os": "linux",
        "created": EPOCH,
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": EPOCH, "created_by": "hack/mkimage.py"}],
    }


def write_archive(out: Path, images: list[tuple[str, bytes]], layer: Path, layer_digest: str) -> None:
    """One archive, one layer blob, an image (config + manifest) per (name, config) pair."""
    blob = "blobs/sha256/"
    index: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [],
    }
    docker_manifest: list[dict[str, Any]] = []
    blobs: list[bytes] = []
    for name, config in images:
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": _digest(config), "size": len(config)},
                "layers": [{"mediaType": OCI_LAYER, "digest": layer_digest, "size": layer.stat().st_size}],
            },
            sort_keys=True,
        ).encode()
        tag = name.rsplit(":", 1)[1] if ":" in name.rsplit("/", 1)[-1] else "latest"
        index["manifests"].append(
            {
                "mediaType": OCI_MANIFEST,
                "digest": _digest(manifest),
                "size": len(manifest),
                "annotations": {"io.containerd.image.name": name, "org.opencontainers.image.ref.name": tag},
            }
        )
        docker_manifest.append(
            {"Config": blob + _digest(config)[7:], "RepoTags": [name], "Layers": [blob + layer_digest[7:]]}
        )
        blobs += [config, manifest]
    tmp = out.with_name(out.name + ".tmp")
    with tarfile.open(tmp, "w") as tar:

        def add(member: str, data: bytes) -> None:
            info = tarfile.TarInfo(member)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))

        add("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        add("index.json", json.dumps(index).encode())
        add("manifest.json", json.dumps(docker_manifest).encode())
        for data in blobs:
            add(blob + _digest(data)[7:], data)
        tar.add(layer, arcname=blob + layer_digest[7:])
    tmp.replace(out)  # a killed run never leaves a half-written archive that later looks cached


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rootfs", type=Path, required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--entrypoint")
    p.add_argument("--cmd")
    p.add_argument("--env", action="append", default=[])
    p.add_argument("--user", default="")
    p.add_argument("--workdir", default="/")
    p.add_argument("--label", action="append", default=[])
    p.add_argument("--exposed-port", action="append", default=[])
    p.add_argument("--also", action="append", default=[], metavar="REF=ENTRYPOINT_JSON")
    args = p.parse_args(argv)

    with tempfile.TemporaryDirectory(dir=args.out.parent) as tmp:
        layer = Path(tmp) / "layer.tar"
        with layer.open("wb") as f:
            write_layer(args.rootfs, f)
        # Uncompressed layer: digest and diff_id are the same; import is faster and the archive stays local.
        digest = _digest_file(layer)
        images = [(args.name, image_config(args, digest))]
        for extra in args.also:
            name, _, entrypoint = extra.partition("=")
            config = image_config(args, digest)
            config["config"]["Entrypoint"] = json.loads(entrypoint)
            title = name.rsplit("/", 1)[-1].split(":")[0]
            config["config"].setdefault("Labels", {})["org.opencontainers.image.title"] = title
            images.append((name, config))
        write_archive(
            args.out, [(n, json.dumps(c, sort_keys=True).encode()) for n, c in images], layer, digest
        )
        size = layer.stat().st_size
    print(f"{', '.join(n for n, _ in images)}: one layer, {size / 1e6:.1f} MB -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
