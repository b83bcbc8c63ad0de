"""Benchmark `kit apply` with 500 assistants, beside a naive loop with the official SDK.

    PYTHONPATH=$PWD python bench/apply.py [--count 500] [--parallelism 8]

Three applies (first, no-op, 10% changed) on the embedded server in-process, then the same on
`kit serve` over loopback (DashScope dialect), and the naive way on that server with the
official `dashscope` SDK: list every assistant, then update each one with its spec's fields.
Prints wall time and request counts. Goals: a no-op apply makes ceil(count/100) list calls and
no writes, and is at least 10x faster than the naive loop.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import math
import os
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

# the official SDK marks its Assistants API deprecated; using it is the point of the comparison
warnings.filterwarnings("ignore", message=".*Assistants API.*deprecated")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "conformance"))

from assistant_kit.connect import open_target  # noqa: E402
from assistant_kit.spec.project import load_project  # noqa: E402
from assistant_kit.sync.apply import apply_plan  # noqa: E402
from assistant_kit.sync.plan import PAGE_SIZE, build_plan  # noqa: E402

SPEC = """\
name: bot-{i:03d}
display_name: Bot {i}
model: qwen-max
description: Benchmark assistant {i}
instructions: |
  You are benchmark assistant number {i} of {{{{ company }}}}.
  Version {version}. Answer briefly.
tools:
  - code_interpreter
  - type: function
    name: lookup_{i}
    description: Look something up
    parameters: {{type: object, properties: {{q: {{type: string}}}}, required: [q]}}
