"""How pytest-xdist shares the tests between its workers (``-n 2``, pyproject.toml).

Like xdist's ``loadgroup``: each test is a unit of its own, handed to whichever worker is free
(in collection order, which tests/conftest.py makes slow modules first), and tests marked
``xdist_group`` stay together. In addition every test under :data:`ONE_WORKER_DIRECTORIES`
runs on one worker, because they share one expensive fixture. (xdist 3.8 finds the
``xdist_group`` mark by rewriting node ids, which pytest 9.2 ignores, so a mark would not do.)
"""

from __future__ import annotations

from xdist.scheduler import LoadGroupScheduling

#: Directories whose tests all run on the same worker: tests/app shares one `refarch up`
#: (a package-scoped fixture, tests/app/conftest.py), which two workers would start twice.
ONE_WORKER_DIRECTORIES = ("tests/app/",)


class SharedFixtureScheduling(LoadGroupScheduling):
    """``loadgroup``, with each of :data:`ONE_WORKER_DIRECTORIES` one unit of work."""

    def _split_scope(self, nodeid: str) -> str:
        for directory in ONE_WORKER_DIRECTORIES:
            if nodeid.startswith(directory):
                return directory
        return super()._split_scope(nodeid)
