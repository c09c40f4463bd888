"""pytest plugin: run upstream SWE-ReX's tests against a foreign swerex-remote.

Load with ``-p foreign_server`` (this directory on PYTHONPATH). When the
environment variable SWEREX_REMOTE_BIN names an executable, upstream's
session-scoped ``remote_server`` fixture (tests/conftest.py) is replaced by one
that starts

    $SWEREX_REMOTE_BIN --host 127.0.0.1 --port <free port> --auth-token testkey

as a subprocess (its own process group; output to SWEREX_REMOTE_LOG, default a
temporary file), waits until ``GET /is_alive`` with ``X-API-Key: testkey``
answers 200, yields upstream's ``RemoteServer(port)`` and kills the process
group at the end. Without SWEREX_REMOTE_BIN upstream's fixture runs unchanged.

How: conftest fixtures take precedence over plugin fixtures, so defining a
fixture of the same name here would lose. Instead, before pytest's fixture
manager parses tests/conftest.py (our hook is tryfirst on
pytest_plugin_registered), its ``remote_server`` attribute is swapped for
ours. Nothing of upstream's code is copied; only its RemoteServer class and
TEST_API_KEY are used, from the conftest module itself.
"""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import pytest

ENV_BIN = "SWEREX_REMOTE_BIN"
STARTUP_TIMEOUT = float(os.environ.get("SWEREX_REMOTE_STARTUP_TIMEOUT", "30"))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _alive(port: int, key: str) -> bool:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/is_alive", headers={"X-API-Key": key})
    try:
        with urllib.request.urlopen(req, timeout=1) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _make_fixture(conftest):
    key = getattr(conftest, "TEST_API_KEY", "testkey")
    remote_server_cls = conftest.RemoteServer

    @pytest.fixture(scope="session")
    def remote_server():
        binary = os.environ[ENV_BIN]
        port = _free_port()
        cmd = [*shlex.split(binary), "--host", "127.0.0.1", "--port", str(port), "--auth-token", key]
        log_path = os.environ.get("SWEREX_REMOTE_LOG") or tempfile.mkstemp(prefix="swerex-remote-", suffix=".log")[1]
        log = open(log_path, "ab")  # noqa: SIM115 - closed in the finally below
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = time.monotonic() + STARTUP_TIMEOUT
            while not _alive(port, key):
                if proc.poll() is not None:
                    pytest.fail(f"{cmd!r} exited with {proc.returncode} before answering /is_alive (log: {log_path})")
                if time.monotonic() > deadline:
                    pytest.fail(f"{cmd!r} did not answer /is_alive within {STARTUP_TIMEOUT}s (log: {log_path})")
                time.sleep(0.05)
            print(f"foreign swerex-remote on port {port}: {cmd!r} (log: {log_path})")
            yield remote_server_cls(port)
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
            log.close()

    return remote_server


@pytest.hookimpl(tryfirst=True)
def pytest_plugin_registered(plugin, manager):
    if not os.environ.get(ENV_BIN):
        return
    path = getattr(plugin, "__file__", "") or ""
    if os.path.basename(path) == "conftest.py" and os.path.basename(os.path.dirname(path)) == "tests":
        if hasattr(plugin, "remote_server") and hasattr(plugin, "RemoteServer"):
            plugin.remote_server = _make_fixture(plugin)


def pytest_report_header(config):
    if os.environ.get(ENV_BIN):
        return f"swerex-remote under test: {os.environ[ENV_BIN]} (remote_server fixture replaced)"
    return "swerex-remote under test: upstream's in-process server (remote_server fixture unchanged)"
