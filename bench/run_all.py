"""Run every benchmark under bench/ and print one table of figures against their goals.

    python bench/run_all.py                    # every script, full size
    python bench/run_all.py --only fuzz,validate --markdown
    python bench/run_all.py --skip local_model --logs bench-logs/

Each script runs as a subprocess from the repository root (this checkout first on PYTHONPATH)
and ends its output with lines of the form

    FIGURE <name>=<value> [goal=min:<n>|max:<n>] [unit=<text to the end of the line>]

which this script collects into one table: figure, value, unit, goal, met?. A script that fails,
times out, or prints no figure shows up as a row saying so. Exits 0 when every goal is met.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
#: The order figures are shown in; any other bench/*.py script runs after these.
ORDER = [
    "validate",
    "server_crud",
    "runs",
    "run_path",
    "apply",
    "test_suite",
    "local_model",
    "fuzz",
]
#: Scripts that need an optional extra: module that must be importable.
NEEDS = {"local_model": "llama_cpp"}
FIGURE = re.compile(
    r"^FIGURE (?P<name>[\w.\-]+)=(?P<value>\S+)"
    r"(?: goal=(?P<goal>(?:min|max):[-+0-9.eE]+))?"
    r"(?: unit=(?P<unit>.*))?$"
)


@dataclass(frozen=True)
class Figure:
    script: str
    name: str
    value: str
    unit: str = ""
    goal: str = ""

    @property
    def met(self) -> bool | None:
        """Whether the value meets the goal (``None``: no goal, or not a number)."""
        if not self.goal:
            return None
        kind, _, bound = self.goal.partition(":")
        try:
            value, limit = float(self.value), float(bound)
        except ValueError:
            return None
        return value >= limit if kind == "min" else value <= limit

    @property
    def goal_text(self) -> str:
        if not self.goal:
            return "-"
        kind, _, bound = self.goal.partition(":")
        return (">= " if kind == "min" else "<= ") + bound


def parse_figures(script: str, output: str) -> list[Figure]:
    """Every ``FIGURE`` line of a script's output."""
    figures = []
    for line in output.splitlines():
        match = FIGURE.match(line.strip())
        if match:
            figures.append(
                Figure(
                    script,
                    match["name"],
                    match["value"],
                    (match["unit"] or "").strip(),
                    match["goal"] or "",
                )
            )
    return figures


def scripts(only: set[str], skip: set[str]) -> list[str]:
    found = {p.stem for p in BENCH.glob("*.py") if p.stem not in ("run_all", "__init__")}
    ordered = [s for s in ORDER if s in found] + sorted(found - set(ORDER))
    return [s for s in ordered if (not only or s in only) and s not in skip]


def run(script: str, timeout: float, logs: Path) -> tuple[list[Figure], str, float]:
    """Run one script; its figures, a status word, and the seconds it took."""
    module = NEEDS.get(script)
    if module is not None and importlib.util.find_spec(module) is None:
        return [], f"skipped ({module} not installed)", 0.0
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    started = time.perf_counter()
    try:
        done = subprocess.run(
            [sys.executable, str(BENCH / f"{script}.py")],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        output = _text(exc.stdout) + _text(exc.stderr)
        (logs / f"{script}.log").write_text(output, encoding="utf-8")
        return parse_figures(script, output), f"timed out after {timeout:.0f}s", timeout
    elapsed = time.perf_counter() - started
    output = done.stdout + ("\n" + done.stderr if done.stderr else "")
    (logs / f"{script}.log").write_text(output, encoding="utf-8")
    figures = parse_figures(script, done.stdout)
    if done.returncode != 0:
        status = f"exit {done.returncode}"
    elif not figures:
        status = "no FIGURE lines"
    else:
        status = "ok"
    return figures, status, elapsed


def _text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def table(rows: list[list[str]], markdown: bool) -> str:
    header = ["figure", "value", "unit", "goal", "met?", "script"]
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="", help="comma-separated scripts to run (no .py)")
    parser.add_argument("--skip", default="", help="comma-separated scripts to leave out")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per script")
    parser.add_argument("--logs", type=Path, help="folder for each script's full output")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    args = parser.parse_args()
    only = {s for s in args.only.split(",") if s}
    skip = {s for s in args.skip.split(",") if s}
    logs = args.logs or Path(tempfile.mkdtemp(prefix="kit-bench-"))
    logs.mkdir(parents=True, exist_ok=True)

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    started = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print(
        f"bench/run_all.py on {started}: {os.cpu_count()} CPUs, {platform.machine()}, "
        f"Python {platform.python_version()}, load average {load:.2f}"
    )
    rows: list[list[str]] = []
    all_met = True
    for script in scripts(only, skip):
        print(f"  {script:<12} ...", end="", flush=True)
        figures, status, elapsed = run(script, args.timeout, logs)
        print(f" {status} ({elapsed:.0f}s)", flush=True)
        for figure in figures:
            met = figure.met
            all_met &= met is not False
            verdict = "-" if met is None else ("yes" if met else "NO")
            rows.append([figure.name, figure.value, figure.unit, figure.goal_text, verdict, script])
        if status != "ok" and not status.startswith("skipped"):
            all_met = False
        if status != "ok":
            rows.append(
                ["(" + status + ")", "-", "-", "-", "-" if "skipped" in status else "NO", script]
            )
    print()
    print(table(rows, args.markdown))
    print(f"\nfull output of each script: {logs}")
    print("reproduce: python bench/run_all.py" + (" --markdown" if args.markdown else ""))
    return 0 if all_met else 1


if __name__ == "__main__":
    sys.exit(main())
