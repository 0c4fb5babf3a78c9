"""Processes and ports for the benchmarks: each child in its own process group (so a
proxy's workers are stopped with it), optionally pinned to a CPU with `taskset`."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time

PIN = shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 20.0) -> None:
    """Return once something accepts connections on `port`; RuntimeError after `timeout`."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"port {port} not ready")


def start(cmd: list[str], cpu: str | None = None, env: dict | None = None) -> subprocess.Popen:
    """Start `cmd` in a new session, on CPU `cpu` when pinning is possible. Its stderr is
    discarded unless BENCH_STDERR is set (then it is this process's)."""
    if cpu is not None and PIN:
        cmd = ["taskset", "-c", cpu] + cmd
    stderr = None if os.environ.get("BENCH_STDERR") else subprocess.DEVNULL
    return subprocess.Popen(cmd, env={**os.environ, **(env or {})}, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=stderr)


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM the process group, SIGKILL it after 10 s."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
