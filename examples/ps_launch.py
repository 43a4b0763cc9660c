"""Starts an MXNet parameter-server job (scheduler, servers, workers) on the loopback interface,
and stops it by itself: when any role dies, or when the whole job outlives its timeout.

Why not the wheel's launcher (``mxnet/tools/launch.py --launcher local``, i.e. ``dmlc_tracker``):
in mxnet 1.9.1 it calls ``Thread.isAlive()``, which Python 3.9 removed, so it fails with an
``AttributeError`` before starting any worker; it never uses a 127.* address for the scheduler
(``get_host_ip`` replaces one by the machine's outward address); and it runs each role in a
daemon thread whose failure is an exception in that thread, while its main thread waits on the
scheduler, which ps-lite keeps waiting for the dead peer: a dead worker makes it hang. This
module sets the same environment it would (``DMLC_ROLE``, ``DMLC_PS_ROOT_URI``,
``DMLC_PS_ROOT_PORT``, ``DMLC_NUM_WORKER``, ``DMLC_NUM_SERVER``), plus ``DMLC_NODE_HOST`` so
that every node binds 127.0.0.1, and watches each process itself.

Pure Python with no MXNet import, so the launching process has no engine threads when it forks.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

LOOPBACK = "127.0.0.1"
_PR_SET_PDEATHSIG = 1


def free_loopback_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:
    # Runs in the child between fork and exec. If the launcher itself is killed (say by a
    # test's timeout) its children must not live on, blocked forever on a dead peer.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def describe_exit(code: int) -> str:
    """'exited with 3' or 'was killed by SIGKILL', from a Popen return code."""
    if code < 0:
        return f"was killed by {signal.Signals(-code).name}"
    return f"exited with {code}"


@dataclass
class JobOutcome:
    """How a job ended."""

    ok: bool
    elapsed_s: float
    failure: str | None  # which role died and how, or the timeout and who was still running
    exit_codes: dict[str, int]  # by role name; -9 for those the launcher killed
    logs: dict[str, Path] = field(default_factory=dict)


class LoopbackJob:
    """A scheduler, ``num_servers`` servers and ``num_workers`` workers on this machine.

    Servers and the scheduler run ``import mxnet``, which serves the kvstore when
    ``DMLC_ROLE`` says so; workers run ``worker_command``. Each process is its own process
    group, killed as a group; its output goes to ``<log_dir>/<role>.log``.
    """

    def __init__(self, worker_command: list[str], num_workers: int, num_servers: int,
                 log_dir: Path, env: dict[str, str] | None = None) -> None:
        self.worker_command = worker_command
        self.num_workers, self.num_servers = num_workers, num_servers
        self.log_dir = log_dir
        self.env = dict(env or {})
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.logs: dict[str, Path] = {}
        self.started = 0.0  # time.monotonic() at start()

    def start(self) -> None:
        """Start every role (scheduler first), returning at once."""
        self.started = time.monotonic()
        base = dict(os.environ)
        base.update(self.env)
        base.update({
            "DMLC_PS_ROOT_URI": LOOPBACK,
            "DMLC_PS_ROOT_PORT": str(free_loopback_port()),
            "DMLC_NODE_HOST": LOOPBACK,
            "DMLC_NUM_WORKER": str(self.num_workers),
            "DMLC_NUM_SERVER": str(self.num_servers),
        })
        serve = [sys.executable, "-c", "import mxnet"]
        roles = [("scheduler", "scheduler", serve)]
        roles += [(f"server {i}", "server", serve) for i in range(self.num_servers)]
        roles += [(f"worker {i}", "worker", self.worker_command) for i in range(self.num_workers)]
        for name, role, command in roles:
            log = self.log_dir / f"{name.replace(' ', '')}.log"
            env = dict(base, DMLC_ROLE=role)
            with open(log, "wb") as sink:
                self.processes[name] = subprocess.Popen(
                    command, env=env, stdout=sink, stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL, start_new_session=True,
                    # Safe here: it only calls prctl (async-signal-safe), no Python locks.
                    preexec_fn=_die_with_parent)  # noqa: PLW1509
            self.logs[name] = log

    def signal(self, name: str, sig: signal.Signals) -> None:
        """Send ``sig`` to one role's process (fault injection, for the tests)."""
        self.processes[name].send_signal(sig)

    def kill(self) -> None:
        """Kill every role still running, with its process group; safe to call twice."""
        for process in self.processes.values():
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
                    os.killpg(process.pid, signal.SIGKILL)
        for process in self.processes.values():
            process.wait()

    def log_tail(self, name: str, lines: int = 3) -> str:
        """The last lines a role wrote."""
        text = self.logs[name].read_text(errors="replace").strip().splitlines()
        return "\n".join(text[-lines:])

    def wait(self, timeout: float, poll_s: float = 0.05) -> JobOutcome:
        """Wait until every role exits 0, any role fails, or ``timeout`` seconds have passed
        since ``start()``; kill what is left in the last two cases.
        """
        failure = None
        while failure is None:
            codes = {name: p.poll() for name, p in self.processes.items()}
            failed = [(name, code) for name, code in codes.items() if code not in (None, 0)]
            if failed:
                name, code = failed[0]
                pid = self.processes[name].pid
                failure = f"{name} (pid {pid}) {describe_exit(code)}"
                tail = self.log_tail(name)
                if tail:
                    failure += f"; its last output:\n{tail}"
            elif all(code == 0 for code in codes.values()):
                break
            elif time.monotonic() - self.started > timeout:
                running = ", ".join(name for name, code in codes.items() if code is None)
                failure = f"timed out after {timeout:g} s with {running} still running"
            else:
                time.sleep(poll_s)
        self.kill()
        return JobOutcome(failure is None, time.monotonic() - self.started, failure,
                          {name: p.returncode for name, p in self.processes.items()},
                          dict(self.logs))

    def __enter__(self) -> LoopbackJob:
        return self

    def __exit__(self, *_: object) -> None:
        self.kill()
