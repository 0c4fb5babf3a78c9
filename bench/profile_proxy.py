"""Where the proxy's CPU goes under load: py-spy samples `shadow` (or the minimal mirror)
while wrk drives the benchmark mix at 32 connections, then prints the functions with the
largest inclusive and self shares. Needs `wrk` and `py-spy`.

    python -m bench.profile_proxy [--case verify|minimal-mirror|proxy-off] [--duration S]
                                  [--extra 'TOML appended to the proxy config']
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from bench.compare_modes import LUA, proxy_command, start_upstreams, wrk
from bench.processes import PIN, free_port, start, stop, wait_port



def frames(line: str) -> tuple[list[str], int]:
    stack, _, count = line.rpartition(" ")
    return stack.split(";"), int(count)


def summarise(raw: Path, top: int) -> None:
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        if not line.strip():
            continue
        stack, count = frames(line)
        total += count
        for name in set(stack):
            inclusive[name] += count
        own[stack[-1]] += count
    print(f"{total} samples")
    for title, table in (("inclusive", inclusive), ("self", own)):
        print(f"--- {title}")
        for name, count in table.most_common(top):
            print(f"{100 * count / total:6.1f}%  {name}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--case", default="verify")
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--top", type=int, default=45)
    parser.add_argument("--extra", default="")
    parser.add_argument("--keep", help="also write the collapsed stacks to this file")
    args = parser.parse_args()
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    tmp = Path(tempfile.mkdtemp(prefix="shadow-profile-"))
    script = tmp / "mix.lua"
    script.write_text(LUA)
    procs: list[subprocess.Popen] = []
    try:
        ports = start_upstreams(procs)
        port = free_port()
        cmd, env = proxy_command(args.case, ports, port, tmp)
        if args.extra:
            env["SHADOW_CONFIG_EXTRA"] = args.extra
        proxy = start(cmd, "0", env)
        procs.append(proxy)
        wait_port(port)
        url = f"http://127.0.0.1:{port}"
        wrk(url, 8, 2.0, script)
        raw = tmp / "stacks.txt"
        spy_cmd = ["py-spy", "record", "--pid", str(proxy.pid), "--rate", "400", "--format",
                   "raw", "--output", str(raw), "--duration", str(args.duration), "--nonblocking"]
        spy_cmd[0] = spy
        recorder = subprocess.Popen((["taskset", "-c", "1"] if PIN else []) + spy_cmd,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        result = wrk(url, 32, args.duration, script)
        recorder.wait(args.duration + 30)
        print(f"{args.case}: {result['rps']:.0f} req/s at c32 while sampled")
        if args.keep:
            shutil.copy(raw, args.keep)
        summarise(raw, args.top)
    finally:
        for proc in reversed(procs):
            stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
