"""What the sub-command modules share: argument types and the types of ``register(subparsers)``.

Each sub-command of the ``refarch`` CLI is one ``cmd_*`` module with a ``register(subparsers)``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeAlias

from refarch.errors import InputError

if TYPE_CHECKING:
    from refarch.settings import Settings

#: What ``register(subparsers)`` receives: the result of ``ArgumentParser.add_subparsers()``.
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
#: A sub-command's function: the parsed arguments and the settings in, the exit code out.
Handler: TypeAlias = "Callable[[argparse.Namespace, Settings], int]"


def positive_int(text: str) -> int:
    """argparse type: a whole number of at least 1, with a message that says what was wrong."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def filter_json(text: str) -> dict[str, Any]:
    """The JSON object of a ``--filter`` option; :class:`InputError` says what is wrong."""
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise InputError(f"--filter is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise InputError("--filter must be a JSON object, e.g. '{\"category\": \"Drinkware\"}'")
    return value
