"""How many examples a property (hypothesis) test tries: its full budget, or a quarter of it under `make test`.

`HYPOTHESIS_BUDGET=quick` (what `make test` sets unless told otherwise) keeps every property test and every
assertion but tries a quarter of the examples, never fewer than 20; anything else, or unset (plain pytest, `make test
HYPOTHESIS_BUDGET=full`), tries the full budget each test names. Tests without their own `max_examples` follow the
hypothesis profile of the same name (registered in tests/conftest.py: 25 examples quick, hypothesis' 100 full).
"""

from __future__ import annotations

import os

QUICK = "quick"
QUICK_SHARE = 4  # a quarter of the full budget
QUICK_FLOOR = 20  # no property test drops below this many examples


def quick() -> bool:
    return os.environ.get("HYPOTHESIS_BUDGET", "full") == QUICK


def examples(full: int) -> int:
    """The examples a test with a full budget of `full` tries in this run."""
    return max(min(full, QUICK_FLOOR), full // QUICK_SHARE) if quick() else full
