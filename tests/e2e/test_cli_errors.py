"""User mistakes get one line saying what, where and what to do, and exit status 2; `--debug`
shows the traceback. Nothing is started when the mistake can be found first."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

from inference_gateway import __version__
from inference_gateway.cli import main
from inference_gateway.local.stack import free_port
from tests.conftest import make_config_dir


def run_main(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["inference-gateway", *args])
    monkeypatch.setenv("COLUMNS", "300")
    with pytest.raises(SystemExit) as exit_info:
        main()
    captured = capsys.readouterr()
    return int(exit_info.value.code or 0), captured.out + captured.err


def workdirs() -> set[Path]:
    return set(Path("/tmp").glob("inference-gateway-*"))


def test_up_with_a_port_in_use_names_the_port_and_flag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = make_config_dir(tmp_path)
    before = workdirs()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        args = ["up", "--config", str(config), "--epp-port", str(free_port()), "--health-port", "0"]
        code, out = run_main(
            monkeypatch, capsys, *args, "--port", str(free_port()), "--metrics-port", str(port)
        )
    assert code == 2
    assert f"port {port} (--metrics-port) is already in use" in out and "Traceback" not in out
    assert len(out.strip().splitlines()) == 2  # the error and the --debug hint
    assert workdirs() == before


def test_up_with_an_unknown_plugin_fails_before_starting_pods(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = make_config_dir(tmp_path)
    bad = tmp_path / "epp.yaml"
    bad.write_text(
        "apiVersion: inference.networking.x-k8s.io/v1alpha1\nkind: EndpointPickerConfig\n"
        "plugins:\n- type: no-such-scorer\n"
    )
    code, out = run_main(monkeypatch, capsys, "up", "--config", str(config), "--epp-config", str(bad))
    assert code == 2 and "no-such-scorer" in out and str(bad) in out and "Traceback" not in out


def test_missing_files_are_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run_main(monkeypatch, capsys, "up", "--config", str(tmp_path / "nope"))
    assert code == 2 and "nope: no such directory (--config)" in out
    code, out = run_main(
        monkeypatch,
        capsys,
        "bench",
        "load",
        "--url",
        "http://127.0.0.1:1/v1",
        "--dataset",
        str(tmp_path / "x.json"),
    )
    assert code == 2 and "x.json" in out and "Traceback" not in out


def test_epp_without_kubernetes_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "none"))
    monkeypatch.setenv("HOME", str(tmp_path))
    args = ["epp", "--pool-name", "p", "--grpc-port", "0", "--grpc-health-port", "0", "--metrics-port", "0"]
    code, out = run_main(monkeypatch, capsys, *args)
    assert code == 2 and "cannot reach Kubernetes" in out and "--kubeconfig" in out and "Traceback" not in out


def test_debug_shows_the_traceback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        sys, "argv", ["inference-gateway", "--debug", "up", "--config", str(tmp_path / "nope")]
    )
    with pytest.raises(Exception, match="no such directory"):
        main()


def test_version(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run_main(monkeypatch, capsys, "--version")
    assert code == 0 and out.strip() == f"inference-gateway {__version__}"
