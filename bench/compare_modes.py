"""shadow against its peers, measured in one run on this machine (needs `wrk`).

Cases, all in front of the same two upstreams (bench/upstream_app.py):
    direct          wrk -> primary (the ceiling of the load side)
    minimal-mirror  bench/minimal_mirror.py: mirrors, compares nothing (the baseline)
    nginx-mirror    nginx `mirror` (when nginx is installed)
    proxy-off       shadow in legacy-only mode: a plain proxy, nothing mirrored
    verify          shadow in shadow mode: every exchange mirrored and compared
    verify-slow     as verify, with a shadow 5 ms slower (c1 latency must not move)
    verify-unordered, verify-slow-unordered
                    the same two with `ordered_writes = false`: no causality kept on the
                    shadow, everything mirrored at once

With `taskset`, the proxy under test runs alone on CPU 0, wrk and the upstreams on CPU 1.
Per case: throughput and p50/p99 at 32 connections, p50/p99 at 1 connection, CPU time
per request of the proxy, and the share of requests that reached the shadow (a drop
shows here). Then the ratios against minimal-mirror. Absolute numbers drift on a shared
machine; compare ratios within one run.
Usage: make bench   (or: python -m bench.compare_modes [--duration S] [--cases a,b])
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from bench.processes import PIN, free_port, start, stop, wait_port

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
NGINX = """worker_processes 1; daemon off; pid {tmp}/nginx.pid; error_log {tmp}/nginx.log;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {tmp}/cb; proxy_temp_path {tmp}/pt; fastcgi_temp_path {tmp}/ft;
  uwsgi_temp_path {tmp}/ut; scgi_temp_path {tmp}/st;
  upstream primary {{ server 127.0.0.1:{primary}; keepalive 64; }}
  upstream shadow {{ server 127.0.0.1:{shadow}; keepalive 64; }}
  server {{
    listen 127.0.0.1:{port};
    location / {{ mirror /__mirror; proxy_http_version 1.1;
                 proxy_set_header Connection ""; proxy_pass http://primary; }}
    location = /__mirror {{ internal; proxy_http_version 1.1;
                           proxy_set_header Connection ""; proxy_pass http://shadow$request_uri; }}
  }}
}}
"""


def start_upstreams(procs: list[subprocess.Popen]) -> dict[str, int]:
    """The three upstreams (primary, shadow, a shadow 5 ms slower) on CPU 1, appended to
    `procs` for the caller to stop; returns their ports once they accept connections."""
    ports = {name: free_port() for name in ("primary", "shadow", "slow")}
    for name, delay in (("primary", 0), ("shadow", 0), ("slow", 5)):
        procs.append(start([PY, str(HERE / "upstream_app.py"), str(ports[name]),
                            "--delay-ms", str(delay)], "1"))
    for port in ports.values():
        wait_port(port)
    return ports


def served(port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/__stats", timeout=5) as resp:
        return json.loads(resp.read())["requests"]


def settled(ports: dict[str, int], most: float = 15.0) -> dict[str, int]:
    """The upstreams' counts once the shadow has caught up with what the run queued
    (no change for half a second), so a lagging shadow is not counted as a drop."""
    deadline, last = time.time() + most, None
    while time.time() < deadline:
        now = {n: served(p) for n, p in ports.items()}
        if now == last:
            return now
        last = now
        time.sleep(0.5)
    return last


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children (nginx workers included)."""
    total = 0.0
    pids = [pid] + [int(p) for p in subprocess.run(["pgrep", "-g", str(pid)], capture_output=True,
                                                   text=True).stdout.split() if int(p) != pid]
    for one in pids:
        try:
            with open(f"/proc/{one}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total


def wrk(url: str, conns: int, seconds: float, script: Path) -> dict:
    cmd = ["wrk", "-t", "1" if conns == 1 else "2", "-c", str(conns), "-d", f"{max(1, round(seconds))}s",
           "--latency", "-s", str(script), url]
    out = subprocess.run((["taskset", "-c", "1"] + cmd) if PIN else cmd, capture_output=True,
                         text=True, timeout=seconds + 30).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

    def pct(p: str) -> float:
        m = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out)
        return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "p50_ms": pct("50"), "p99_ms": pct("99"),
            "non_2xx": int(errors.group(1)) if errors else 0}


def proxy_command(case: str, ports: dict, port: int, tmp: Path) -> tuple[list[str], dict]:
    primary = f"http://127.0.0.1:{ports['primary']}"
    shadow = f"http://127.0.0.1:{ports['slow' if case.startswith('verify-slow') else 'shadow']}"
    env = {"PRIMARY_URL": primary, "SHADOW_URL": shadow, "LISTEN_PORT": str(port)}
    if case.endswith("-unordered"):
        env["SHADOW_CONFIG_EXTRA"] = "[proxy]\nordered_writes = false\n"
    if case == "minimal-mirror":
        return [PY, str(HERE / "minimal_mirror.py")], env
    if case == "nginx-mirror":
        conf = tmp / "nginx.conf"
        conf.write_text(NGINX.format(tmp=tmp, primary=ports["primary"], shadow=ports["shadow"],
                                     port=port))
        return ["nginx", "-c", str(conf), "-p", str(tmp)], {}
    if case == "proxy-off":  # the shadow upstream is named (two backends need two URLs), never called
        env.update(SHADOW_MODE="legacy-only")
    return [PY, str(HERE / "harness_proxy.py")], env


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--cases", default="direct,minimal-mirror,nginx-mirror,proxy-off,"
                                            "verify,verify-slow,verify-unordered,"
                                            "verify-slow-unordered")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("bench needs wrk (apt-get install wrk)")
    cases = [c for c in args.cases.split(",") if c != "nginx-mirror" or shutil.which("nginx")]
    tmp = Path(tempfile.mkdtemp(prefix="shadow-bench-"))
    script = tmp / "mix.lua"
    script.write_text(LUA)
    upstreams: list[subprocess.Popen] = []
    results: dict[str, dict] = {}
    try:
        ports = start_upstreams(upstreams)
        for case in cases:
            url, proxy = f"http://127.0.0.1:{ports['primary']}", None
            if case != "direct":
                port = free_port()
                cmd, env = proxy_command(case, ports, port, tmp)
                proxy = start(cmd, "0", env)
                wait_port(port)
                url = f"http://127.0.0.1:{port}"
            try:
                wrk(url, 8, 2.0, script)  # warm-up
                before = {n: served(p) for n, p in ports.items()}
                cpu0 = cpu_seconds(proxy.pid) if proxy else 0.0
                high = wrk(url, 32, args.duration, script)
                cpu = cpu_seconds(proxy.pid) - cpu0 if proxy else 0.0
                after = settled(ports)
                low = wrk(url, 1, args.duration / 2, script)
            finally:
                if proxy:
                    stop(proxy)
            primary_n = after["primary"] - before["primary"]
            shadow_n = (after["shadow"] - before["shadow"]) + (after["slow"] - before["slow"])
            results[case] = {
                "rps_c32": high["rps"], "p50_c32_ms": high["p50_ms"], "p99_c32_ms": high["p99_ms"],
                "p50_c1_ms": low["p50_ms"], "p99_c1_ms": low["p99_ms"],
                "cpu_us_per_req": round(cpu / (high["rps"] * args.duration) * 1e6, 1) if proxy else None,
                "shadow_share": round(shadow_n / primary_n, 3) if primary_n else 0.0,
                "non_2xx": high["non_2xx"]}
    finally:
        for proc in upstreams:
            stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)
    report(results)


