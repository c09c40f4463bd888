"""Shared helpers of compare.py and bench.py: start a swerex-remote, raw HTTP.

Stdlib only. Every connection goes to 127.0.0.1; one TCP connection per
request (as SWE-ReX's RemoteRuntime does: aiohttp with force_close=True).
"""

from __future__ import annotations

import http.client
import json
import os
import shlex
import signal
import socket
import subprocess
import time
import uuid

TOKEN = "testkey"
HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Response:
    def __init__(self, status: int, headers: dict[str, str], body: bytes):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        try:
            return json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return None


def request(port: int, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None,
            timeout: float = 60) -> Response:
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, data)
    finally:
        conn.close()


def post_json(port: int, path: str, payload, request_id: str | None = None, key: str | None = TOKEN) -> Response:
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["X-API-Key"] = key
    headers["X-Request-ID"] = request_id or str(uuid.uuid4())
    return request(port, "POST", path, json.dumps(payload).encode(), headers)


def is_alive(port: int, key: str = TOKEN, timeout: float = 1.0) -> bool:
    try:
        return request(port, "GET", "/is_alive", headers={"X-API-Key": key}, timeout=timeout).status == 200
    except OSError:
        return False


class Server:
    """A swerex-remote subprocess in its own process group."""

    def __init__(self, binary: str, cwd: str | None = None, log_path: str | None = None, env: dict | None = None):
        self.binary = binary
        self.port = free_port()
        self.cmd = [*shlex.split(binary), "--host", HOST, "--port", str(self.port), "--auth-token", TOKEN]
        self.log_path = log_path or f"/tmp/swerex-oracle-{self.port}.log"
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.t_start = time.monotonic()
        self.proc = subprocess.Popen(self.cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.startup_seconds: float | None = None

    def wait_alive(self, timeout: float = 30.0, poll: float = 0.005) -> float:
        """Wait for the first 200 on /is_alive; return seconds since the process started."""
        deadline = self.t_start + timeout
        while True:
            if is_alive(self.port, timeout=0.5):
                self.startup_seconds = time.monotonic() - self.t_start
                return self.startup_seconds
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.cmd!r} exited with {self.proc.returncode} (log {self.log_path})")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.cmd!r} not alive after {timeout}s (log {self.log_path})")
            time.sleep(poll)

    def rss_kib(self) -> tuple[int, int]:
        """(RSS of the server process, RSS of it and all its descendants) in KiB."""
        def rss(pid: int) -> int:
            try:
                with open(f"/proc/{pid}/status") as f:
                    for line in f:
                        if line.startswith("VmRSS:"):
                            return int(line.split()[1])
            except OSError:
                pass
            return 0

        children: dict[int, list[int]] = {}
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    with open(f"/proc/{d}/stat") as f:
                        ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                    children.setdefault(ppid, []).append(int(d))
                except (OSError, IndexError, ValueError):
                    pass
        total, todo = 0, [self.proc.pid]
        while todo:
            p = todo.pop()
            total += rss(p)
            todo.extend(children.get(p, []))
        return rss(self.proc.pid), total

    def stop(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        self._log.close()
