#!/usr/bin/env python3
"""Differential test: the same raw HTTP requests to two swerex-remote servers.

    compare.py --a CMD --b CMD [--only SUBSTR] [--verbose]

A and B are commands (shell-split) started as
``CMD --host 127.0.0.1 --port P --auth-token testkey``; normally A is
upstream's Python server (``swerex-remote`` in the oracle image) and B ours.
They run one after the other, not at once, each with the same fresh working
directory (WORK below, also its cwd), so that file paths in requests and
answers are identical. Each step is one raw HTTP request on its own TCP
connection; the status code, the content type and the JSON body (field by
field) are compared. Exit status 1 if any step differs, 2 on a setup error.

Normalisations (applied to both sides before comparing; nothing else is
ignored):
  N1  511 bodies: ``swerexception.traceback`` -> "<traceback>". It is a
      Python stack dump; ours cannot (and need not) reproduce it.
  N2  511 bodies of class ``pexpect.exceptions.*``: ``message`` is cut to its
      first line ("Timeout exceeded."); the rest is pexpect's repr of its
      spawn object (memory address, pid, buffer dump), implementation-bound.
  N3  pids: bash job notices "[1] 12345" -> "[1] <pid>", and the output of
      steps marked pid=True (they print $$ or $!) -> "<pid>" for numbers.
  N4  temp paths: "/tmp/tmpXXXXXXXX" (Python tempfile names) -> "/tmp/<tmp>".
  N5  timing: none of the compared fields carries a time. One race is
      upstream's own: whether bash prints "^C" for an interrupt, and whether
      it lands in the interrupt's answer or the next command's, depends on
      when SIGINT arrives (seen upstream vs upstream under load). For steps
      marked ctrl_c=True (interrupts and the command after one) a leading
      "^C" (and the newline after it) is removed from ``output``.
  N6  racy output: interrupting a pager ends with Ctrl-Z and `kill -9 %1`;
      whether bash's "Killed" notice (or a second "Stopped") arrives before
      the answer differs from run to run upstream. For steps marked
      racy_output=True ``output`` is replaced by "<racy>" (status, exit_code
      and expect_string are still compared; upstream's test_interrupt_pager
      checks the output's content).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import shutil
import sys
import time
import uuid
import zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from oraclelib import TOKEN, Server, request  # noqa: E402

WORK = "/tmp/sbx-oracle-cmp"

# --- step constructors --------------------------------------------------------


def step(name, method, path, body=None, headers=None, key=TOKEN, rid=None, pid=False, sleep=0.0, ctrl_c=False,
         racy_output=False):
    h = {}
    if key is not None:
        h["X-API-Key"] = key
    if rid is not None:
        h["X-Request-ID"] = rid
    h.update(headers or {})
    return {"name": name, "method": method, "path": path, "body": body, "headers": h, "pid": pid, "sleep": sleep,
            "ctrl_c": ctrl_c, "racy_output": racy_output}


def J(name, path, payload, **kw):
    """A JSON POST like RemoteRuntime sends it (fresh X-Request-ID unless given)."""
    kw.setdefault("rid", str(uuid.uuid4()))
    return step(name, "POST", path, json.dumps(payload).encode(), {"Content-Type": "application/json"}, **kw)


def bash(command, session="default", timeout=5.0, check="silent", expect=(), interactive=False, quit_=False,
         error_msg="", **kw):
    """A full BashAction, every field present (as model_dump() sends it)."""
    return {"command": command, "session": session, "timeout": timeout, "is_interactive_command": interactive,
            "is_interactive_quit": quit_, "check": check, "error_msg": error_msg, "expect": list(expect),
            "action_type": "bash", **kw}


def run(name, command, **kw):
    sk = {k: kw.pop(k) for k in ("pid", "sleep", "rid", "ctrl_c") if k in kw}
    return J(name, "/run_in_session", bash(command, **kw), **sk)


def interrupt(name, session="default", timeout=0.2, n_retry=3, expect=(), racy_output=False):
    return J(name, "/run_in_session", {"session": session, "timeout": timeout, "n_retry": n_retry,
                                       "expect": list(expect), "action_type": "bash_interrupt"}, ctrl_c=True,
             racy_output=racy_output)


def create(name, session="default", startup_source=(), startup_timeout=1.0, **kw):
    return J(name, "/create_session", {"startup_source": list(startup_source), "session": session,
                                       "session_type": "bash", "startup_timeout": startup_timeout}, **kw)


def close_s(name, session="default", **kw):
    return J(name, "/close_session", {"session": session, "session_type": "bash"}, **kw)


def execute(name, command, shell=False, timeout=None, check=False, error_msg="", env=None, cwd=None, merge=False, **kw):
    return J(name, "/execute", {"command": command, "timeout": timeout, "shell": shell, "check": check,
                                "error_msg": error_msg, "env": env, "cwd": cwd, "merge_output_streams": merge}, **kw)


def read(name, path, encoding=None, errors=None, **kw):
    return J(name, "/read_file", {"path": path, "encoding": encoding, "errors": errors}, **kw)


def write(name, path, content, **kw):
    return J(name, "/write_file", {"content": content, "path": path}, **kw)


def multipart(name, parts, key=TOKEN):
    """parts: list of (field, value) with value str or (filename, bytes, content_type|None)."""
    boundary = "sbxoracle" + uuid.uuid4().hex
    out = io.BytesIO()
    for field, value in parts:
        out.write(f"--{boundary}\r\n".encode())
        if isinstance(value, tuple):
            fn, data, ctype = value
            out.write(f'Content-Disposition: form-data; name="{field}"; filename="{fn}"\r\n'.encode())
            if ctype:
                out.write(f"Content-Type: {ctype}\r\n".encode())
            out.write(b"\r\n" + data + b"\r\n")
        else:
            out.write(f'Content-Disposition: form-data; name="{field}"\r\n\r\n{value}\r\n'.encode())
    out.write(f"--{boundary}--\r\n".encode())
    return step(name, "POST", "/upload", out.getvalue(), {"Content-Type": f"multipart/form-data; boundary={boundary}"},
                key=key)


def zipped_dir() -> bytes:
    """Like shutil.make_archive(base, "zip", dir): entries relative to the dir, dirs have entries."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("file1.txt", "test1")
        z.writestr("sub/", "")
        z.writestr("sub/file2.txt", "test2\r\nline2\n")
    return buf.getvalue()