def report(results: dict[str, dict]) -> None:
    base = results.get("minimal-mirror")
    print(f"{'case':<15}{'req/s c32':>10}{'p50 c32':>9}{'p99 c32':>9}{'p50 c1':>8}{'p99 c1':>8}"
          f"{'cpu us/req':>11}{'shadow%':>9}{'rps/min':>8}{'cpu/min':>8}")
    for case, r in results.items():
        ratio = f"{r['rps_c32'] / base['rps_c32']:>8.2f}" if base else f"{'':>8}"
        cpu_ratio = (f"{r['cpu_us_per_req'] / base['cpu_us_per_req']:>8.2f}"
                     if base and r["cpu_us_per_req"] else f"{'':>8}")
        print(f"{case:<15}{r['rps_c32']:>10.0f}{r['p50_c32_ms']:>9.2f}{r['p99_c32_ms']:>9.2f}"
              f"{r['p50_c1_ms']:>8.3f}{r['p99_c1_ms']:>8.3f}{r['cpu_us_per_req'] or 0:>11}"
              f"{100 * r['shadow_share']:>8.1f}%{ratio}{cpu_ratio}")
    for suffix in ("", "-unordered"):
        healthy, slow = results.get(f"verify{suffix}"), results.get(f"verify-slow{suffix}")
        if healthy and slow:
            print(f"c1 p50 with a 5 ms slower shadow / healthy shadow{suffix and ' (unordered)'}:"
                  f" {slow['p50_c1_ms'] / healthy['p50_c1_ms']:.2f}"
                  f" (shadow reached: {100 * slow['shadow_share']:.1f}%"
                  f" vs {100 * healthy['shadow_share']:.1f}%)")
    print("JSON " + json.dumps(results))


if __name__ == "__main__":
    main()
