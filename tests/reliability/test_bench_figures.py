"""bench/run_all.py reads the FIGURE lines every benchmark prints."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


def load_run_all():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("kit_bench_run_all", BENCH / "run_all.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_figure_lines_are_parsed_with_goals_and_units() -> None:
    run_all = load_run_all()
    output = "\n".join(
        [
            "some chatter",
            "FIGURE crud_requests_per_s=1712 goal=min:1500 unit=req/s",
            "FIGURE validate_s=2.4 goal=max:2 unit=s",
            "FIGURE apply_speedup=12.5 goal=min:10 unit=x (naive loop / no-op apply)",
            "FIGURE rate=99 unit=cases/s",
            "FIGURE findings=0 goal=max:0",
            "FIGURE broken",
        ]
    )
    figures = {f.name: f for f in run_all.parse_figures("s", output)}
    assert sorted(figures) == [
        "apply_speedup",
        "crud_requests_per_s",
        "findings",
        "rate",
        "validate_s",
    ]
    assert figures["crud_requests_per_s"].met is True
    assert figures["validate_s"].met is False and figures["validate_s"].goal_text == "<= 2"
    assert figures["apply_speedup"].unit == "x (naive loop / no-op apply)"
    assert figures["rate"].met is None and figures["rate"].goal_text == "-"
    assert figures["findings"].met is True and figures["findings"].unit == ""


@pytest.mark.parametrize(
    "script", sorted(p.name for p in BENCH.glob("*.py") if p.name != "run_all.py")
)
def test_every_benchmark_prints_figure_lines(script: str) -> None:
    assert 'print(f"FIGURE ' in (BENCH / script).read_text(encoding="utf-8")
