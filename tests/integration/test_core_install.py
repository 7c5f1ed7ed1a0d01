"""A core install (no extras): every module outside refarch.deploy imports, and a command that
needs an extra fails with one line naming the install profile. Simulated in a fresh interpreter
by refusing every module an extra installs (refarch.extras.EXTRA_OF_MODULE)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.support.paths import ROOT

_WITHOUT_EXTRAS = textwrap.dedent("""
    import sys
    from refarch.extras import EXTRA_OF_MODULE

    class _NotInstalled:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in EXTRA_OF_MODULE:
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)

    sys.meta_path.insert(0, _NotInstalled())
""")


def _run(code: str, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **(extra_env or {}), "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    return subprocess.run([sys.executable, "-c", _WITHOUT_EXTRAS + textwrap.dedent(code)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_every_service_module_imports_without_the_extras() -> None:
    run = _run("""
        import importlib, pkgutil
        import refarch
        failed = []
        for info in pkgutil.walk_packages(refarch.__path__, "refarch."):
            if info.name.endswith(".__main__") or info.name.startswith("refarch.deploy."):
                continue
            try:
                importlib.import_module(info.name)
            except Exception as exc:
                failed.append(f"{info.name}: {type(exc).__name__}: {exc}")
        loaded = sorted({m.split(".")[0] for m in sys.modules} & set(EXTRA_OF_MODULE))
        print("\\n".join(failed) or "ok", loaded)
    """)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "ok []", run.stdout


def test_deploy_on_a_core_install_names_the_deploy_profile() -> None:
    run = _run("""
        from refarch.cli import main
        sys.exit(main(["deploy", "plan"]))
    """)
    assert run.returncode == 2, run.stdout + run.stderr
    assert "Traceback" not in run.stderr
    assert "needs pulumi" in run.stderr and "pip install -e '.[deploy]'" in run.stderr, run.stderr


def test_lab_on_a_core_install_names_the_notebooks_profile() -> None:
    run = _run("""
        from refarch.cli import main
        sys.exit(main(["lab"]))
    """)
    assert run.returncode == 2, run.stdout + run.stderr
    assert "needs jupyterlab" in run.stderr and "pip install -e '.[notebooks]'" in run.stderr


def test_the_torch_backend_on_a_core_install_names_the_torch_profile() -> None:
    run = _run("""
        from refarch.embeddings import load_embedder
        load_embedder("all-MiniLM-L6-v2", backend="sentence-transformers")
    """)
    assert run.returncode == 1
    assert "EmbeddingError: REFARCH_EMBED_BACKEND=sentence-transformers" in run.stderr, run.stderr
    assert "'torch' install profile" in run.stderr, run.stderr


def test_model_export_on_a_core_install_names_the_torch_profile(tmp_path: Path) -> None:
    run = _run(f"""
        from refarch.cli import main
        sys.exit(main(["model", "export", "--out", {str(tmp_path / "onnx")!r}]))
    """)
    assert run.returncode == 2, run.stdout + run.stderr
    assert "Traceback" not in run.stderr
    assert "'torch' install" in run.stderr and "pip install -e '.[torch]'" in run.stderr, run.stderr


def test_a_core_install_embeds_from_an_export_and_says_how_to_get_one() -> None:
    from refarch.embeddings import resolve_model
    from refarch.onnx_model import cached_export
    from refarch.settings import DEFAULT_MODEL, Settings

    settings = Settings.from_env()
    exported = cached_export(DEFAULT_MODEL, Path(resolve_model(DEFAULT_MODEL)),
                             settings.models_dir or settings.home / "models", precision="fp32")
    embed = """
        from refarch.embeddings import get_embedder
        from refarch.settings import Settings
        print(len(get_embedder(Settings.from_env()).encode_query("travel mug")))
    """
    without = _run(embed, {"REFARCH_ONNX_DIR": ""})
    assert without.returncode == 1
    assert "'torch' install profile" in without.stderr and "REFARCH_ONNX_DIR" in without.stderr
    given = _run(embed, {"REFARCH_ONNX_DIR": str(exported.directory)})
    assert given.returncode == 0, given.stderr
    assert given.stdout.split()[-1] == "384"