# --- the sequence -------------------------------------------------------------

W = WORK + "/work"
HEREDOC_PY = "\n".join(["python <<EOF", "print('hello world')", "print('hello world 2')", "EOF"])
HEREDOC_CAT = "cat <<'EOF'\nliteral $HOME `x`\n  indented\nEOF\necho after"
MULTILINE = "\n\n\n echo 'test1' \n  \n \n echo 'test2' \n\n\n"


def steps():
    s = []
    # auth (§2.1) and routing
    s += [
        step("root", "GET", "/"),
        step("is_alive", "GET", "/is_alive"),
        step("is_alive no key", "GET", "/is_alive", key=None),
        step("is_alive empty key", "GET", "/is_alive", key=""),
        step("is_alive wrong key", "GET", "/is_alive", key="wrong"),
        step("execute no key", "POST", "/execute", b'{"command": "true"}', {"Content-Type": "application/json"}, key=None),
        step("execute wrong key", "POST", "/execute", b'{"command": "true"}', {"Content-Type": "application/json"}, key="x"),
        step("unknown path", "GET", "/nope"),
        step("unknown path no key", "GET", "/nope", key=None),
        step("GET /execute (wrong method)", "GET", "/execute"),
        step("GET /close (wrong method)", "GET", "/close"),
        step("POST / (wrong method)", "POST", "/"),
    ]
    # sessions
    s += [
        create("create default"),
        create("create default again"),
        run("echo hi", "echo hi"),
        run("two echos", "echo 'hello world'; echo 'hello again'"),
        run("printf newline x", "printf '\\nx'"),
        run("printf leading spaces", "printf '  x'"),
        run("echo empty", "echo ''"),
        run("echo -n", "echo -n no-newline"),
        run("only comment", "# echo 'hello world'"),
        run("comment lines", "# a\n# b"),
        run("empty command", ""),
        run("whitespace command", "   \n  "),
        run("multi-line", MULTILINE),
        run("heredoc python", HEREDOC_PY),
        run("heredoc quoted cat", HEREDOC_CAT),
        run("quoted newline", "echo 'a\nb'"),
        run("line continuation", "echo a \\\n  b"),
        run("syntax error (a", "(a"),
        run("syntax error a='", "a='"),
        run("syntax error for", "for"),
        run("syntax error check=raise", "if then fi", check="raise"),
        run("[[ ]] (bashlex fallback)", "[[ 1 -eq 1 ]] && echo yes"),
        run("A=() ; false", "A=(); false"),
        run("arrays", "A=(1 2 3); echo ${A[1]} ${#A[@]}"),
        run("false silent", "false"),
        run("false ignore", "false", check="ignore"),
        run("false raise", "false", check="raise"),
        run("false raise error_msg", "false", check="raise", error_msg="my error"),
        run("exit 3 subshell", "(exit 3)"),
        run("command not found", "doesntexist"),
        run("false && true", "false && true"),
        run("stderr", "echo out; echo err >&2"),
        run("cd keeps state", "cd /tmp && pwd"),
        run("pwd after cd", "pwd"),
        run("cd back", f"cd {W}"),
        run("export", "export SBX_X=1"),
        run("env persists", "echo $SBX_X"),
        run("function", "f() { echo \"f:$1\"; }\nf one; f two"),
        run("for loop", "for i in 1 2 3; do echo $i; done"),
        run("while loop", "i=0; while [ $i -lt 3 ]; do echo w$i; i=$((i+1)); done"),
        run("if/else multi-line", "if true; then\n  echo yes\nelse\n  echo no\nfi"),
        run("pipes and subst", "echo $(echo inner) | tr a-z A-Z"),
        run("crlf output", "printf 'a\\r\\nb\\rc\\n'"),
        run("ansi colours", "printf '\\033[31mred\\033[0m\\n'"),
        run("invalid utf-8", "printf '\\xff\\xfe ok\\n'"),
        run("unicode", "echo 'héllo ✓ 日本'"),
        run("seq 2000", "seq 1 2000"),
        run("tab and backslash", "printf 'a\\tb\\\\c\\n'"),
        run("background job", "(sleep 0.2) &", pid=True),
        run("after background", "sleep 0.6; echo after"),
        run("echo $$", "echo $$", pid=True),
        run("minimal fields", "echo minimal", check="silent", timeout=None),
        J("defaults only (command)", "/run_in_session", {"command": "echo defaults", "action_type": "bash"}),
        J("timeout as string", "/run_in_session", bash("echo s", timeout="5")),
        J("unknown extra field", "/run_in_session", {**bash("echo extra"), "bogus": 1}),
        # timeouts and interrupts (§5.3, §5.5)
        run("sleep times out", "sleep 5", timeout=0.5),
        interrupt("interrupt after timeout"),
        run("after interrupt", "echo after-interrupt", ctrl_c=True),
        interrupt("interrupt idle session"),
        run("after idle interrupt", "echo still-ok", ctrl_c=True),
        # expect patterns (§5.7)
        run("expect pattern (ignore)", "printf 'Proceed? [y/n] '; read ans; echo \"got:$ans\"", check="ignore",
            expect=[r"\[y/n\] "]),
        run("answer the prompt", "yes-answer", check="ignore"),
        run("expect regex dotall", "printf 'one\\ntwo MARK\\n'", check="ignore", expect=["one.two MARK"]),
        run("expect never matches", "echo x", expect=["NEVERMATCHES"]),
        # interactive python (§5.4)
        run("python REPL", "python", interactive=True, expect=[">>> "]),
        run("python 1+1", "1+1", interactive=True, expect=[">>> "]),
        run("python print", "print('hi from py')", interactive=True, expect=[">>> "]),
        run("python multi-line def", "def g():\n    return 42\n", interactive=True, expect=[">>> "]),
        run("python call", "g()", interactive=True, expect=[">>> "]),
        run("python quit", "quit()", quit_=True),
        run("shell after python", "echo back-in-bash"),
        # sessions: startup_source, timeouts, several sessions
        write("write startup file", f"{W}/startup.sh", "export SBX_STARTUP=yes\necho sourced\n"),
        create("create with startup_source", session="s2", startup_source=[f"{W}/startup.sh"]),
        run("startup var visible", "echo $SBX_STARTUP", session="s2"),
        run("isolated from default", "echo \"[$SBX_X]\"", session="s2"),
        write("write slow startup", f"{W}/slow.sh", "sleep 3\n"),
        create("create startup timeout", session="slow", startup_source=[f"{W}/slow.sh"], startup_timeout=0.5),
        create("create slow again", session="slow"),
        close_s("close slow", session="slow"),
        create("create python-timeout session", session="s3"),
        run("interactive never matches", "python", session="s3", interactive=True, expect=["WONTHITTHIS"], timeout=0.3),
        close_s("close s3", session="s3"),
        create("create pager session", session="s4"),
        run("pager times out", "echo 'blargh'|less -+F", session="s4", timeout=0.3),
        interrupt("interrupt pager", session="s4", racy_output=True),
        close_s("close s4", session="s4"),
        run("unknown session", "echo x", session="nonexistent"),
        interrupt("interrupt unknown session", session="nonexistent"),
        close_s("close unknown session", session="nonexistent"),
        close_s("close s2", session="s2"),
        close_s("close s2 twice", session="s2"),
    ]
    # malformed bodies (422)
    hj = {"Content-Type": "application/json"}
    s += [
        step("run malformed JSON", "POST", "/run_in_session", b'{"command": ', hj),
        step("run empty body", "POST", "/run_in_session", b"", hj),
        step("run JSON array", "POST", "/run_in_session", b"[1]", hj),
        J("run missing action_type", "/run_in_session", {"command": "echo hi"}),
        J("run bad action_type", "/run_in_session", {"command": "echo hi", "action_type": "nope"}),
        J("run missing command", "/run_in_session", {"action_type": "bash"}),
        J("run bad check", "/run_in_session", bash("echo hi", check="maybe")),
        J("run timeout not a number", "/run_in_session", bash("echo hi", timeout="soon")),
        step("run text/plain body", "POST", "/run_in_session", json.dumps(bash("echo plain")).encode(),
             {"Content-Type": "text/plain"}),
        J("create missing session_type", "/create_session", {"session": "x"}),
        J("create bad startup_timeout", "/create_session", {"session": "x", "session_type": "bash",
                                                             "startup_timeout": "slow"}),
        J("execute missing command", "/execute", {"shell": True}),
        J("execute command wrong type", "/execute", {"command": 3}),
        J("write_file missing content", "/write_file", {"path": f"{W}/x"}),
        J("read_file missing path", "/read_file", {}),
        step("close_session no body", "POST", "/close_session", None),
    ]
    # execute (§6)
    s += [
        execute("execute shell", "echo hi", shell=True),
        execute("execute argv", ["echo", "a", "b"]),
        execute("execute string without shell", "echo hi"),
        execute("execute missing program", ["doesnotexist-prog"]),
        execute("execute shell list", ["echo $0-$1", "x", "y"], shell=True),
        execute("execute env replaces", "echo \"FOO=$FOO HOME=$HOME\"", shell=True, env={"FOO": "bar"}),
        execute("execute env empty argv", ["/usr/bin/env"], env={}),
        execute("execute cwd", ["pwd"], cwd="/tmp"),
        execute("execute cwd missing", ["pwd"], cwd="/nonexistent-dir"),
        execute("execute cwd is a file", ["pwd"], cwd="/etc/hostname"),
        execute("execute not executable", ["/etc/hostname"]),
        execute("execute separate streams", "echo out; echo err >&2", shell=True),
        execute("execute merged streams", "echo out; echo err >&2; echo out2", shell=True, merge=True),
        execute("execute timeout", "sleep 3", shell=True, timeout=0.5),
        execute("execute exit 3", "exit 3", shell=True),
        execute("execute check raise", "echo o; echo e >&2; exit 3", shell=True, check=True, error_msg="boom"),
        execute("execute check ok", "true", shell=True, check=True),
        execute("execute killed by signal", "kill -9 $$", shell=True),
        execute("execute invalid utf-8", "printf '\\377\\n'", shell=True),
        execute("execute crlf kept", "printf 'a\\r\\nb\\n'", shell=True),
        execute("execute empty shell check", "", shell=True, check=True),
        execute("execute newline shell check", "\n", shell=True, check=True),
        execute("execute stdin is devnull", "cat; echo rc=$?", shell=True, timeout=5),
        execute("execute float timeout int", ["true"], timeout=2),
    ]
    # files (§7)
    s += [
        write("write_file", f"{W}/a.txt", "hello\nworld\n"),
        read("read_file", f"{W}/a.txt"),
        write("write_file nested dirs", f"{W}/deep/er/b.txt", "nested"),
        read("read_file nested", f"{W}/deep/er/b.txt"),
        write("write_file overwrite", f"{W}/a.txt", "short"),
        read("read_file overwritten", f"{W}/a.txt"),
        write("write_file unicode", f"{W}/u.txt", "héllo ✓\n"),
        read("read_file unicode", f"{W}/u.txt"),
        write("write_file relative", "rel.txt", "relative"),
        read("read_file relative", "rel.txt"),
        execute("check relative path landed in cwd", ["cat", f"{W}/rel.txt"]),
        write("write_file crlf content", f"{W}/crlf-w.txt", "a\r\nb\n"),
        execute("crlf written as is", ["od", "-c", f"{W}/crlf-w.txt"]),
        read("read_file missing", f"{W}/missing.txt"),
        read("read_file missing relative", "non_existent.txt"),
        read("read_file directory", W),
        write("write_file onto directory", W, "x"),
        write("write_file under a file", f"{W}/a.txt/sub", "x"),
        execute("make crlf file", f"printf 'a\\r\\nb\\rc\\n' > {W}/crlf.txt", shell=True),
        read("read_file crlf (universal newlines)", f"{W}/crlf.txt"),
        # /bin/sh is dash: its printf knows octal escapes, not \\x
        execute("make latin-1 file", f"printf '\\351t\\351\\n' > {W}/latin1.txt", shell=True),
        read("read_file latin-1 as utf-8", f"{W}/latin1.txt"),
        read("read_file latin-1 encoding", f"{W}/latin1.txt", encoding="latin-1"),
        read("read_file errors=replace", f"{W}/latin1.txt", errors="replace"),
        read("read_file errors=backslashreplace", f"{W}/latin1.txt", errors="backslashreplace"),
        read("read_file unknown encoding", f"{W}/a.txt", encoding="nope"),
        read("read_file utf-16", f"{W}/a.txt", encoding="utf-16"),
        execute("make large file", f"head -c 1048576 /dev/zero | tr '\\0' 'x' > {W}/large.txt", shell=True),
        execute("large file size", ["wc", "-c", f"{W}/large.txt"]),
    ]
    # upload (§2.4)
    s += [
        multipart("upload file", [("file", ("source.txt", b"uploaded\n", None)), ("target_path", f"{W}/up/target.txt"),
                                  ("unzip", "false")]),
        read("read uploaded file", f"{W}/up/target.txt"),
        multipart("upload file no unzip field", [("file", ("s.txt", b"x", None)), ("target_path", f"{W}/up/t2.txt")]),
        read("read upload 2", f"{W}/up/t2.txt"),
        multipart("upload zipped dir", [("file", ("zipped_transfer.zip", zipped_dir(), "application/zip")),
                                        ("target_path", f"{W}/updir"), ("unzip", "true")]),
        read("read unzipped file1", f"{W}/updir/file1.txt"),
        read("read unzipped sub/file2", f"{W}/updir/sub/file2.txt"),
        execute("list unzipped", "cd " + W + "/updir && find . | sort", shell=True),
        multipart("upload bad zip", [("file", ("zipped_transfer.zip", b"not a zip", "application/zip")),
                                     ("target_path", f"{W}/badzip"), ("unzip", "true")]),
        multipart("upload unzip=1", [("file", ("z.zip", zipped_dir(), None)), ("target_path", f"{W}/updir1"),
                                     ("unzip", "1")]),
        execute("list updir1", "cd " + W + "/updir1 && find . | sort", shell=True),
        multipart("upload into existing dir", [("file", ("x.txt", b"into-dir", None)), ("target_path", f"{W}/updir")]),
        execute("list after upload into dir", "cd " + W + "/updir && find . | sort", shell=True),
        multipart("upload missing target_path", [("file", ("x.txt", b"x", None))]),
        multipart("upload missing file", [("target_path", f"{W}/nofile")]),
        multipart("upload no key", [("file", ("x.txt", b"x", None)), ("target_path", f"{W}/nokey")], key=None),
        step("upload not multipart", "POST", "/upload", b"{}", {"Content-Type": "application/json"}),
    ]
    # X-Request-ID replay (§2.2)
    s += [
        run("counter init", "N=0"),
        run("counter 1 (rid-1)", "N=$((N+1)); echo $N", rid="rid-1"),
        run("counter replay rid-1", "N=$((N+1)); echo $N", rid="rid-1"),
        run("counter new id", "N=$((N+1)); echo $N", rid="rid-1b"),
        write("write with rid-2", f"{W}/rid.txt", "once", rid="rid-2"),
        execute("remove rid file", ["rm", f"{W}/rid.txt"]),
        # only the last id is remembered: the execute in between evicted rid-2
        write("write rid-2 again after another id", f"{W}/rid.txt", "once", rid="rid-2"),
        read("rid file written again", f"{W}/rid.txt"),
        write("write with rid-6", f"{W}/rid6.txt", "first", rid="rid-6"),
        write("write replay rid-6 (other content)", f"{W}/rid6.txt", "second", rid="rid-6"),
        read("rid-6 file has first content", f"{W}/rid6.txt"),
        execute("execute rid-3", ["echo", "from-execute"], rid="rid-3"),
        read("read_file with rid-3 (other route)", f"{W}/a.txt", rid="rid-3"),
        create("create rid-4", session="ridsess", rid="rid-4"),
        create("create replay rid-4", session="ridsess", rid="rid-4"),
        create("create ridsess new id", session="ridsess"),
        run("511 with rid-5", "echo x", session="nonexistent", rid="rid-5"),
        run("511 replay rid-5", "echo x", session="nonexistent", rid="rid-5"),
        run("replay after 511 uses rid-4?", "echo x", rid="rid-4"),
        close_s("close ridsess", session="ridsess"),
    ]
    # /close (§5.1)
    s += [
        step("close", "POST", "/close"),
        step("is_alive after close", "GET", "/is_alive"),
        run("run after close", "echo x"),
        create("create default after close"),
        close_s("close_session after close"),
        create("create default again after close_session"),
        run("echo after re-create", "echo recreated"),
        J("close with body", "/close", {}),
        execute("execute after close", ["echo", "alive"]),
    ]
    return s


