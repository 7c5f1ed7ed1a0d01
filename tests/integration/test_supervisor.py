"""The supervisor restarts what dies (with backoff) and stops everything, with real processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from refarch.local.supervisor import ProcessSpec, Supervisor, pid_alive, read_state
from tests.support.paths import ROOT
from tests.support.waiting import wait_until

#: Seconds to wait for a restart or an exit, and how often to look (backoffs are 0.2-0.8 s).
TIMEOUT, POLL = 10.0, 0.05


def test_a_killed_process_is_restarted_with_backoff_and_stop_ends_all(tmp_path: Path) -> None:
    sleeper = ProcessSpec("sleeper", [sys.executable, "-c",
                                      "import time; print('up', flush=True); time.sleep(60)"])
    crasher = ProcessSpec("crasher", [sys.executable, "-c", "raise SystemExit(3)"])
    supervisor = Supervisor([sleeper, crasher], tmp_path / "logs", state_file=tmp_path / "state.json",
                            backoff_initial=0.2, backoff_max=0.8, stable_after=30)
    supervisor.start_all()
    try:
        first = supervisor.pid("sleeper")
        os.kill(first, signal.SIGKILL)
        assert wait_until(lambda: (supervisor.poll(), supervisor.pid("sleeper") not in (None, first))[1],
                          TIMEOUT, interval=POLL)
        assert supervisor.states["sleeper"].restarts == 1
        assert supervisor.states["sleeper"].last_exit_code == -signal.SIGKILL
        # A process that keeps failing is retried with growing delays, not in a tight loop.
        started = time.monotonic()
        assert wait_until(lambda: (supervisor.poll(), supervisor.states["crasher"].restarts >= 3)[1],
                          TIMEOUT, interval=POLL)
        assert time.monotonic() - started >= 0.2 + 0.4  # 0.2 s, 0.4 s, then 0.8 s
        state = read_state(tmp_path / "state.json")
        assert state is not None and state["supervisor_pid"] == os.getpid()
        assert {p["name"] for p in state["processes"]} == {"sleeper", "crasher"}
        assert "up" in (tmp_path / "logs" / "sleeper.log").read_text()
    finally:
        pid = supervisor.pid("sleeper")
        supervisor.stop_all()
    assert not pid_alive(pid)
    assert all(s.state == "stopped" for s in supervisor.states.values())


def test_children_die_with_a_killed_supervisor(tmp_path: Path) -> None:
    script = f"""
import sys, time
sys.path.insert(0, {str(ROOT)!r})
from pathlib import Path
from refarch.local.supervisor import ProcessSpec, Supervisor
child = ProcessSpec("child", [sys.executable, "-c", "import time; time.sleep(120)"])
s = Supervisor([child], Path({str(tmp_path)!r}))
s.start_all()
print(s.pid("child"), flush=True)
time.sleep(120)
"""
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    assert pid_alive(child)
    parent.kill()  # kill -9 the supervisor
    parent.wait()
    assert wait_until(lambda: not pid_alive(child), TIMEOUT, interval=POLL), (
        "the child outlived its supervisor"
    )
