"""Product vs lab: the EPP loads no simulator/bench code, and lab commands name their missing extra.

Each check runs the real CLI in a subprocess with a `sitecustomize` shim on PYTHONPATH that can
make modules unimportable (as if the extra were not installed) and record what was loaded.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

CLI = Path(sys.executable).parent / "inference-gateway"
LAB_MODULES = ("inference_gateway.simulator", "inference_gateway.bench", "numpy", "matplotlib")

SHIM = """
import atexit, os, sys

BLOCKED = set(filter(None, os.environ.get("SHIM_BLOCK", "").split(",")))


class _Blocker:
    def find_spec(self, name, path=None, target=None):
        if any(name == b or name.startswith(b + ".") for b in BLOCKED):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, _Blocker())
if os.environ.get("SHIM_DUMP"):
    atexit.register(lambda: open(os.environ["SHIM_DUMP"], "w").write("\\n".join(sorted(sys.modules))))
"""


@pytest.fixture
def shim(tmp_path: Path) -> Path:
    (tmp_path / "sitecustomize.py").write_text(SHIM)
    return tmp_path


def run(
    shim: Path, argv: list[str], block: str = "", dump: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "COLUMNS": "200",
        "PYTHONPATH": str(shim),
        "SHIM_BLOCK": block,
        "SHIM_DUMP": str(dump or ""),
    }
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)


def lab_modules_loaded(dump: Path) -> list[str]:
    loaded = dump.read_text().split()
    return [m for m in loaded if any(m == lab or m.startswith(lab + ".") for lab in LAB_MODULES)]


def test_importing_the_epp_loads_no_lab_module(shim: Path, tmp_path: Path) -> None:
    dump = tmp_path / "modules.txt"
    result = run(shim, [sys.executable, "-c", "import inference_gateway.epp"], dump=dump)
    assert result.returncode == 0, result.stderr
    assert "inference_gateway.epp" in dump.read_text().split()
    assert lab_modules_loaded(dump) == []


def test_epp_help_loads_no_lab_module(shim: Path, tmp_path: Path) -> None:
    dump = tmp_path / "modules.txt"
    result = run(shim, [str(CLI), "epp", "--help"], dump=dump)
    assert result.returncode == 0, result.stderr
    assert "--grpc-port" in result.stdout + result.stderr
    assert lab_modules_loaded(dump) == []


@pytest.mark.parametrize(
    ("argv", "block", "extra"),
    [
        (["bench", "run", "--config", "bench/seed.yaml"], "numpy", "bench"),
        (["bench", "load", "--url", "http://127.0.0.1:1/v1"], "matplotlib", "bench"),
        (["simulate", "--port", "0"], "inference_gateway.simulator", "sim"),
        (["up"], "inference_gateway.simulator", "sim"),
    ],
    ids=["bench-run", "bench-load", "simulate", "up"],
)
def test_lab_command_without_its_extra_is_one_line_naming_it(
    shim: Path, argv: list[str], block: str, extra: str
) -> None:
    result = run(shim, [str(CLI), *argv], block=block)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"pip install 'inference-gateway[{extra}]'" in lines[0]
    assert "Traceback" not in result.stderr


def test_root_help_lists_lab_commands_with_the_extra_they_need(shim: Path) -> None:
    result = run(shim, [str(CLI), "--help"], block="numpy")
    assert result.returncode == 0, result.stderr
    assert "bench" in result.stdout
    bench_line = next(line for line in result.stdout.splitlines() if "│ bench" in line)
    assert "pip install 'inference-gateway[bench]'" in bench_line


def test_epp_runs_with_the_lab_packages_removed(shim: Path) -> None:
    """What the image does (deploy/Dockerfile deletes simulator/ and bench/): the EPP still starts."""
    lab = "inference_gateway.simulator,inference_gateway.bench"
    imported = run(
        shim, [sys.executable, "-c", "import inference_gateway.epp, inference_gateway.cli"], block=lab
    )
    assert imported.returncode == 0, imported.stderr
    helped = run(shim, [str(CLI), "epp", "--help"], block=lab)
    assert helped.returncode == 0, helped.stderr
    assert "--grpc-port" in helped.stdout + helped.stderr