# --- normalisation and comparison ------------------------------------------

RE_JOB = re.compile(r"^(\[\d+\]) \d+$", re.M)      # N3
RE_TMP = re.compile(r"/tmp/tmp[a-z0-9_]{8}")        # N4
RE_NUM = re.compile(r"\b\d{2,}\b")                  # N3 for pid=True steps


def norm_str(v: str, pid: bool) -> str:
    v = RE_JOB.sub(r"\1 <pid>", v)
    v = RE_TMP.sub("/tmp/<tmp>", v)
    if pid:
        v = RE_NUM.sub("<pid>", v)
    return v


RE_CTRL_C = re.compile(r"^(\^C\n?)+")                 # N5


def normalise(body, pid: bool, ctrl_c: bool = False):
    if ctrl_c and isinstance(body, dict) and isinstance(body.get("output"), str):
        body = {**body, "output": RE_CTRL_C.sub("", body["output"])}
    if isinstance(body, dict) and isinstance(body.get("swerexception"), dict):
        e = dict(body["swerexception"])
        if "traceback" in e:
            e["traceback"] = "<traceback>"                                  # N1
        if str(e.get("class_path", "")).startswith("pexpect.exceptions.") and isinstance(e.get("message"), str):
            e["message"] = e["message"].split("\n", 1)[0]                   # N2
        body = {**body, "swerexception": e}

    def walk(v):
        if isinstance(v, str):
            return norm_str(v, pid)
        if isinstance(v, list):
            return [walk(x) for x in v]
        if isinstance(v, dict):
            return {k: walk(x) for k, x in v.items()}
        return v

    return walk(body)


