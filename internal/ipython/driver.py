# The IPython-like kernel sandboxd starts for run_ipython. It reads one
# JSON request per line from fd 3 and answers one JSON line on fd 4, so the
# cell's own stdin, stdout and stderr stay free. Requests:
#   {"id": n, "code": str, "cwd": str or null}
# Answers:
#   {"id": n, "outputs": [str, ...], "images": [str, ...]}
# The first answer, with id 0, announces sys.executable.
import ast
import builtins
import io
import json
import linecache
import os
import re
import shlex
import subprocess
import sys
import traceback

REQ = os.fdopen(3, "r", encoding="utf-8")
RESP = os.fdopen(4, "w", encoding="utf-8")
NS = {"__name__": "__main__", "__builtins__": builtins}
COUNT = [0]


class Capture(io.TextIOBase):
    """Collects what the cell prints, in order, as IPython's stream messages."""

    def __init__(self, outputs):
        self.outputs = outputs

    def writable(self):
        return True

    def write(self, s):
        if s:
            self.outputs.append(s)
        return len(s)

    def flush(self):
        pass


def system(cmd):
    sys.stdout.flush()
    p = subprocess.run(cmd, shell=True, executable="/bin/bash", stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    sys.stdout.write(p.stdout.decode("utf-8", "replace"))


def magic(line):
    name, _, arg = line[1:].partition(" ")
    arg = arg.strip()
    if name == "pip":
        return "__sbx_system(%r)" % (shlex.quote(sys.executable) + " -m pip " + arg)
    if name == "cd":
        return "__sbx_os.chdir(__sbx_os.path.expanduser(%r or '~')); print(__sbx_os.getcwd())" % arg
    if name == "pwd":
        return "__sbx_os.getcwd()"
    if name in ("env", "set_env") and "=" in arg:
        k, _, v = arg.partition("=")
        return "__sbx_os.environ[%r] = %r" % (k.strip(), v.strip())
    if name == "colors":
        return "pass"
    return "raise __sbx_usage(%r)" % ("Line magic function `%%%s` not found." % name)


class UsageError(Exception):
    pass


NS["__sbx_system"] = system
NS["__sbx_os"] = os
NS["__sbx_usage"] = UsageError


def transform(code):
    """Turns IPython syntax (!cmd, %magic, %%bash) into Python."""
    first = code.lstrip().split("\n", 1)[0].strip()
    if first in ("%%bash", "%%sh", "%%script bash"):
        body = code.lstrip().split("\n", 1)[1] if "\n" in code.lstrip() else ""
        return "__sbx_system(%r)" % body
    out = []
    for line in code.split("\n"):
        s = line.lstrip()
        indent = line[: len(line) - len(s)]
        if s.startswith("!"):
            out.append(indent + "__sbx_system(%r)" % s[1:])
        elif s.startswith("%") and not s.startswith("%%"):
            out.append(indent + magic(s))
        else:
            out.append(line)
    return "\n".join(out)


def format_error(etype, value, tb, n):
    if isinstance(value, UsageError):
        return "UsageError: %s" % value
    lines = ["-" * 75, "%-42sTraceback (most recent call last)" % etype.__name__]
    frames = traceback.extract_tb(tb)
    # Drop this driver's own frame.
    frames = [f for f in frames if f.filename != "<string>"]
    for f in frames:
        if f.filename.startswith("<cell-"):
            lines.append("Cell In[%d], line %d" % (n, f.lineno))
        else:
            lines.append("File %s:%d, in %s" % (f.filename, f.lineno, f.name))
        if f.line:
            lines.append("----> %d %s" % (f.lineno, f.line))
        lines.append("")
    lines.append("".join(traceback.format_exception_only(etype, value)).rstrip("\n"))
    return "\n".join(lines)


def run_cell(code, n):
    outputs = []
    cap = Capture(outputs)
    old = sys.stdout, sys.stderr
    sys.stdout = sys.stderr = cap
    try:
        src = transform(code)
        fname = "<cell-%d>" % n
        # Tracebacks quote the cell's lines, as IPython's do.
        linecache.cache[fname] = (len(src), None, src.splitlines(True), fname)
        try:
            tree = ast.parse(src, fname, "exec")
        except SyntaxError as e:
            e.filename = "Cell In[%d]" % n
            outputs.append("  Cell In[%d], line %s\n" % (n, e.lineno))
            outputs.append("".join(traceback.format_exception_only(SyntaxError, e)).split("\n", 1)[1]
                           if e.text else "".join(traceback.format_exception_only(SyntaxError, e)))
            return outputs
        last = None
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            last = ast.Expression(tree.body.pop().value)
        try:
            exec(compile(tree, fname, "exec"), NS)
            if last is not None:
                value = eval(compile(last, fname, "eval"), NS)
                if value is not None:
                    NS["_"] = value
                    sys.stdout.flush()
                    outputs.append(repr(value))
        except BaseException as e:  # KeyboardInterrupt and SystemExit too
            if isinstance(e, SystemExit):
                outputs.append("An exception has occurred, use %tb to see the full traceback.\n\nSystemExit: %s\n" % e)
            else:
                outputs.append(format_error(type(e), e, e.__traceback__, n))
    finally:
        sys.stdout, sys.stderr = old
    return outputs


def main():
    sys.stdin = open(os.devnull)
    RESP.write(json.dumps({"id": 0, "executable": sys.executable}) + "\n")
    RESP.flush()
    for line in REQ:
        try:
            req = json.loads(line)
        except ValueError:
            continue
        if req.get("cwd"):
            try:
                os.chdir(req["cwd"])
            except OSError:
                pass
        COUNT[0] += 1
        try:
            outputs = run_cell(req.get("code", ""), COUNT[0])
        except BaseException as e:  # an interrupt between cells
            outputs = [format_error(type(e), e, e.__traceback__, COUNT[0])]
        RESP.write(json.dumps({"id": req.get("id"), "outputs": outputs, "images": []}) + "\n")
        RESP.flush()


main()
