#!/usr/bin/env python3
"""Measure swerex-remote servers side by side.

    bench.py NAME=CMD [NAME=CMD ...] [--runs N] [--starts N]

For each server (started as CMD --host 127.0.0.1 --port P --auth-token testkey):
  startup   time from the process start (Popen) to the first 200 on GET
            /is_alive (polled every 5 ms), median of --starts fresh starts
  run p50/p99/max  POST /run_in_session `echo hi` (check=silent, timeout 5),
            --runs times in a row on one session, one TCP connection per
            request (as RemoteRuntime does), client-side wall time
  is_alive p50     GET /is_alive, same way
  RSS       VmRSS of the server process after creating one session, and of
            the server with all its descendants (the session's bash)
The first server named is the reference; the ratio column is other/first.
Everything is measured on this machine's loopback; servers run one at a time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from oraclelib import Server, post_json, request, TOKEN  # noqa: E402


def pct(xs, p):
    xs = sorted(xs)
    k = min(len(xs) - 1, max(0, round(p / 100 * (len(xs) - 1))))
    return xs[k]


def measure(cmd: str, runs: int, starts: int, workdir: str) -> dict:
    os.makedirs(workdir, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "TERM"}
    startups = []
    for _ in range(starts):
        s = Server(cmd, cwd=workdir, env=env)
        try:
            startups.append(s.wait_alive(timeout=60, poll=0.005))
        finally:
            s.stop()
    s = Server(cmd, cwd=workdir, env=env)
    try:
        s.wait_alive(timeout=60)
        r = post_json(s.port, "/create_session", {"session": "default", "session_type": "bash",
                                                   "startup_source": [], "startup_timeout": 5.0})
        if r.status != 200:
            raise RuntimeError(f"create_session: {r.status} {r.body[:300]!r}")
        time.sleep(0.5)
        rss_server, rss_tree = s.rss_kib()
        action = {"command": "echo hi", "session": "default", "timeout": 5.0, "is_interactive_command": False,
                  "is_interactive_quit": False, "check": "silent", "error_msg": "", "expect": [],
                  "action_type": "bash"}
        for _ in range(5):  # warm-up
            post_json(s.port, "/run_in_session", action)
        lat = []
        for _ in range(runs):
            t0 = time.perf_counter()
            r = post_json(s.port, "/run_in_session", action)
            lat.append(time.perf_counter() - t0)
            body = r.json() or {}
            if r.status != 200 or body.get("output") != "hi\n" or body.get("exit_code") != 0:
                raise RuntimeError(f"run_in_session echo hi: {r.status} {r.body[:300]!r}")
        alive = []
        for _ in range(runs):
            t0 = time.perf_counter()
            request(s.port, "GET", "/is_alive", headers={"X-API-Key": TOKEN})
            alive.append(time.perf_counter() - t0)
    finally:
        s.stop()
    return {
        "startup (ms, median)": statistics.median(startups) * 1e3,
        "startup (ms, max)": max(startups) * 1e3,
        "run echo hi p50 (ms)": pct(lat, 50) * 1e3,
        "run echo hi p99 (ms)": pct(lat, 99) * 1e3,
        "run echo hi max (ms)": max(lat) * 1e3,
        "is_alive p50 (ms)": pct(alive, 50) * 1e3,
        "is_alive p99 (ms)": pct(alive, 99) * 1e3,
        "RSS server (MiB)": rss_server / 1024,
        "RSS server+bash (MiB)": rss_tree / 1024,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("servers", nargs="+", metavar="NAME=CMD")
    ap.add_argument("--runs", type=int, default=300)
    ap.add_argument("--starts", type=int, default=5)
    args = ap.parse_args()
    names, results = [], []
    for spec in args.servers:
        name, _, cmd = spec.partition("=")
        if not cmd:
            ap.error(f"not NAME=CMD: {spec!r}")
        print(f"bench: {name}: {cmd} ({args.starts} starts, {args.runs} runs)", file=sys.stderr, flush=True)
        try:
            results.append(measure(cmd, args.runs, args.starts, f"/tmp/swerex-oracle-bench/{name}"))
        except RuntimeError as e:
            print(f"bench: {name}: {e}", file=sys.stderr)
            return 1
        names.append(name)
    cols = [f"{n:>12}" for n in names] + [f"  {'ratio ' + n + '/' + names[0]:>20}" for n in names[1:]]
    print(f"{'metric':<24}" + "".join(cols))
    for key in results[0]:
        row = f"{key:<24}" + "".join(f"{r[key]:>12.2f}" for r in results)
        for r in results[1:]:
            row += f"{(r[key] / results[0][key]) if results[0][key] else float('nan'):>22.2f}"
        print(row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