def observe(resp, pid: bool, ctrl_c: bool = False):
    body = resp.json()
    if body is None:
        body = {"<non-JSON body>": resp.body.decode("utf-8", "backslashreplace")}
    ctype = resp.headers.get("content-type", "<none>").replace(" ", "").lower()
    return {"status": resp.status, "content-type": ctype, "body": normalise(body, pid, ctrl_c)}


def flatten(v, prefix=""):
    if isinstance(v, dict):
        out = {} if v else {prefix or ".": {}}
        for k, x in v.items():
            out.update(flatten(x, f"{prefix}.{k}" if prefix else str(k)))
        return out
    if isinstance(v, list) and v:
        out = {}
        for i, x in enumerate(v):
            out.update(flatten(x, f"{prefix}[{i}]"))
        return out
    return {prefix or ".": v}


def run_sequence(binary: str, seq, log_dir: str):
    if os.path.exists(WORK):
        shutil.rmtree(WORK)
    os.makedirs(W)
    env = {k: v for k, v in os.environ.items() if k != "TERM"}
    srv = Server(binary, cwd=W, env=env, log_path=os.path.join(log_dir, f"server-{len(os.listdir(log_dir))}.log"))
    results = []
    try:
        srv.wait_alive()
        for st in seq:
            if st["sleep"]:
                time.sleep(st["sleep"])
            try:
                resp = request(srv.port, st["method"], st["path"], st["body"], st["headers"], timeout=60)
                obs = observe(resp, st["pid"], st["ctrl_c"])
                if st["racy_output"] and isinstance(obs["body"], dict) and "output" in obs["body"]:
                    obs["body"]["output"] = "<racy>"                      # N6
                results.append(obs)
            except OSError as e:
                results.append({"status": "<no response>", "error": f"{type(e).__name__}: {e}"})
    finally:
        srv.stop()
    return results


