"""What each install profile costs: install time and site-packages size, in fresh virtualenvs.

For each profile (the core alone, then ``.[torch]``, ``.[notebooks]``, ``.[deploy]``,
``.[dev]``) this makes a new virtualenv in a temporary directory, installs the clone into it
(editable, as the Makefile does) from the configured package index, and reports the seconds
the install took and the size of its site-packages. The core venv is then checked the way the
container's runtime stage is: no torch importable, and the ONNX embedder gives a vector from an
export made by this checkout's own venv. Pip's cache makes every install after the first
faster; the first figure of a run is the cold one.

    .venv/bin/python bench/bench_install_profiles.py [--profiles core,torch,notebooks,deploy,dev]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from refarch.logs import format_event

ROOT = Path(__file__).resolve().parents[1]
PROFILES = ("core", "torch", "notebooks", "deploy", "dev")
_CORE_CHECK = (
    "import importlib.util, sys\n"
    "from refarch.embeddings import get_embedder\n"
    "from refarch.settings import Settings\n"
    "vector = get_embedder(Settings.from_env()).encode_query('travel mug')\n"
    "assert importlib.util.find_spec('torch') is None, 'torch is installed'\n"
    "assert 'sentence_transformers' not in sys.modules\n"
    "print(len(vector))\n"
)


def _size_mb(path: Path) -> float:
    total = sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())
    return total / 1e6


def _install(profile: str, venv: Path) -> float:
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    target = "." if profile == "core" else f".[{profile}]"
    started = time.perf_counter()
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "-e", target],
                   cwd=ROOT, check=True)
    return time.perf_counter() - started


def _check_core(venv: Path, work: Path) -> None:
    export = work / "onnx"
    subprocess.run([sys.executable, "-m", "refarch.cli", "model", "export", "--out", str(export)],
                   check=True, capture_output=True)
    run = subprocess.run([str(venv / "bin" / "python"), "-c", _CORE_CHECK], cwd=work,
                         env={**os.environ, "REFARCH_ONNX_DIR": str(export),
                              "REFARCH_HOME": str(work / "home")},
                         capture_output=True, text=True)
    if run.returncode != 0:
        raise SystemExit(f"the core install cannot embed without torch:\n{run.stderr}")
    print(format_event("core_install_embeds_without_torch", dimension=int(run.stdout.split()[-1])))


def main() -> None:
    """Install each profile in a fresh venv and print its install time and size."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", default=",".join(PROFILES))
    args = parser.parse_args()
    profiles = [p for p in args.profiles.split(",") if p]
    unknown = set(profiles) - set(PROFILES)
    if unknown:
        parser.error(f"unknown profile(s) {sorted(unknown)}; choose from {PROFILES}")
    with tempfile.TemporaryDirectory(prefix="refarch-profiles-") as tmp:
        sizes: dict[str, float] = {}
        for profile in profiles:
            venv = Path(tmp) / profile
            seconds = _install(profile, venv)
            site = next((venv / "lib").glob("python*/site-packages"))
            sizes[profile] = _size_mb(site)
            ratio = sizes[profile] / sizes["core"] if "core" in sizes else None
            print(format_event("install_profile", profile=profile, seconds=round(seconds, 1),
                               site_packages_mb=round(sizes[profile]),
                               x_core=round(ratio, 2) if ratio else None))
            if profile == "core":
                _check_core(venv, Path(tmp))


if __name__ == "__main__":
    main()
