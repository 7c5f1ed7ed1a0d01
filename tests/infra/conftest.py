"""Fixtures for the Pulumi program's tests: offline plans built under Pulumi's mocks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from refarch.deploy.plan import Plan, build_plan
from refarch.deploy.program import load_infra

#: A prebuilt image given by digest, as a real deploy would.
PINNED_IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/refarch@sha256:" + "ab" * 32


@pytest.fixture(scope="session")
def stack_config_class() -> Any:
    """``infra.config.StackConfig``."""
    return load_infra("config").StackConfig


@pytest.fixture(scope="session")
def default_plan() -> Plan:
    """The program with its default configuration, run once for the whole session."""
    return build_plan()


@pytest.fixture(scope="session")
def configured_plan(stack_config_class: Any) -> Plan:
    """The program as a real deploy configures it: a domain, an alarm e-mail, and an image
    pinned by digest (the Dockerfile's own pins hold placeholders until filled in)."""
    return build_plan(stack_config_class(domain_name="search.example.org",
                                         alarm_email="ops@example.org", image_uri=PINNED_IMAGE))


@pytest.fixture(scope="session")
def plan_with(stack_config_class: Any) -> Callable[..., Plan]:
    """Build (and cache) a plan for StackConfig field overrides: ``plan_with(az_count=3)``."""
    cache: dict[tuple, Plan] = {}

    def make(**fields: Any) -> Plan:
        key = tuple(sorted((k, repr(v)) for k, v in fields.items()))
        if key not in cache:
            cache[key] = build_plan(stack_config_class(**fields))
        return cache[key]

    return make
