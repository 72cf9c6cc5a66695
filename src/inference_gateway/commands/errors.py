"""User mistakes as one line (what, where, what to do); tracebacks only with `--debug`."""

from __future__ import annotations

import errno
import socket
from collections.abc import Mapping


class UsageError(Exception):
    """A mistake the user can fix; its message says what, where and what to do."""


def ensure_ports_free(host: str, ports: Mapping[str, int]) -> None:
    """Fail before starting anything if a port we are about to listen on is taken.

    `ports` maps the flag that sets each port to its value (0 = any free port, not checked)."""
    for flag, port in ports.items():
        if port == 0:
            continue
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    raise UsageError(f"cannot listen on {host}:{port} ({flag}): {exc.strerror}") from None
                raise UsageError(
                    f"port {port} ({flag}) is already in use on {host}: stop the process using it "
                    f"(another `inference-gateway up`?) or choose another port with {flag}"
                ) from None


def one_line(exc: BaseException) -> str:
    """The message a user sees for an error that escaped a command."""
    text = str(exc).strip() or type(exc).__name__
    if isinstance(exc, FileNotFoundError) and exc.filename:
        return f"{exc.filename}: no such file or directory"
    if isinstance(exc, PermissionError) and exc.filename:
        return f"{exc.filename}: permission denied"
    if type(exc).__name__ == "ConfigException":  # kubernetes.config: no kubeconfig, not in a cluster
        return (
            f"cannot reach Kubernetes: {text}; pass --kubeconfig PATH, run inside a cluster, "
            "or use --resources DIR to read YAML files instead"
        )
    return text
