"""hack/sbom.py on a small root filesystem made here: the Python distributions and the Debian packages the
image holds, nothing it does not (a package whose files the build trimmed), reproducible output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SITE = "opt/venv/lib/python3.11/site-packages"


def make_rootfs(root: Path) -> None:
    for name, version, extra in (
        ("kopf", "1.45.2", ""),
        ("psycopg_binary", "3.2.9", "License-Expression: LGPL-3.0-only\n"),
    ):
        info = root / SITE / f"{name}-{version}.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.4\nName: {name}\nVersion: {version}\n{extra}")
    dpkg = root / "var/lib/dpkg"
    (dpkg / "info").mkdir(parents=True)
    (root / "usr/bin").mkdir(parents=True)
    (root / "usr/bin/python3.11").write_text("")
    (dpkg / "info/python3.11-minimal.list").write_text("/.\n/usr\n/usr/bin\n/usr/bin/python3.11\n")
    (dpkg / "info/apt.list").write_text("/.\n/usr\n/usr/bin\n/usr/bin/apt\n")  # trimmed: file gone
    (dpkg / "status").write_text(
        "Package: python3.11-minimal\nStatus: install ok installed\nVersion: 3.11.2-6\nArchitecture: amd64\n\n"
        "Package: apt\nStatus: install ok installed\nVersion: 2.6.1\nArchitecture: amd64\n\n"
        "Package: gone\nStatus: deinstall ok config-files\nVersion: 1\nArchitecture: amd64\n"
    )


def run(root: Path, out: Path) -> dict[str, object]:
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "hack/sbom.py"),
            "--rootfs",
            str(root),
            "--site-packages",
            f"/{SITE}",
            "--name",
            "localhost/hubsettings-operator:0.1.0",
            "--version",
            "0.1.0",
            "--out",
            str(out),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    data: dict[str, object] = json.loads(out.read_text())
    return data


def test_sbom_lists_what_the_rootfs_holds_and_is_reproducible(tmp_path: Path) -> None:
    root = tmp_path / "rootfs"
    make_rootfs(root)
    first = run(root, tmp_path / "a.json")
    assert first["bomFormat"] == "CycloneDX" and first["specVersion"] == "1.6"
    purls = sorted(c["purl"] for c in first["components"])  # type: ignore[attr-defined]
    assert purls == [
        "pkg:deb/debian/python3.11-minimal@3.11.2-6?arch=amd64",
        "pkg:pypi/kopf@1.45.2",
        "pkg:pypi/psycopg-binary@3.2.9",
    ]
    licensed = [c for c in first["components"] if c["name"] == "psycopg_binary"]  # type: ignore[attr-defined]
    assert licensed[0]["licenses"] == [{"expression": "LGPL-3.0-only"}]
    run(root, tmp_path / "b.json")
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()  # reproducible
    assert "serialNumber" not in first and "timestamp" not in first["metadata"]  # type: ignore[operator]


def test_sbom_refuses_a_rootfs_without_python_distributions(tmp_path: Path) -> None:
    (tmp_path / "rootfs").mkdir()
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "hack/sbom.py"),
            "--rootfs",
            str(tmp_path / "rootfs"),
            "--site-packages",
            f"/{SITE}",
            "--name",
            "x",
            "--version",
            "0",
            "--out",
            str(tmp_path / "x.json"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode != 0 and "no Python distribution" in proc.stderr