settings: {{temperature: 0.5, top_p: 0.8}}
metadata: {{team: bench}}
"""


@dataclass
class Counting(httpx.AsyncBaseTransport):
    inner: httpx.AsyncBaseTransport
    counts: collections.Counter[str] = field(default_factory=collections.Counter)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        kind = "list" if request.method == "GET" else request.method
        if request.method == "POST":
            kind = "create" if request.url.path.endswith("/assistants") else "update"
        self.counts[kind] += 1
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def write_project(folder: Path, count: int, changed: int, target_block: str) -> None:
    (folder / "assistants").mkdir(parents=True, exist_ok=True)
    (folder / "kit.yaml").write_text(
        f"vars: {{company: Bench Co}}\ntargets:\n{target_block}", encoding="utf-8"
    )
    for i in range(count):
        version = 2 if i < changed else 1
        (folder / "assistants" / f"bot-{i:03d}.yaml").write_text(
            SPEC.format(i=i, version=version), encoding="utf-8"
        )


async def kit_apply(folder: Path, target: str, parallelism: int) -> dict[str, Any]:
    started = time.perf_counter()
    project = load_project(target=target, cwd=folder)
    loaded = time.perf_counter()
    counter: list[Counting] = []

    def wrap(t: httpx.AsyncBaseTransport) -> httpx.AsyncBaseTransport:
        counter.append(Counting(t))
        return counter[0]

    async with open_target(project, wrap=wrap) as client:
        plan = await build_plan(
            client, project.specs, target=target, dialect=project.target.dialect
        )
        report = await apply_plan(client, plan, parallelism=parallelism)
    assert report.ok, [o.error for o in report.failed][:3]
    done = time.perf_counter()
    return {
        "wall_s": done - loaded,
        "load_s": loaded - started,
        "counts": dict(counter[0].counts),
        "plan": plan.counts,
    }


def naive_loop(url: str, key: str, folder: Path, target: str) -> dict[str, Any]:
    """The official SDK the simple way: list everything, then update every assistant."""
    import dashscope

    dashscope.base_http_api_url = url
    dashscope.api_key = key
    started = time.perf_counter()
    project = load_project(target=target, cwd=folder)
    by_name = {s.name: s for s in project.specs}
    loaded = time.perf_counter()
    calls = collections.Counter[str]()
    everyone: list[Any] = []
    after = None
    while True:
        page = dashscope.Assistants.list(limit=PAGE_SIZE, order="asc", after=after)
        calls["list"] += 1
        everyone.extend(page.data)
        if not page.has_more or not page.data:
            break
        after = page.data[-1].id
    for assistant in everyone:
        name = (assistant.metadata or {}).get("kit_name")
        spec = by_name.get(name)
        if spec is None:
            continue
        body = spec.to_payload("dashscope")
        result = dashscope.Assistants.update(
            assistant.id,
            model=body["model"],
            name=body["name"],
            description=body.get("description"),
            instructions=body.get("instructions"),
            tools=body["tools"],
            metadata={**body["metadata"], **(assistant.metadata or {})},
            temperature=body.get("temperature"),
            top_p=body.get("top_p"),
        )
        assert result.status_code == 200, result
        calls["update"] += 1
    done = time.perf_counter()
    return {"wall_s": done - loaded, "load_s": loaded - started, "counts": dict(calls)}


def row(label: str, result: dict[str, Any]) -> str:
    counts = result["counts"]
    shown = ", ".join(
        f"{k} {counts[k]}" for k in ("list", "create", "update", "DELETE") if k in counts
    )
    return (
        f"  {label:<32} {result['wall_s']:7.3f} s  (+{result['load_s']:.3f} s loading specs)"
        f"   requests: {shown or 'none'}"
    )


async def embedded(count: int, parallelism: int) -> dict[str, dict[str, Any]]:
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        block = "  local: {provider: local, dialect: dashscope}\n"
        write_project(folder, count, 0, block)
        results["first apply"] = await kit_apply(folder, "local", parallelism)
        results["no-op apply"] = await kit_apply(folder, "local", parallelism)
        write_project(folder, count, count // 10, block)
        results["10% changed"] = await kit_apply(folder, "local", parallelism)
    return results


def served(count: int, parallelism: int) -> dict[str, dict[str, Any]]:
    from kit_server import running_kit_server

    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        with running_kit_server(database=str(folder / "serve.db"), output_dir=folder) as server:
            block = (
                f"  served: {{provider: local, base_url: '{server.dashscope_url}',"
                " dialect: dashscope, api_key_env: BENCH_KIT_KEY}\n"
            )
            os.environ["BENCH_KIT_KEY"] = server.api_key
            write_project(folder, count, 0, block)
            results["first apply"] = asyncio.run(kit_apply(folder, "served", parallelism))
            results["no-op apply"] = asyncio.run(kit_apply(folder, "served", parallelism))
            results["naive SDK loop (list + update)"] = naive_loop(
                server.dashscope_url, server.api_key, folder, "served"
            )
            write_project(folder, count, count // 10, block)
            results["10% changed"] = asyncio.run(kit_apply(folder, "served", parallelism))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--parallelism", type=int, default=8)
    args = parser.parse_args()
    pages = math.ceil(args.count / PAGE_SIZE)
    print(f"{args.count} assistants, page size {PAGE_SIZE}, parallelism {args.parallelism}")
    print("times: plan + apply (or the naive loop) after the specs are loaded")

    print("\nembedded server, in-process (DashScope dialect):")
    inproc = asyncio.run(embedded(args.count, args.parallelism))
    for label, result in inproc.items():
        print(row(label, result))

    print("\nkit serve on loopback (DashScope dialect):")
    loop = served(args.count, args.parallelism)
    for label, result in loop.items():
        print(row(label, result))

    noop = loop["no-op apply"]
    naive = loop["naive SDK loop (list + update)"]
    writes = sum(v for k, v in noop["counts"].items() if k != "list")
    print("\ngoals:")
    print(
        f"  no-op apply list calls: {noop['counts'].get('list', 0)} (goal {pages}), "
        f"writes: {writes} (goal 0); in-process: "
        f"{inproc['no-op apply']['counts'].get('list', 0)} list calls"
    )
    print(
        f"  naive loop / no-op apply on kit serve: {naive['wall_s'] / noop['wall_s']:.1f}x "
        f"(goal >= 10x); naive loop / in-process no-op apply: "
        f"{naive['wall_s'] / inproc['no-op apply']['wall_s']:.1f}x"
    )
    whole_naive = naive["wall_s"] + naive["load_s"]
    whole_noop = noop["wall_s"] + noop["load_s"]
    print(
        f"  with spec loading counted on both sides: {whole_naive:.3f} s / {whole_noop:.3f} s"
        f" = {whole_naive / whole_noop:.1f}x (loading {args.count} spec files is the spec layer's"
        " share)"
    )
    # machine-readable figures for bench/run_all.py
    print(
        f"FIGURE apply_noop_list_calls={noop['counts'].get('list', 0)} goal=max:{pages} unit=calls"
    )
    print(f"FIGURE apply_noop_writes={writes} goal=max:0 unit=calls")
    print(
        f"FIGURE apply_noop_speedup={naive['wall_s'] / noop['wall_s']:.1f} goal=min:10 "
        "unit=x (naive SDK loop / no-op apply)"
    )


if __name__ == "__main__":
    main()
