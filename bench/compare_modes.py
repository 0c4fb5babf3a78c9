"""What verification costs, measured in one run on this machine (needs `wrk`).

Cases, all against the same two upstreams (bench/upstream_app.py):
    direct         wrk -> primary
    proxy-off      wrk -> shadow in legacy-only mode (a plain proxy: nothing mirrored)
    verify         wrk -> shadow in shadow mode (every exchange mirrored and compared)
    verify-slow    as verify, the shadow answering 5 ms later (c1 latency must not move)

Throughput at 32 connections and p50/p99 latency at 1 connection, then ratios against
proxy-off. Absolute numbers drift on a shared machine; the ratios are the result.
Usage: make bench   (or: python -m bench.compare_modes [--duration S])
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PY = sys.executable
LUA = """
counter = 0
request = function()
  counter = counter + 1
  if counter % 10 == 0 then
    return wrk.format("POST", "/api/items", {["Content-Type"]="application/json"}, '{"name":"n","score":3}')
  elseif counter % 10 < 3 then
    return wrk.format("GET", "/api/items")
  end
  return wrk.format("GET", "/api/items/" .. (counter % 500))
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"port {port} not ready")


def start(cmd: list[str], env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(cmd, env={**os.environ, **(env or {})}, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def wrk(url: str, conns: int, seconds: float, script: Path) -> dict:
    out = subprocess.run(["wrk", "-t", "1" if conns == 1 else "2", "-c", str(conns), "-d",
                          f"{seconds}s", "--latency", "-s", str(script), url],
                         capture_output=True, text=True, timeout=seconds + 30).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

    def pct(p: str) -> float:
        m = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out)
        value, unit = float(m.group(1)), m.group(2)
        return value * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    return {"rps": rps, "p50_ms": pct("50"), "p99_ms": pct("99")}


def proxy_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=8.0)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("bench needs wrk (apt-get install wrk)")
    tmp = Path(tempfile.mkdtemp(prefix="shadow-bench-"))
    script = tmp / "mix.lua"
    script.write_text(LUA)
    procs: list[subprocess.Popen] = []
    results: dict[str, dict] = {}
    try:
        ports = {name: free_port() for name in ("primary", "shadow", "slow")}
        for name, delay in (("primary", 0), ("shadow", 0), ("slow", 5)):
            procs.append(start([PY, str(HERE / "upstream_app.py"), str(ports[name]),
                                "--delay-ms", str(delay)]))
        for port in ports.values():
            wait_port(port)
        primary = f"http://127.0.0.1:{ports['primary']}"
        cases = {"direct": None,
                 "proxy-off": {"SHADOW_URL": "", "SHADOW_MODE": "legacy-only"},
                 "verify": {"SHADOW_URL": f"http://127.0.0.1:{ports['shadow']}"},
                 "verify-slow": {"SHADOW_URL": f"http://127.0.0.1:{ports['slow']}"}}
        for case, env in cases.items():
            url, proxy = primary, None
            if env is not None:
                port = free_port()
                proxy = start([PY, str(HERE / "harness_proxy.py")],
                              {**env, "PRIMARY_URL": primary, "LISTEN_PORT": str(port)})
                procs.append(proxy)
                wait_port(port)
                url = f"http://127.0.0.1:{port}"
            wrk(url, 8, 1.0, script)  # warm-up
            cpu0 = proxy_cpu(proxy.pid) if proxy else 0.0
            high = wrk(url, 32, args.duration, script)
            cpu = (proxy_cpu(proxy.pid) - cpu0) if proxy else 0.0
            low = wrk(url, 1, args.duration / 2, script)
            results[case] = {"rps_c32": high["rps"], "p99_c32_ms": high["p99_ms"],
                             "p50_c1_ms": low["p50_ms"], "p99_c1_ms": low["p99_ms"],
                             "cpu_us_per_req": round(cpu / (high["rps"] * args.duration) * 1e6, 1)
                             if proxy else None}
            if proxy:
                stop(proxy)
    finally:
        for proc in procs:
            stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)
    base = results["proxy-off"]
    print(f"{'case':<12} {'req/s c32':>10} {'p99 c32':>9} {'p50 c1':>8} {'p99 c1':>8} "
          f"{'cpu us/req':>10} {'rps/off':>8} {'p50c1/off':>10}")
    for case, r in results.items():
        print(f"{case:<12} {r['rps_c32']:>10.0f} {r['p99_c32_ms']:>8.2f}m {r['p50_c1_ms']:>7.3f}m "
              f"{r['p99_c1_ms']:>7.3f}m {r['cpu_us_per_req'] or 0:>10} "
              f"{r['rps_c32'] / base['rps_c32']:>8.2f} {r['p50_c1_ms'] / base['p50_c1_ms']:>10.2f}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
