"""How many cases each fuzz test runs: a CI-sized budget, scaled by ``KIT_FUZZ_SCALE``.

CI runs the budgets as written (a few hundred cases per target, derandomized so a red run
reproduces); ``bench/fuzz.py`` calls the same checks with tens of thousands of random cases.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

#: Multiplies every budget (``KIT_FUZZ_SCALE=10 pytest tests/reliability``).
SCALE_ENV = "KIT_FUZZ_SCALE"


def scale() -> float:
    try:
        return max(float(os.environ.get(SCALE_ENV, "1")), 0.01)
    except ValueError:
        return 1.0


def fuzz_settings(examples: int, *, random: bool | None = None) -> settings:
    """Hypothesis settings for ``examples`` cases (scaled); derandomized unless scaled up."""
    factor = scale()
    return settings(
        max_examples=max(1, int(examples * factor)),
        deadline=None,
        derandomize=factor <= 1 if random is None else not random,
        database=None,
        suppress_health_check=list(HealthCheck),
        print_blob=True,
    )
