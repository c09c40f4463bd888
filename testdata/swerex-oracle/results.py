#!/usr/bin/env python3
"""Per-test table of upstream's test results, upstream server vs ours.

    results.py upstream.xml [ours.xml]

Reads pytest --junitxml files, prints one line per test with the outcome on
each server, then a summary line. Exit status 1 if a test that passed (or
xfailed) on the upstream server fails, errors or is missing on ours.
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET


def outcomes(path: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for tc in ET.parse(path).getroot().iter("testcase"):
        mod = tc.get("classname", "").replace(".", "/")
        name = f"{mod}.py::{tc.get('name')}"
        st = "passed"
        for child in tc:
            if child.tag in ("failure", "error"):
                st = "error" if child.tag == "error" else "failed"
                break
            if child.tag == "skipped":
                st = "xfailed" if (child.get("type") == "pytest.xfail") else "skipped"
        # a teardown error adds a second <testcase> entry for the same test
        if out.get(name) in ("failed", "error"):
            continue
        out[name] = st
    return out


def count(o: dict[str, str]) -> str:
    keys = ["passed", "failed", "error", "xfailed", "skipped"]
    c = {k: sum(1 for v in o.values() if v == k) for k in keys}
    return ", ".join(f"{c[k]} {k}" for k in keys if c[k] or k in ("passed", "failed"))


def main() -> int:
    a = outcomes(sys.argv[1])
    b = outcomes(sys.argv[2]) if len(sys.argv) > 2 else None
    names = list(dict.fromkeys([*a, *(b or {})]))
    width = max(len(n) for n in names) if names else 10
    print(f"{'test':<{width}}  {'upstream':<9}" + ("  ours" if b is not None else ""))
    regressions = []
    for n in names:
        sa = a.get(n, "missing")
        line = f"{n:<{width}}  {sa:<9}"
        if b is not None:
            sb = b.get(n, "missing")
            bad = sa in ("passed", "xfailed") and sb in ("failed", "error", "missing")
            if bad:
                regressions.append(n)
            line += f"  {sb}" + ("   <-- REGRESSION" if bad else "")
        print(line)
    if b is None:
        print(f"swerex-oracle tests: upstream server: {count(a)}")
        return 0
    print(f"swerex-oracle tests: upstream server: {count(a)}; ours: {count(b)}; "
          f"{len(regressions)} failing on ours only")
    for n in regressions:
        print(f"  failing on ours only: {n}")
    return 1 if regressions else 0


if __name__ == "__main__":
    sys.exit(main())
