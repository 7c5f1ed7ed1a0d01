"""Imports in a fresh interpreter (a subprocess each): the domain pulls in no driver, and every
deploy module imports first with nothing of refarch loaded. Moved here from tests/unit, which
spawns no process."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from tests.support.layers import DEPLOY_LAYERS
from tests.support.paths import ROOT


def test_the_domain_imports_no_driver() -> None:
    code = (
        "import sys\n"
        "import refarch.domain.product, refarch.domain.validation, refarch.domain.text, "
        "refarch.domain.vectors\n"
        "drivers = ('psycopg', 'psycopg_pool', 'pinecone', 'torch', 'sentence_transformers', 'numpy')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in drivers))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_each_deploy_module_imports_first_in_a_fresh_interpreter() -> None:
    # One interpreter; refarch is dropped from sys.modules before each deploy module, so each
    # is imported first with nothing of refarch loaded (third-party packages stay cached).
    script = textwrap.dedent(f"""
        import importlib, pkgutil, sys
        failed = []
        for name in {[f"refarch.deploy.{m}" for m in DEPLOY_LAYERS]!r}:
            for loaded in [m for m in sys.modules if m == "refarch" or m.startswith("refarch.")]:
                del sys.modules[loaded]
            try:
                importlib.import_module(name)
            except Exception as exc:
                failed.append(f"{{name}}: {{type(exc).__name__}}: {{exc}}")
        import refarch
        for info in pkgutil.walk_packages(refarch.__path__, "refarch."):
            if not info.name.endswith(".__main__"):
                try:
                    importlib.import_module(info.name)
                except Exception as exc:
                    failed.append(f"{{info.name}}: {{type(exc).__name__}}: {{exc}}")
        print("\\n".join(failed))
        sys.exit(1 if failed else 0)
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
