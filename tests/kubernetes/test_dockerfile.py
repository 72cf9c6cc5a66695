"""The EPP image definition: slim base, non-root user matching the chart, the right ports."""

from __future__ import annotations

import re

import yaml

from .schemas import REPO

DOCKERFILE = (REPO / "deploy" / "Dockerfile").read_text()
VALUES = yaml.safe_load((REPO / "deploy" / "charts" / "inference-gateway" / "values.yaml").read_text())


def instructions(name: str) -> list[str]:
    joined = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    return [line.split(None, 1)[1] for line in joined.splitlines() if line.upper().startswith(name + " ")]


def test_runs_as_the_chart_user_on_a_slim_base() -> None:
    assert instructions("USER")[-1] == "65532:65532"  # the chart's runAsUser/runAsGroup
    assert all("slim" in arg for arg in instructions("ARG") if arg.startswith("PYTHON_IMAGE"))
    assert len(instructions("FROM")) == 2, "multi-stage: no build tools in the final image"


def test_exposes_the_chart_ports_and_runs_the_cli() -> None:
    ports = {int(p) for arg in instructions("EXPOSE") for p in arg.split()}
    assert ports == set(VALUES["epp"]["ports"].values())
    assert instructions("ENTRYPOINT") == ['["inference-gateway"]']


def test_build_context_is_allow_listed() -> None:
    ignore = (REPO / "deploy" / "Dockerfile.dockerignore").read_text().split()
    assert ignore[ignore.index("*") :][:1] == ["*"]
    copied = {arg.split()[0] for arg in instructions("COPY") if not arg.startswith("--from")}
    assert copied <= {"pyproject.toml", "src"} | {"README.md"}
    assert {f"!{c}" if c != "src" else "!src/" for c in copied} <= set(ignore)


def test_installs_only_the_epp() -> None:
    build = " ".join(instructions("RUN"))
    installs = re.findall(r"pip install (\S+)", build)
    assert installs == ["."], "no extras ([sim], [bench], [dev]) in the image"
    assert re.search(r'rm -rf "\$pkg/simulator" "\$pkg/bench"', build), "lab packages removed"
    # The removal is checked in the build itself: the EPP and its CLI still import without them.
    assert "python -c 'import inference_gateway.epp, inference_gateway.cli'" in build
    assert build.index('rm -rf "$pkg/simulator"') < build.index("import inference_gateway.epp")