def req_summary(st) -> str:
    body = (st["body"] or b"").decode("utf-8", "backslashreplace")
    text = repr(body[:300]) + ("..." if len(body) > 300 else "")
    hdrs = {k: v for k, v in st["headers"].items() if k in ("X-API-Key", "X-Request-ID") and not v.count("-") == 4}
    return f"{st['method']} {st['path']} {text}" + (f" headers={hdrs}" if hdrs else "")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--a", default="swerex-remote", help="reference server command (default: upstream)")
    ap.add_argument("--b", required=True, help="server command under test")
    ap.add_argument("--a-name", default="upstream")
    ap.add_argument("--b-name", default="ours")
    ap.add_argument("--only", help="run only the steps whose name contains this")
    ap.add_argument("--verbose", "-v", action="store_true", help="also print the steps that agree")
    ap.add_argument("--log-dir", default="/tmp/swerex-oracle-compare")
    args = ap.parse_args()

    seq = steps()
    if args.only:
        seq = [st for st in seq if args.only in st["name"]]
    os.makedirs(args.log_dir, exist_ok=True)
    t0 = time.monotonic()
    try:
        ra = run_sequence(args.a, seq, args.log_dir)
        rb = run_sequence(args.b, seq, args.log_dir)
    except RuntimeError as e:
        print(f"compare: setup error: {e}", file=sys.stderr)
        return 2
    ndiff = 0
    for i, (st, a, b) in enumerate(zip(seq, ra, rb), 1):
        fa, fb = flatten(a), flatten(b)
        keys = list(dict.fromkeys([*fa, *fb]))
        diffs = [k for k in keys if fa.get(k, "<absent>") != fb.get(k, "<absent>")]
        if not diffs:
            if args.verbose:
                print(f"same  {i:3d} {st['name']}: {a['status']} {json.dumps(a.get('body'))[:200]}")
            continue
        ndiff += 1
        print(f"DIFF  {i:3d} {st['name']}")
        print(f"      request: {req_summary(st)}")
        for k in diffs:
            print(f"      {k}:")
            print(f"        {args.a_name:>8}: {fa.get(k, '<absent>')!r}")
            print(f"        {args.b_name:>8}: {fb.get(k, '<absent>')!r}")
    print(f"compare: {len(seq)} requests, {len(seq) - ndiff} same, {ndiff} different "
          f"({args.a_name}={args.a!r} vs {args.b_name}={args.b!r}, {time.monotonic() - t0:.0f}s)")
    return 1 if ndiff else 0


if __name__ == "__main__":
    sys.exit(main())
