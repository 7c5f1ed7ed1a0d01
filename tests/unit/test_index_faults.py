"""The index server's unsafe write-fault hook: armed only by exactly ``1``, faults that end by
count or time, only outage statuses (refarch/index/server/faults.py; the real server process
is driven by tests/integration/pipeline/test_fault_matrix.py)."""

from __future__ import annotations

import errno
import time

import pytest

from refarch.errors import ConfigError
from refarch.index.server.api_errors import ApiError
from refarch.index.server.faults import ARM_VARIABLE, WriteFaults, armed, is_storage_full, storage_full


@pytest.mark.parametrize(("value", "expected"), [(None, False), ("", False), ("1", True)])
def test_only_the_value_1_arms_the_hook(value: str | None, expected: bool) -> None:
    env = {} if value is None else {ARM_VARIABLE: value}
    assert armed(env) is expected


@pytest.mark.parametrize("value", ["0", "true", "yes", " 1", "on"])
def test_any_other_value_is_refused_loudly(value: str) -> None:
    with pytest.raises(ConfigError, match=f"{ARM_VARIABLE}=.*armed only by the value 1"):
        armed({ARM_VARIABLE: value})


def test_a_fault_by_count_fails_that_many_writes_then_ends() -> None:
    faults = WriteFaults()
    assert faults.take() is None  # nothing in force
    faults.set({"status": 503, "count": 2})
    errors = [faults.take() for _ in range(3)]
    assert [e.status if e else None for e in errors] == [503, 503, None]
    assert faults.describe() == {"armed": True, "fault": None, "failed": 2}


def test_a_fault_by_time_ends_on_its_own_and_clear_ends_it_at_once() -> None:
    faults = WriteFaults()
    faults.set({"status": 429, "seconds": 0.05})
    error = faults.take()
    assert error is not None and error.status == 429 and error.code == "RESOURCE_EXHAUSTED"
    time.sleep(0.06)
    assert faults.take() is None
    faults.set({"status": 500})  # no end: until cleared
    assert faults.take() is not None
    faults.clear()
    assert faults.take() is None


def test_enospc_answers_as_a_full_disk_does() -> None:
    faults = WriteFaults()
    faults.set({"enospc": True, "count": 1})
    error = faults.take()
    real = storage_full(OSError(errno.ENOSPC, "No space left on device"))
    assert error is not None and (error.status, error.code) == (real.status, real.code) == (
        507, "INSUFFICIENT_STORAGE")
    assert is_storage_full(OSError(errno.ENOSPC, "full")) and not is_storage_full(OSError(errno.EIO, "io"))


@pytest.mark.parametrize("body", [{"status": 400}, {"status": 404}, {"status": True},
                                  {"seconds": -1}, {"count": 0}, {"count": 1.5}])
def test_rejections_and_nonsense_are_refused(body: dict) -> None:
    """A 4xx would be a rejection of the content, not an outage: not what this hook is for."""
    with pytest.raises(ApiError) as caught:
        WriteFaults().set(body)
    assert caught.value.status == 400
