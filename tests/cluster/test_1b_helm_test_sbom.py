"""The chart's `helm test` hook on a real node, and the operator image's SBOM (issue 23).

`helm test` runs after the README quick start (before test_4 uninstalls the release): its Pod, running the
operator image under the restricted Pod Security Standard, asks every operator pod for /healthz and /metrics
through the API server's pod proxy. The SBOM that hack/build-image.sh writes beside the archive must list
exactly the Python distributions the image holds, and the image's labels must name it and its digest.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import tarfile
from pathlib import Path
from typing import Any

from tests.cluster.helpers import OPERATOR_NS, RELEASE, QuickStart, sh, wait_operator_ready
from tests.support.nodeenv import Images, NodeCluster

SITE_PACKAGES = re.compile(r"^opt/venv/lib/python3\.\d+/site-packages/([^/]+)\.dist-info/METADATA$")


def test_helm_test_proves_every_operator_pod_answers(
    node_cluster: NodeCluster, quickstart: QuickStart
) -> None:
    del quickstart
    pods = wait_operator_ready(node_cluster)
    proc = sh(
        node_cluster, ["helm", "test", RELEASE, "--namespace", OPERATOR_NS, "--logs", "--timeout", "5m"]
    )
    assert re.search(r"TEST SUITE:\s+\S+-test\s+Last Started:.*\n.*\n\s*Phase:\s+Succeeded", proc.stdout), (
        proc.stdout
    )
    for pod in pods:
        assert f"{pod['metadata']['name']}: /healthz ok, /metrics ok" in proc.stdout
    # Its ServiceAccount and Role are deleted once it succeeded; the Pod stays (Succeeded) for its log.
    left = node_cluster.kubectl("get", "serviceaccounts,roles,rolebindings", "-n", OPERATOR_NS, "-o", "name")
    assert "-test" not in left.stdout


def _image(archive: Path, ref: str) -> tuple[dict[str, Any], dict[str, str]]:
    """(config of image `ref`, {dist-info name: METADATA text}) read from the OCI archive."""
    with tarfile.open(archive) as tar:

        def blob(digest: str) -> bytes:
            member = tar.extractfile(f"blobs/sha256/{digest.split(':', 1)[1]}")
            assert member is not None
            return member.read()

        index = json.loads(tar.extractfile("index.json").read())  # type: ignore[union-attr]
        [entry] = [m for m in index["manifests"] if m["annotations"]["io.containerd.image.name"] == ref]
        manifest = json.loads(blob(entry["digest"]))
        config = json.loads(blob(manifest["config"]["digest"]))
        [layer] = manifest["layers"]
        metadata: dict[str, str] = {}
        with tarfile.open(fileobj=io.BytesIO(blob(layer["digest"]))) as rootfs:
            for member in rootfs:
                found = SITE_PACKAGES.match(member.name)
                if found:
                    text = rootfs.extractfile(member).read().decode()  # type: ignore[union-attr]
                    metadata[found.group(1)] = text
    return config, metadata


def test_sbom_lists_exactly_the_python_packages_of_the_image_and_the_labels_name_it(
    node_images: Images,
) -> None:
    config, metadata = _image(node_images.operator_archive, node_images.operator)
    held = set()
    for text in metadata.values():
        name = re.search(r"^Name: (.+)$", text, re.M)
        version = re.search(r"^Version: (.+)$", text, re.M)
        assert name and version
        held.add((re.sub(r"[-_.]+", "-", name.group(1)).lower(), version.group(1).strip()))
    assert {"hubsettings-operator", "kopf", "psycopg", "pydantic"} <= {n for n, _ in held}

    sbom_path = node_images.operator_sbom
    assert sbom_path.parent == node_images.operator_archive.parent  # kept beside the archive
    sbom = json.loads(sbom_path.read_text())
    assert sbom["bomFormat"] == "CycloneDX" and sbom["specVersion"] == "1.6"
    assert sbom["metadata"]["component"]["name"] == node_images.operator
    listed = {
        (m.group(1), m.group(2))
        for c in sbom["components"]
        if (m := re.fullmatch(r"pkg:pypi/([^@]+)@(.+)", c.get("purl", "")))
    }
    assert listed == held
    debian = {c["name"] for c in sbom["components"] if c.get("purl", "").startswith("pkg:deb/debian/")}
    assert {"python3.11-minimal", "libc6"} <= debian

    labels = config["config"]["Labels"]
    assert labels["dev.scion.sbom.file"] == sbom_path.name
    assert labels["dev.scion.sbom.format"] == "CycloneDX-1.6+json"
    assert labels["dev.scion.sbom.sha256"] == hashlib.sha256(sbom_path.read_bytes()).hexdigest()
