"""What each notebook must have recorded (via ``refarch.notebook_results.record``).

One entry per notebook in ``notebooks/``: the parameters the test runs it with (small and
offline) and a check on its recorded results. A notebook without an entry fails the suite.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Expectation:
    """How to run one notebook in the tests and what its results must show."""

    check: Callable[[dict[str, Any]], None]
    parameters: dict[str, Any] = field(default_factory=dict)


EXPECTATIONS: dict[str, Expectation] = {}
