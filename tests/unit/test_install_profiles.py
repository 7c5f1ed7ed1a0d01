"""The install profiles in pyproject.toml and the module map that names a missing one agree."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import packages_distributions

from refarch.extras import EXTRA_OF_MODULE, PURPOSE, missing_extra
from tests.support.paths import ROOT

_PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[\[=<>~! ;]", r, maxsplit=1)[0].lower().replace("_", "-") for r in requirements}


def test_each_mapped_module_comes_from_its_extra_and_not_from_the_core() -> None:
    extras = _PROJECT["optional-dependencies"]
    core = _names(_PROJECT["dependencies"])
    distributions = packages_distributions()
    for module, extra in EXTRA_OF_MODULE.items():
        dists = {d.lower().replace("_", "-") for d in distributions.get(module, [])}
        assert dists, f"{module} is not installed in the dev environment"
        assert dists & _names(extras[extra]), f"{module} ({dists}) is not in the {extra!r} extra"
        assert not dists & core, f"{module} ({dists}) is a core dependency, not an extra"


def test_dev_installs_every_profile_and_every_profile_has_a_purpose() -> None:
    extras = _PROJECT["optional-dependencies"]
    assert set(PURPOSE) == set(EXTRA_OF_MODULE.values()) == set(extras) - {"dev"}
    assert f"refarch[{','.join(sorted(PURPOSE, key=list(extras).index))}]" in extras["dev"]


def test_fastapi_is_gone_and_torch_is_not_in_the_core() -> None:
    core = _names(_PROJECT["dependencies"])
    assert not {"fastapi", "torch", "sentence-transformers", "pulumi", "papermill"} & core


def test_the_message_names_the_profile_and_how_to_install_it() -> None:
    message = missing_extra(ModuleNotFoundError("No module named 'pulumi_aws'", name="pulumi_aws.ec2"))
    assert message is not None
    assert "'deploy' install profile" in message and "pip install -e '.[deploy]'" in message
    assert missing_extra(ModuleNotFoundError("x", name="left_pad")) is None
