"""Fuzz the spec layer and the HTTP API with many random cases; print the count and findings.

    python bench/fuzz.py                 # 10,000 cases: half spec files, half HTTP requests
    python bench/fuzz.py --cases 50000 --seed 7

The checks are the reliability suite's (``tests/reliability/kit_fuzz_*.py``): a spec file or
kit.yaml may only raise the kit's own errors with ``file:line:col`` issues; an HTTP request may
never get a 5xx, and every error must be in the dialect's envelope. CI runs the same checks with
a few hundred cases; this runs them at scale, randomly (a new seed every run unless ``--seed``).

Prints one line per target, each finding with the input that caused it, and ``FIGURE`` lines
(``FIGURE name=value goal=min:N|max:N unit=...``) that ``bench/run_all.py`` collects. Exits 1
if anything was found.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "reliability")]

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import seed as hypothesis_seed  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from kit_fuzz_http import ApiUnderTest, requests  # noqa: E402
from kit_fuzz_spec import (  # noqa: E402
    VALID_KIT,
    VALID_SPEC,
    SpecCase,
    dump,
    dumped,
    inner_values,
    kit_inner_values,
    kit_structures,
    mutated,
    spec_structures,
    templates,
    yaml_texts,
)

GOAL_CASES = 10_000


def spec_targets(
    case: SpecCase,
) -> dict[str, tuple[float, st.SearchStrategy[Any], Callable[[Any], Any]]]:
    """name -> (share of the spec cases, strategy, check)."""
    kit = dump(VALID_KIT)
    spec = dump(VALID_SPEC)

    def template_spec(value: tuple[str, bool]) -> Any:
        text, block = value
        return case.check(
            dump({"name": "t", "model": "m", "instructions": text}, width=10_000 if block else 20),
            kit,
        )

    return {
        "spec: random YAML text": (0.2, yaml_texts, case.check),
        "spec: random bytes": (0.05, st.binary(max_size=200), case.check),
        "spec: random structures": (0.15, dumped(spec_structures), lambda t: case.check(t, kit)),
        "spec: mutated valid spec": (
            0.25,
            dumped(mutated(VALID_SPEC, inner_values)),
            lambda t: case.check(t, kit),
        ),
        "spec: instruction templates": (0.1, st.tuples(templates, st.booleans()), template_spec),
        "kit.yaml: random structures": (0.1, dumped(kit_structures), lambda k: case.check(spec, k)),
        "kit.yaml: mutated valid file": (
            0.1,
            dumped(mutated(VALID_KIT, kit_inner_values)),
            lambda k: case.check(spec, k),
        ),
        "kit.yaml: random YAML text": (0.05, yaml_texts, lambda k: case.check(spec, k)),
    }


def run_target(
    name: str,
    examples: int,
    strategy: st.SearchStrategy[Any],
    check: Callable[[Any], Any],
    seed: int,
) -> tuple[int, str | None, float]:
    """Run ``check`` over ``examples`` drawn values; (cases run, first finding, seconds)."""
    count = 0

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )
    @hypothesis_seed(seed)
    @given(value=strategy)
    def target(value: Any) -> None:
        nonlocal count
        count += 1
        check(value)

    started = time.perf_counter()
    try:
        target()
    except Exception as exc:  # a finding: Hypothesis re-raises it after shrinking
        notes = "\n".join(getattr(exc, "__notes__", ()))
        text = f"{type(exc).__name__}: {exc}\n{notes}".strip()[:3000]
        return count, text, time.perf_counter() - started
    return count, None, time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--cases", type=int, default=GOAL_CASES, help="total cases (default 10,000)"
    )
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: a new one)")
    parser.add_argument("--http-share", type=float, default=0.5, help="share of HTTP cases")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    http_cases = int(args.cases * args.http_share)
    spec_cases = args.cases - http_cases
    print(f"fuzz: {args.cases:,} cases, seed {seed}, {os.cpu_count()} CPUs")

    total, findings, elapsed = 0, [], 0.0
    with tempfile.TemporaryDirectory(prefix="kit-bench-fuzz-") as tmp:
        case = SpecCase(Path(tmp) / "spec")
        for name, (share, strategy, check) in spec_targets(case).items():
            n = max(1, round(spec_cases * share))
            count, finding, seconds = run_target(name, n, strategy, check, seed)
            total, elapsed = total + count, elapsed + seconds
            print(f"  {name:32} {count:7,} cases {seconds:7.1f}s  {'FOUND' if finding else 'ok'}")
            if finding:
                findings.append((name, finding))
        api = ApiUnderTest(Path(tmp) / "kit.db")
        try:
            name = "http: requests from openapi.json"
            count, finding, seconds = run_target(
                name,
                http_cases,
                st.data(),
                lambda data: api.check(data.draw(requests(api.pool))),
                seed,
            )
        finally:
            api.close()
        total, elapsed = total + count, elapsed + seconds
        print(f"  {name:32} {count:7,} cases {seconds:7.1f}s  {'FOUND' if finding else 'ok'}")
        if finding:
            findings.append((name, finding))

    print(f"fuzz: {total:,} cases in {elapsed:.1f}s, {len(findings)} finding(s)")
    for name, finding in findings:
        print(f"\n--- {name}\n{finding}")
    print(f"FIGURE fuzz_cases={total} goal=min:{GOAL_CASES} unit=cases")
    print(f"FIGURE fuzz_findings={len(findings)} goal=max:0 unit=findings")
    print(f"FIGURE fuzz_rate={total / elapsed:.0f} unit=cases/s")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
