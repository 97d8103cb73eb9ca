#!/usr/bin/env python3
"""CycloneDX SBOM of an image's root filesystem: its Python distributions and its Debian packages.

Called by hack/build-image.sh on the finished root filesystem (the rootfs builder) or on an exported
container (the docker builder), before the archive is packed: what the image holds, not what the build used.
Read from the files only, never by running the image's interpreter on the host:

- Python: every distribution (`*.dist-info`) of the image's venv site-packages, as `pkg:pypi` components with
  their license expression when the metadata gives one;
- Debian: every installed package of `var/lib/dpkg/status` with at least one of its files left in the image (the
  build removes apt, perl and the docs), as `pkg:deb/debian` components.

The document is built and serialised by cyclonedx-python-lib (the CycloneDX project's library, from PyPI), as
CycloneDX 1.6 JSON, reproducible (no timestamp, no random serial number), so the same image gives the same file.

Usage: sbom.py --rootfs DIR --site-packages PATH_IN_ROOTFS --name NAME --version VERSION --out FILE
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator
from importlib.metadata import Distribution, distributions
from pathlib import Path

from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.model.license import LicenseExpression
from cyclonedx.output.json import JsonV1Dot6
from packageurl import PackageURL


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def python_components(site_packages: Path) -> Iterator[Component]:
    seen: set[str] = set()
    found: list[Distribution] = list(distributions(path=[str(site_packages)]))
    for dist in sorted(found, key=lambda d: _normalize(d.metadata["Name"])):
        name, version = dist.metadata["Name"], dist.version
        key = _normalize(name)
        if key in seen:
            continue
        seen.add(key)
        expression = dist.metadata.get("License-Expression")
        yield Component(
            type=ComponentType.LIBRARY,
            name=name,
            version=version,
            purl=PackageURL("pypi", name=key, version=version),
            bom_ref=f"pypi:{key}@{version}",
            licenses=[LicenseExpression(expression)] if expression else None,
        )


def _still_present(rootfs: Path, name: str, arch: str) -> bool:
    """Whether any file of the package is left in the image (the build trims apt, perl, docs...): a package
    whose every file is gone is not something the image holds, whatever dpkg's status still says."""
    info = rootfs / "var" / "lib" / "dpkg" / "info"
    for listing in (info / f"{name}.list", info / f"{name}:{arch}.list"):
        if listing.is_file():
            paths = [
                line for line in listing.read_text(encoding="utf-8").splitlines() if line not in ("", "/.")
            ]
            return (
                any(
                    (rootfs / p.lstrip("/")).is_file() or (rootfs / p.lstrip("/")).is_symlink() for p in paths
                )
                or not paths
            )
    return True  # no file list to check against: keep it


def debian_components(rootfs: Path) -> Iterator[Component]:
    status = rootfs / "var" / "lib" / "dpkg" / "status"
    if not status.is_file():
        return
    for block in status.read_text(encoding="utf-8").split("\n\n"):
        fields = dict(re.findall(r"^([A-Za-z-]+): (.*)$", block, re.M))
        if "Package" not in fields or "install ok installed" not in fields.get("Status", ""):
            continue
        name, version, arch = fields["Package"], fields.get("Version", ""), fields.get("Architecture", "")
        if not _still_present(rootfs, name, arch):
            continue
        yield Component(
            type=ComponentType.LIBRARY if name.startswith("lib") else ComponentType.APPLICATION,
            name=name,
            version=version,
            purl=PackageURL("deb", namespace="debian", name=name, version=version, qualifiers={"arch": arch}),
            bom_ref=f"deb:{name}@{version}",
        )


def build(rootfs: Path, site_packages: str, name: str, version: str) -> Bom:
    bom = Bom()
    image = Component(
        type=ComponentType.CONTAINER, name=name, version=version, bom_ref=f"image:{name}@{version}"
    )
    bom.metadata.component = image
    bom.metadata.timestamp = None  # type: ignore[assignment]  # reproducible: no build time
    bom.serial_number = None  # type: ignore[assignment]
    held = [
        *python_components(rootfs / site_packages.lstrip("/")),
        *debian_components(rootfs),
    ]
    for component in held:
        bom.components.add(component)
    bom.register_dependency(image, held)  # the image holds each of them
    return bom


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rootfs", type=Path, required=True)
    parser.add_argument(
        "--site-packages", required=True, help="Path of the venv's site-packages in the image."
    )
    parser.add_argument("--name", required=True)
    parser.add_argument("--version", required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    bom = build(args.rootfs, args.site_packages, args.name, args.version)
    if not any(c.purl is not None and c.purl.type == "pypi" for c in bom.components):
        raise SystemExit(f"no Python distribution under {args.rootfs}{args.site_packages}: wrong path?")
    args.out.write_text(JsonV1Dot6(bom).output_as_string(indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
