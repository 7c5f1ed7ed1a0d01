"""Streaming a Pulumi operation's progress: a progress bar plus one line per change.

:class:`ProgressReporter` is the ``on_event`` callback the driver hands the Automation API. It
counts finished resources on a tqdm bar (in a notebook, tqdm's widget), prints each create,
update, replace or delete and every warning or error as it happens, and keeps the final
summary (changes per operation), the failures and the policy pack's findings for the caller.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from tqdm.auto import tqdm

#: Operations worth a line of their own (``same``, ``read`` and ``refresh`` are not).
_NOTABLE = {"create", "update", "replace", "delete", "create-replacement", "delete-replaced",
            "import"}


def _name(urn: str) -> str:
    return urn.rsplit("::", 1)[-1] if urn else "?"


class ProgressReporter:
    """An ``on_event`` callback for :mod:`pulumi.automation` operations."""

    def __init__(
        self,
        operation: str,
        total: int | None = None,
        write: Callable[[str], None] | None = None,
        bar: bool = True,
    ) -> None:
        self.operation = operation
        self.changes: dict[str, int] = {}
        self.failures: list[str] = []
        #: Policy-pack findings: (enforcement level, policy name, message).
        self.policy_findings: list[tuple[str, str, str]] = []
        self.lines: list[str] = []
        self.events = 0
        self._write = write
        self._lock = threading.Lock()
        self._bar = tqdm(total=total, desc=f"pulumi {operation}", unit="res",
                         disable=not bar, leave=True)

    def _emit(self, line: str) -> None:
        self.lines.append(line)
        if self._write is not None:
            self._write(line)
        else:
            self._bar.write(line)

    def __call__(self, event: Any) -> None:
        """Handle one :class:`pulumi.automation.EngineEvent` (called from a gRPC thread)."""
        with self._lock:
            self.events += 1
            if event.resource_pre_event is not None:
                meta = event.resource_pre_event.metadata
                op = getattr(meta.op, "value", str(meta.op))
                if op in _NOTABLE:
                    self._emit(f"{op:>8} {meta.type} {_name(meta.urn)}")
            elif event.res_outputs_event is not None:
                self._bar.update(1)
            elif event.res_op_failed_event is not None:
                meta = event.res_op_failed_event.metadata
                message = f"  failed {meta.type} {_name(meta.urn)}"
                self.failures.append(message.strip())
                self._emit(message)
            elif event.diagnostic_event is not None:
                diag = event.diagnostic_event
                if diag.severity in ("error", "warning"):
                    text = diag.message.strip()
                    where = f" {_name(diag.urn)}" if diag.urn else ""
                    self._emit(f"{diag.severity:>8}{where}: {text}")
                    if diag.severity == "error":
                        self.failures.append(text)
            elif getattr(event, "policy_event", None) is not None:
                policy = event.policy_event
                level = policy.enforcement_level or "advisory"
                text = " ".join(policy.message.split())
                self.policy_findings.append((level, policy.policy_name, text))
                self._emit(f"  policy [{level}] {policy.policy_name}: {text}")
            elif event.summary_event is not None:
                self.changes = {
                    getattr(op, "value", str(op)): int(count)
                    for op, count in (event.summary_event.resource_changes or {}).items()
                }

    def close(self) -> None:
        """Close the progress bar."""
        self._bar.close()
