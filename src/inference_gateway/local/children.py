"""Child processes (Envoy, simulated pods) that cannot outlive the gateway process.

The gateway process runs gRPC threads, so it must not fork(): gRPC's fork handlers then run
with other threads inside gRPC ("skipping fork() handlers") and a child can abort before it
execs (seen as a simulator exiting with -6). A `preexec_fn` forces fork(); without one CPython
spawns with vfork(), which runs no fork handlers. The parent-death signal is therefore set by
a tiny launcher that then execs the real program (the signal survives exec)."""

from __future__ import annotations

import os
import sys

_LAUNCHER = (
    "import ctypes,os,signal,sys\n"
    "if sys.platform.startswith('linux'):\n"
    "    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)\n"  # PR_SET_PDEATHSIG
    "if os.getppid() != int(sys.argv[1]):\n"
    "    sys.exit(1)\n"  # the parent died before the signal was armed
    "os.execv(sys.argv[2], sys.argv[2:])\n"
)


def dies_with_parent(argv: list[str]) -> list[str]:
    """`argv` wrapped so that Linux SIGTERMs the program when this process dies, even by SIGKILL."""
    return [sys.executable, "-I", "-S", "-c", _LAUNCHER, str(os.getpid()), *argv]
