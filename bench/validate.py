"""Time `kit validate` over 1,000 generated spec files (goal: under 2 s).

Usage: python bench/validate.py [COUNT]

Prints the best of three runs (the machine is shared; the minimum is the least disturbed).
Writes COUNT specs (function tools, settings, metadata, a Jinja2 include and a conversation test
with mocks each) plus a kit.yaml into a temporary folder, then times
* `python -m assistant_kit validate` as a subprocess (what a user waits for, start-up included),
  (it checks the files in one forked worker per core), with the CPU time it used,
* `load_project()` in-process in one process (the spec layer alone, schemas compiled).
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RUNS = 3

SPEC = """\
# yaml-language-server: $schema=../schemas/assistant.schema.json
name: bench-{i:04d}
display_name: Bench assistant {i}
model: qwen-max
description: Generated assistant number {i} for the validate benchmark.
instructions: |
  You are assistant {i} of {{{{ company }}}}.
  Look orders up before answering.
  {{% include "tone.md.j2" %}}
tools:
  - quark_search
  - type: function
    name: get_order_{i}
    description: Look up an order.
    parameters:
      type: object
      properties:
        order_id: {{type: integer, minimum: 1}}
        verbose: {{type: boolean}}
      required: [order_id]
settings: {{temperature: 0.5, top_p: 0.9, max_tokens: 512}}
metadata: {{team: bench, index: "{i}"}}
tests:
  - name: looks up an order
    tags: [smoke]
    mocks:
      get_order_{i}: {{returns: {{status: shipped}}}}
    turns:
      - user: Where is order 42?
        expect:
          - tool_called: {{name: get_order_{i}, args: {{order_id: 42}}}}
          - icontains: shipped
          - not: {{regex: "(?i)sorry"}}
"""


def write_project(root: Path, count: int) -> None:
    (root / "assistants" / "partials").mkdir(parents=True)
    (root / "kit.yaml").write_text("specs: assistants\nvars: {company: Acme}\n", encoding="utf-8")
    (root / "assistants" / "partials" / "tone.md.j2").write_text("Be brief.\n", encoding="utf-8")
    for i in range(count):
        (root / "assistants" / f"bench-{i:04d}.yaml").write_text(SPEC.format(i=i), encoding="utf-8")


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    repo = Path(__file__).resolve().parent.parent
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(repo), os.environ.get("PYTHONPATH")])),
    }
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_project(root, count)

        cli_runs = []
        cpu_runs = []
        for _ in range(RUNS):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-m", "assistant_kit", "validate"],
                cwd=root,
                env=env,
                capture_output=True,
                text=True,
            )
            cli_runs.append(time.perf_counter() - start)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu_runs.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
            if done.returncode != 0:
                sys.exit(f"kit validate failed ({done.returncode}):\n{done.stderr[:2000]}")
        cli_s = min(cli_runs)

        sys.path.insert(0, str(repo))
        from assistant_kit.spec.project import load_project

        load_project(cwd=root)  # compile the schemas once, as the CLI run did
        lib_runs = []
        for _ in range(RUNS):
            start = time.perf_counter()
            project = load_project(cwd=root, jobs=1)
            lib_runs.append(time.perf_counter() - start)
            assert len(project.specs) == count
        lib_s = min(lib_runs)

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"machine: {os.cpu_count()} cores, load average {load:.2f}; best of {RUNS} runs")
    print(f"kit validate, {count} specs (subprocess, start-up included): {cli_s:.2f} s wall")
    print(f"kit validate, CPU time of that process and its workers: {min(cpu_runs):.2f} s")
    print(f"load_project, {count} specs (in-process, one process): {lib_s:.2f} s wall")
    print(
        f"per spec: {lib_s / count * 1000:.2f} ms; goal: kit validate under 2 s -> "
        f"{'ok' if cli_s < 2 else 'MISSED'}"
    )
    # machine-readable figures for bench/run_all.py
    print(f"FIGURE validate_{count}_specs_s={cli_s:.3f} goal=max:2 unit=s")
    print(f"FIGURE load_project_per_spec_ms={lib_s / count * 1000:.3f} unit=ms")


if __name__ == "__main__":
    main()
