"""`epp --workers N` and `--event-loop`: what each worker is told, and the flags' effects."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from inference_gateway.commands.epp import EPPCommand, _prefix_sync_options
from inference_gateway.commands.epp_flags import parse
from inference_gateway.commands.workers import WorkerSlot, WorkerSupervisor, plan_slots, worker_command
from inference_gateway.local.event_loop import loop_runner


def command(*args: str) -> EPPCommand:
    return parse(["--resources", "/tmp/none", *args], {}).command


def test_defaults_are_one_worker_on_the_best_loop_available() -> None:
    cmd = command()
    assert (cmd.workers, cmd.event_loop) == (1, "auto")
    assert cmd.options().reuse_port is False  # a taken port stays an error
    assert _prefix_sync_options(cmd) is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--workers", "0"], "--workers must be at least 1, not 0"),
        (["--event-loop", "trio"], "--event-loop must be one of auto, asyncio, uvloop, not 'trio'"),
    ],
)
def test_bad_values_are_one_line_errors(args: list[str], message: str) -> None:
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(") + "$"):
        command(*args).validate()


@pytest.mark.parametrize(
    ("kind", "module"), [("asyncio", "asyncio"), ("uvloop", "uvloop"), ("auto", "uvloop")]
)
def test_event_loop_flag_picks_the_loop(kind: str, module: str) -> None:
    async def loop_module() -> str:
        return type(asyncio.get_running_loop()).__module__

    assert command("--event-loop", kind).event_loop == kind
    assert loop_runner(kind)(loop_module()).split(".")[0] == module


def test_each_worker_shares_the_ports_and_gossips_with_its_siblings() -> None:
    cmd = command("--workers", "3", "--grpc-port", "0", "--metrics-port", "9190", "--host", "0.0.0.0")
    slots = plan_slots(cmd)
    assert len({s.grpc_port for s in slots}) == 1 and slots[0].grpc_port > 0
    workers = [worker_command(cmd, WorkerSlot.from_env(s.to_env()) or s) for s in slots]
    assert [w.metrics_port for w in workers] == [9190, 9191, 9192]
    assert all(w.options().reuse_port for w in workers)
    syncs = [_prefix_sync_options(w) for w in workers]
    assert all(s is not None for s in syncs)
    ports = [s.port for s in syncs if s is not None]
    assert sorted(ports) == sorted(slots[0].sync_ports)
    for own, sync in zip(ports, syncs, strict=True):
        assert sync is not None
        assert sorted(sync.peers) == sorted(f"127.0.0.1:{p}" for p in ports if p != own)
    assert len({s.replica_id for s in syncs if s is not None}) == 3


def test_replica_gossip_port_and_peers_are_kept_beside_the_siblings() -> None:
    cmd = command("--workers", "2", "--prefix-sync-port", "9500", "--prefix-sync-peer", "10.0.0.9:9500")
    workers = [worker_command(cmd, s) for s in plan_slots(cmd)]
    assert [w.prefix_sync_port for w in workers] == [9500, 9501]
    assert workers[1].prefix_sync_peers == ("10.0.0.9:9500", "127.0.0.1:9500")


async def test_a_worker_that_cannot_start_stops_the_supervisor(tmp_path: Path) -> None:
    """A worker exiting right after each start (here: its resources folder does not exist) is
    not started forever: the supervisor gives up and returns an error."""
    cmd = command("--workers", "2")
    argv = ["--resources", str(tmp_path / "missing"), "--secure-serving=false", "--metrics-port", "0"]
    argv += ["--grpc-health-port", "0", "--metrics-endpoint-auth=false"]
    supervisor = WorkerSupervisor(
        argv, plan_slots(cmd), restart_delay_s=0.05, max_early_exits=2, early_exit_s=600
    )
    assert await asyncio.wait_for(supervisor.run(), 60) == 1
    assert supervisor.restarts >= 1
    assert all(p.returncode is not None for p in supervisor.procs.values())


def test_protobuf_runs_on_the_upb_backend() -> None:
    """Every ext_proc message is parsed and built by protobuf: the C (upb) backend, not the
    pure-Python one, which is several times slower per message (protobuf >= 4.21 picks upb)."""
    from google.protobuf.internal import api_implementation

    assert api_implementation.Type() == "upb"
