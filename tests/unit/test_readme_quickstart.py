"""The README's quick start is what tests/cluster runs word for word: check that the text stays runnable there
(the only cluster-specific values are the locally built image and `imagePullPolicy: Never`)."""

from __future__ import annotations

from tests.cluster.helpers import PLACEHOLDER_DSN, README, quickstart_commands
from tests.support.kubeenv import REPO_ROOT


def _sets(argv: list[str]) -> dict[str, str]:
    values = [argv[i + 1] for i, a in enumerate(argv) if a == "--set"]
    return dict(v.split("=", 1) for v in values)


def test_quickstart_builds_the_image_then_installs_it() -> None:
    commands = quickstart_commands(README.read_text())
    assert commands[0] == ["make", "image"]
    (install,) = [c for c in commands if c[:2] == ["helm", "install"]]
    assert install[2:4] == ["hubsettings-operator", "./helm/hubsettings-operator"]
    # Values only: the watched namespace, plus the image `make image` builds and loads; nothing tier-specific.
    assert _sets(install) == {
        "watch.namespaces": "{scion}",
        "image.repository": "localhost/hubsettings-operator",
        "image.pullPolicy": "Never",
    }
    assert not any(a.startswith(("--post-renderer", "-f", "--values", "--set-string")) for a in install)
    build = (REPO_ROOT / "hack" / "build-image.sh").read_text()
    assert 'OPERATOR_IMAGE="localhost/hubsettings-operator:${APP_VERSION}"' in build


def test_quickstart_steps_in_order() -> None:
    commands = [" ".join(c) for c in quickstart_commands(README.read_text())]
    order = [
        "make image",
        "kubectl label namespace hubsettings-system pod-security.kubernetes.io/enforce=restricted",
        "helm install",
        "kubectl -n hubsettings-system rollout status deployment/hubsettings-operator",
        f"kubectl -n scion create secret generic hub-db --from-literal=url={PLACEHOLDER_DSN}",
        "kubectl apply -f examples/minimal.yaml",
        "kubectl -n scion get hs",
    ]
    positions = [next(i for i, c in enumerate(commands) if c.startswith(step)) for step in order]
    assert positions == sorted(positions)


def test_parser_joins_continuations_and_drops_comments() -> None:
    text = "x\n## Quick start\n\n```sh\n# comment\na b \\\n  --c 'd e'   # trailing\n\nf\n```\n"
    assert quickstart_commands(text) == [["a", "b", "--c", "d e"], ["f"]]
