"""Misbehaving backends and process probes shared by the fault, soak, shutdown and hostile
tests. Everything listens on loopback and is stopped by whoever started it.

    FaultServer     a raw asyncio server that speaks HTTP badly on purpose (hangs, resets,
                    garbage, a 100 MB body) and can stop listening and come back (refuses)
    fault_app       an aiohttp app that answers late or answers 500, and can be healed
    healthy_app     the well-behaved backend: the same JSON reply to everything
    open_sockets    this process's TCP connections (no listeners), for leak checks
    RssSampler      a thread sampling a process's RSS, for peaks the loop cannot see
    ProxyProcess    `shadow run -c FILE` as a subprocess in its own process group
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import signal
import socket
import struct
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from aiohttp import web

from tests.support import config_data

HEALTHY_BODY = b'{"id": 7, "score": 6, "tags": ["calm", "tired"], "note": null}'
HEALTHY_TYPE = "application/json"

SLOW_DELAY = 5.0
"""Seconds the 'slow' backend takes to answer (longer than every timeout in the tests)."""

HUGE = 100 * 1024 * 1024
"""Bytes of the 'huge' reply body."""

HUGE_CHUNK = bytes(range(256)) * 256  # 64 KiB; HUGE is a whole number of these


def huge_digest() -> str:
    """sha256 of the whole 'huge' body."""
    digest = hashlib.sha256()
    for _ in range(HUGE // len(HUGE_CHUNK)):
        digest.update(HUGE_CHUNK)
    return digest.hexdigest()


RAW_FAULTS = ("hang", "reset", "reset_stream", "garbage", "huge")
APP_FAULTS = ("slow", "error500")


def closed_port() -> int:
    """A loopback port nothing listens on (bound once, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _rst(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP reset instead of a FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class FaultServer:
    """A raw HTTP/1.1 server on 127.0.0.1. With `fault` None it answers every request
    with HEALTHY_BODY (and `Connection: close`); otherwise it misbehaves:

        hang          reads the request, never answers (until the peer hangs up)
        reset         a head announcing 65 536 bytes, 1 000 of them, then a TCP reset
        reset_stream  a chunked head, three chunks, then a TCP reset
        garbage       bytes that are not an HTTP response, then close
        huge          a 100 MB chunked body, written as fast as the peer reads it
        refuse        (set by `refuse()`) not listening at all: connections are refused

    It runs on the caller's event loop (a server thread would make the loop wait for the
    GIL, which is noisier than the few writes it saves). Always `await stop()` it.
    """

    def __init__(self, fault: str | None = None) -> None:
        self.fault = fault
        self.port = 0
        self.requests = 0
        self.huge_bytes_sent = 0
        self._server: asyncio.base_events.Server | None = None
        self._tasks: set[asyncio.Task] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> FaultServer:
        self._server = await asyncio.start_server(self._connection, "127.0.0.1", self.port,
                                                  reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def refuse(self) -> None:
        """Stop listening and drop every connection: from now on connections are refused."""
        await self.stop()
        self.fault = "refuse"

    async def heal(self) -> None:
        """Answer well again (listening again on the same port if refusing)."""
        if self._server is None:
            await self.start()
        self.fault = None

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._tasks.add(task)
        self._writers.add(writer)
        try:
            await self._serve(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
            pass
        finally:
            self._writers.discard(writer)
            self._tasks.discard(task)
            if not writer.is_closing():  # a graceful close() still flushes what is buffered
                writer.transport.abort()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        match = re.search(rb"(?im)^content-length:\s*(\d+)", head)
        if match:
            await reader.readexactly(int(match.group(1)))
        self.requests += 1
        fault = self.fault
        if fault is None:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: " + HEALTHY_TYPE.encode()
                         + b"\r\nContent-Length: " + str(len(HEALTHY_BODY)).encode()
                         + b"\r\nConnection: close\r\n\r\n" + HEALTHY_BODY)
            await writer.drain()
            writer.close()
        elif fault == "hang":
            while await reader.read(65536):
                pass
        elif fault == "reset":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 65536\r\n\r\n" + b"[" + b"1," * 499 + b" ")
            await writer.drain()
            await asyncio.sleep(0.1)  # let the peer read the head before the reset
            _rst(writer)
        elif fault == "reset_stream":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                         b"Transfer-Encoding: chunked\r\n\r\n")
            for i in range(3):
                line = f"line {i}\n".encode()
                writer.write(f"{len(line):x}\r\n".encode() + line + b"\r\n")
            await writer.drain()
            await asyncio.sleep(0.1)
            _rst(writer)
        elif fault == "garbage":
            writer.write(b"SSH-2.0-OpenSSH_9.6\r\n\xff\xfe\x00 this is not HTTP\r\n\r\n")
            await writer.drain()
            writer.close()
        elif fault == "huge":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                         b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
            frame = f"{len(HUGE_CHUNK):x}\r\n".encode() + HUGE_CHUNK + b"\r\n"
            for _ in range(HUGE // len(HUGE_CHUNK)):
                writer.write(frame)
                await writer.drain()
                self.huge_bytes_sent += len(HUGE_CHUNK)
            writer.write(b"0\r\n\r\n")
            await writer.drain()
            writer.close()
        else:
            raise AssertionError(f"unknown fault {fault!r}")


@dataclass
class AppState:
    """What `fault_app` does: None (healthy), 'slow' or 'error500'."""

    fault: str | None = None
    requests: int = 0


FAULT_STATE = web.AppKey("fault_state", AppState)


def fault_app(state: AppState) -> web.Application:
    """An aiohttp backend that answers SLOW_DELAY seconds late ('slow') or answers 500 to
    every request ('error500'); healthy when `state.fault` is None. Start it with
    aiohttp's TestServer (it cancels a late handler when the proxy hangs up)."""
    app = web.Application()
    app[FAULT_STATE] = state

    async def handle(request: web.Request) -> web.Response:
        await request.read()
        state.requests += 1
        if state.fault == "slow":
            await asyncio.sleep(SLOW_DELAY)
        elif state.fault == "error500":
            return web.json_response({"error": "internal server error"}, status=500)
        return web.Response(body=HEALTHY_BODY, content_type=HEALTHY_TYPE)

    app.router.add_route("*", "/{tail:.*}", handle)
    return app


def healthy_app(delay: float = 0.0, body: bytes = HEALTHY_BODY) -> web.Application:
    """The well-behaved backend: `body` as JSON to every request, after `delay` seconds."""
    app = web.Application()

    async def handle(request: web.Request) -> web.Response:
        await request.read()
        if delay:
            await asyncio.sleep(delay)
        return web.Response(body=body, content_type=HEALTHY_TYPE)

    app.router.add_route("*", "/{tail:.*}", handle)
    return app


# --- probes -----------------------------------------------------------------------------


def open_sockets(pid: int | None = None) -> list[Any]:
    """The TCP connections a process holds open (listening sockets left out)."""
    proc = psutil.Process(pid)
    return [c for c in proc.net_connections(kind="tcp") if c.status != psutil.CONN_LISTEN]


def task_count() -> int:
    return len(asyncio.all_tasks())


async def settled(baseline_tasks: int, baseline_sockets: int, timeout: float = 5.0) -> tuple[int, list]:
    """Wait (up to `timeout`) until this process has no more tasks and sockets than the
    baselines; return what it has at the end."""
    deadline = time.monotonic() + timeout
    while True:
        tasks, sockets = task_count(), open_sockets()
        if (tasks <= baseline_tasks and len(sockets) <= baseline_sockets) \
                or time.monotonic() > deadline:
            return tasks, sockets
        await asyncio.sleep(0.05)


class RssSampler:
    """Samples a process's resident set size every `interval` seconds from a thread (so
    peaks are seen even while the event loop is busy). Use as a context manager."""

    def __init__(self, pid: int | None = None, interval: float = 0.005) -> None:
        self._proc = psutil.Process(pid)
        self.interval = interval
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.samples.append((time.monotonic(), self._proc.memory_info().rss))
            except psutil.Error:
                return
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak(self) -> int:
        return max(rss for _, rss in self.samples)


def rss(pid: int | None = None) -> int:
    return psutil.Process(pid).memory_info().rss


# --- `shadow run` as a subprocess -----------------------------------------------------------


def to_toml(data: dict[str, Any]) -> str:
    """A small TOML writer for config dicts: scalars, lists, nested and inline tables."""

    def scalar(value: Any) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (int, float)):
            return repr(value)
        if isinstance(value, str):
            return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(value, list):
            return "[" + ", ".join(scalar(v) for v in value) + "]"
        if isinstance(value, dict):  # an inline table, e.g. inside an array of routes
            return "{" + ", ".join(f"{k} = {scalar(v)}" for k, v in value.items()) + "}"
        raise TypeError(f"no TOML for {value!r}")

    lines: list[str] = []

    def table(prefix: str, values: dict[str, Any]) -> None:
        plain = {k: v for k, v in values.items() if not isinstance(v, dict)}
        nested = {k: v for k, v in values.items() if isinstance(v, dict)}
        if prefix and plain:
            lines.append(f"[{prefix}]")
        for key, value in plain.items():
            lines.append(f"{key} = {scalar(value)}")
        for key, value in nested.items():
            table(f"{prefix}.{key}" if prefix else key, value)

    table("", data)
    return "\n".join(lines) + "\n"


def proxy_config(tmp_path: Path, legacy_url: str, candidate_url: str, **sections: Any) -> dict:
    """A config dict for a subprocess proxy on loopback (ports 0 unless given); its log
    level is info, because `ProxyProcess` reads the ports from the start-up line."""
    return config_data(tmp_path, legacy_url, candidate_url,
                       **{"log": {"level": "info"}, **sections})


_STARTED = re.compile(r"proxy started .*listen=(\d+) admin=(\d+)")


@dataclass
class ProxyProcess:
    """`shadow run -c FILE` in its own session (process group), logs to a file.

    Always `await close()` it (a finally block): it kills the whole process group if the
    process is still running.
    """

    config_path: Path
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    proc: asyncio.subprocess.Process | None = None
    proxy_port: int = 0
    admin_port: int = 0

    @classmethod
    async def start(cls, tmp_path: Path, config: dict, *, name: str = "proxy",
                    env: dict[str, str] | None = None, timeout: float = 20.0,
                    preexec_fn=None) -> ProxyProcess:
        config_path = tmp_path / f"{name}.toml"
        config_path.write_text(to_toml(config))
        log_path = tmp_path / f"{name}.log"
        self = cls(config_path, log_path, env or {})
        offset = log_path.stat().st_size if log_path.exists() else 0
        shadow = Path(sys.executable).with_name("shadow")
        with open(log_path, "ab") as log:
            self.proc = await asyncio.create_subprocess_exec(
                str(shadow), "run", "-c", str(config_path),
                stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log,
                env={**os.environ, **self.env}, start_new_session=True,
                preexec_fn=preexec_fn)
        try:
            await self._wait_started(timeout, offset)
        except BaseException:
            await self.close()
            raise
        return self

    async def _wait_started(self, timeout: float, offset: int) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log_path.read_bytes()[offset:].decode(errors="replace")
            found = _STARTED.findall(text)
            if found:
                self.proxy_port, self.admin_port = map(int, found[-1])
                return
            if self.proc.returncode is not None:
                break
            await asyncio.sleep(0.05)
        raise RuntimeError(f"shadow run did not start:\n{self.log_path.read_text(errors='replace')}")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.proxy_port}{path}"

    def admin(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.admin_port}{path}"

    def terminate(self) -> None:
        """SIGTERM: the graceful stop."""
        self.proc.send_signal(signal.SIGTERM)

    async def wait(self, timeout: float) -> int:
        return await asyncio.wait_for(self.proc.wait(), timeout)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def group_alive(self) -> bool:
        """True while any process of the proxy's process group exists."""
        try:
            os.killpg(self.proc.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    async def close(self) -> None:
        """Kill the process group if anything of it is still running, and reap."""
        if self.proc is None:
            return
        if self.proc.returncode is None or self.group_alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError, asyncio.TimeoutError):
            await asyncio.wait_for(self.proc.wait(), 10)


class Misbehaving:
    """One backend that can be switched into a fault and healed again: a FaultServer for
    the protocol-level faults and 'refuse', an aiohttp server for 'slow' and 'error500'."""

    def __init__(self, fault: str) -> None:
        self.fault = fault
        self.raw: FaultServer | None = None
        self.state = AppState()
        self.server: Any = None  # aiohttp.test_utils.TestServer

    @classmethod
    async def start(cls, fault: str) -> Misbehaving:
        from aiohttp.test_utils import TestServer

        self = cls(fault)
        if fault in APP_FAULTS:
            self.server = TestServer(fault_app(self.state), host="127.0.0.1")
            await self.server.start_server()
        else:
            self.raw = await FaultServer().start()
        return self

    @property
    def url(self) -> str:
        return self.raw.url if self.raw is not None else str(self.server.make_url("")).rstrip("/")

    @property
    def port(self) -> int:
        return self.raw.port if self.raw is not None else self.server.port

    async def break_(self) -> None:
        """Start misbehaving."""
        if self.raw is None:
            self.state.fault = self.fault
        elif self.fault == "refuse":
            await self.raw.refuse()
        else:
            self.raw.fault = self.fault

    async def heal(self) -> None:
        if self.raw is None:
            self.state.fault = None
        else:
            await self.raw.heal()

    async def close(self) -> None:
        if self.raw is not None:
            await self.raw.stop()
        if self.server is not None:
            await self.server.close()
