"""The Automation API driver against a fake Pulumi CLI (the one boundary that cannot exist here).

The Automation API itself is real: stacks are created and selected, config written, plugins
installed, the inline program served over gRPC and engine events streamed back exactly as with
the real CLI; only the ``pulumi`` executable is replaced by :class:`FakePulumi`. AWS
credentials are looked up by real boto3 in a controlled environment.
"""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path
from typing import Any

import boto3
import pulumi
import pytest

from refarch.cli import main
from refarch.deploy import driver as driver_module
from refarch.deploy.driver import FIX_AWS, FIX_CLI, FIX_DOCKER, FIX_PINECONE, Deployer, plugin_requirements
from refarch.deploy.mocks import RecordingMocks, is_secret
from refarch.deploy.plan import Plan
from refarch.errors import DeployError
from refarch.settings import Settings
from tests.infra.conftest import PINNED_IMAGE
from tests.infra.fake_pulumi import FakePulumi, FakeStack

KEY = "pc-driver-test-key-0123"


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """An environment where boto3 finds exactly the credentials the test sets (or none)."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                 "AWS_DEFAULT_PROFILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                 "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_WEB_IDENTITY_TOKEN_FILE",
                 "AWS_ROLE_ARN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def with_credentials(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEEXAMPLE00")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "example-secret-access-key")


def _settings(tmp_path: Path, **env: str) -> Settings:
    base = {"REFARCH_HOME": str(tmp_path / "home"), "PINECONE_API_KEY": KEY,
            "REFARCH_IMAGE_URI": PINNED_IMAGE}
    base.update(env)
    return Settings.from_env({k: v for k, v in base.items() if v})


#: A real deploy needs the app's DNS name (the plan's placeholder is refused).
DOMAIN = "search.example.org"


def _deployer(settings: Settings, fake: FakePulumi, **kwargs: Any) -> Deployer:
    kwargs["overrides"] = {"domainName": DOMAIN, **kwargs.get("overrides", {})}
    kwargs.setdefault("session_factory", boto3.Session)
    kwargs.setdefault("run_migrations", False)  # the migration task has its own tests
    return Deployer(settings, pulumi_command=fake, progress_bar=False, write=lambda line: None,
                    **kwargs)


# --- prerequisites -------------------------------------------------------------------------------


def test_everything_missing_is_reported_at_once_with_fixes(
        aws_env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no pulumi, no docker
    settings = _settings(tmp_path, PINECONE_API_KEY="")
    deployer = Deployer(settings, session_factory=boto3.Session, progress_bar=False)
    with pytest.raises(DeployError) as caught:
        deployer.preview()
    message = str(caught.value)
    for fix in (FIX_CLI, FIX_AWS, FIX_PINECONE):
        assert fix in message
    assert "Pulumi CLI was not found" in message and "no AWS credentials" in message
    assert "PINECONE_API_KEY is not set" in message


def test_only_what_is_missing_is_reported(with_credentials: None, tmp_path: Path) -> None:
    fake = FakePulumi()
    deployer = _deployer(_settings(tmp_path, PINECONE_API_KEY=""), fake)
    with pytest.raises(DeployError) as caught:
        deployer.up()
    message = str(caught.value)
    assert FIX_PINECONE in message
    assert FIX_CLI not in message and FIX_AWS not in message
    assert fake.calls_to("up") == []  # nothing started


def test_missing_aws_credentials_stop_before_the_backend(aws_env: None, tmp_path: Path) -> None:
    fake = FakePulumi()
    with pytest.raises(DeployError, match="no AWS credentials"):
        _deployer(_settings(tmp_path), fake).preview()
    assert fake.calls == []


def test_up_needs_docker_to_build_the_image(with_credentials: None, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    fake = FakePulumi()
    with pytest.raises(DeployError) as caught:
        _deployer(_settings(tmp_path, REFARCH_IMAGE_URI=""), fake).up()
    assert FIX_DOCKER in str(caught.value)
    assert fake.calls_to("up") == []


def test_outputs_need_no_cloud_credentials(aws_env: None, tmp_path: Path) -> None:
    fake = FakePulumi()
    fake.stacks["dev"] = FakeStack(outputs={"app_url": "x"})
    assert _deployer(_settings(tmp_path, PINECONE_API_KEY=""), fake).outputs() == {"app_url": "x"}


def test_not_logged_in(with_credentials: None, tmp_path: Path) -> None:
    with pytest.raises(DeployError, match="pulumi login"):
        _deployer(_settings(tmp_path), FakePulumi(logged_in=False)).preview()


def test_old_cli_is_refused(with_credentials: None, tmp_path: Path) -> None:
    with pytest.raises(DeployError, match="too old"):
        _deployer(_settings(tmp_path), FakePulumi(version="3.150.0")).preview()


def test_cli_errors_come_back_with_a_fix(with_credentials: None, tmp_path: Path) -> None:
    fake = FakePulumi(fail={"up": "error: constructing secrets manager: passphrase must be set "
                                  "with PULUMI_CONFIG_PASSPHRASE"})
    with pytest.raises(DeployError) as caught:
        _deployer(_settings(tmp_path), fake).up()
    assert "passphrase must be set" in str(caught.value)
    assert "export PULUMI_CONFIG_PASSPHRASE" in str(caught.value)


def test_unknown_operation_and_setting(with_credentials: None, tmp_path: Path) -> None:
    deployer = _deployer(_settings(tmp_path), FakePulumi(), overrides={"azCont": "3"})
    with pytest.raises(DeployError, match="unknown operation"):
        deployer.problems("deploy")
    with pytest.raises(DeployError, match="unknown stack setting 'azCont'"):
        deployer.preview()


# --- the operations -------------------------------------------------------------------------------


def test_preview_creates_the_stack_and_runs_the_program_inline(
        with_credentials: None, tmp_path: Path, default_plan: Plan) -> None:
    resources = [(r.type, r.name) for r in default_plan.resources]
    fake = FakePulumi(resources=resources)
    deployer = _deployer(_settings(tmp_path, AWS_REGION="eu-west-1"), fake)
    result = deployer.preview()

    verbs = [c.verb for c in fake.calls]
    assert verbs.index("stack select") < verbs.index("stack init") < verbs.index("preview")
    preview = fake.calls_to("preview")[0]
    assert preview.args[preview.args.index("--exec-kind") + 1] == "auto.inline"
    assert preview.cwd == str(tmp_path / "home" / "deploy")
    assert fake.inline_program_reachable == {"preview": True}
    # Engine events streamed back through the SDK's event server to our reporter.
    assert result.changes == {"create": len(resources)}
    assert len(result.lines) == len(resources) + 1  # one per create, one warning
    assert "warning: fake preview finished" in result.lines[-1]
    assert fake.stacks["dev"].config["aws:region"] == ("eu-west-1", False)


def test_file_event_log_of_older_clis(with_credentials: None, tmp_path: Path) -> None:
    fake = FakePulumi(version="3.200.0", resources=[("aws:sqs/queue:Queue", "q"),
                                                     ("aws:sns/topic:Topic", "t")])
    result = _deployer(_settings(tmp_path), fake).preview()
    assert fake.calls_to("preview")[0].args[-3].endswith("eventlog.txt")
    assert result.changes == {"create": 2}


def test_secrets_are_written_as_secrets(with_credentials: None, tmp_path: Path) -> None:
    fake = FakePulumi()
    _deployer(_settings(tmp_path), fake).preview()
    config = fake.stacks["dev"].config
    assert config["pinecone:apiKey"] == (KEY, True)
    set_all = fake.calls_to("config set-all")[0].args
    position = set_all.index(f"pinecone:apiKey={KEY}")
    assert set_all[position - 1] == "--secret"
    assert all(KEY not in arg for c in fake.calls if c.verb != "config set-all" for arg in c.args)
    assert all(not value.startswith(KEY) for key, (value, secret) in config.items() if not secret)


def test_up_returns_outputs_and_installs_the_plugins(with_credentials: None,
                                                     tmp_path: Path) -> None:
    fake = FakePulumi(outputs={"app_url": "http://alb.example", "index_host": "h.pinecone.io"})
    deployer = _deployer(_settings(tmp_path), fake)
    result = deployer.up()
    assert result.outputs == {"app_url": "http://alb.example", "index_host": "h.pinecone.io"}
    assert result.changes == {"create": 1}
    assert deployer.outputs()["app_url"] == "http://alb.example"
    installed = {p[0]: p for p in fake.plugins}
    assert set(installed) == {"aws", "random", "docker-build", "pinecone"}
    assert installed["aws"][1] == "v" + metadata.version("pulumi-aws")
    assert installed["pinecone"][2].startswith("github://")
    assert sorted(fake.plugins) == sorted((n, v, s) if s else (n, v)
                                          for n, v, s in plugin_requirements())
    up = fake.calls_to("up")[0]
    assert "--yes" in up.args and "--skip-preview" in up.args
    assert fake.inline_program_reachable["up"] is True


def test_refresh_and_destroy(with_credentials: None, tmp_path: Path) -> None:
    fake = FakePulumi(outputs={"app_url": "http://alb.example"})
    _deployer(_settings(tmp_path), fake).up()
    # Refresh and destroy need no Pinecone key: providers read theirs from the state.
    deployer = _deployer(_settings(tmp_path, PINECONE_API_KEY=""), fake)
    assert deployer.refresh().changes == {"refresh": 1}
    result = deployer.destroy(remove_stack=True)
    assert result.changes == {"delete": 1}
    assert "dev" not in fake.stacks
    assert [c.verb for c in fake.calls][-1] == "stack rm"


def test_settings_persist_with_the_stack(with_credentials: None, tmp_path: Path) -> None:
    fake = FakePulumi()
    first = _deployer(_settings(tmp_path), fake, overrides={"appMaxTasks": "6"})
    first.preview()
    assert fake.stacks["dev"].config["refarch:appMaxTasks"] == ("6", False)
    # A later run without --set keeps the saved value...
    second = _deployer(_settings(tmp_path), fake)
    assert second.config.app_max_tasks == 6
    # ...and the saved Pinecone key lets it run without PINECONE_API_KEY.
    third = _deployer(_settings(tmp_path, PINECONE_API_KEY=""), fake)
    third.preview()
    assert third.config.app_max_tasks == 6
    # Setting it back to the default removes it from the stack's config.
    _deployer(_settings(tmp_path), fake, overrides={"appMaxTasks": "4"}).preview()
    assert "refarch:appMaxTasks" not in fake.stacks["dev"].config
    # Environment settings win over saved ones: the region follows AWS_REGION.
    _deployer(_settings(tmp_path, AWS_REGION="us-west-2"), fake).preview()
    assert fake.stacks["dev"].config["aws:region"] == ("us-west-2", False)


def test_stack_name_from_settings(with_credentials: None, tmp_path: Path) -> None:
    fake = FakePulumi()
    deployer = _deployer(_settings(tmp_path, REFARCH_STACK="staging"), fake)
    deployer.preview()
    assert set(fake.stacks) == {"staging"}
    assert deployer.config.prefix == "refarch-staging"


def test_the_inline_program_is_the_stack_from_settings(with_credentials: None,
                                                       tmp_path: Path) -> None:
    fake = FakePulumi()
    deployer = _deployer(_settings(tmp_path, AWS_REGION="eu-west-1",
                                   REFARCH_INDEX_NAME="catalog"), fake)
    deployer.open_stack()
    mocks = RecordingMocks(region="eu-west-1")
    pulumi.runtime.set_mocks(mocks, project="refarch", stack="dev", preview=False)

    @pulumi.runtime.test
    def run() -> None:
        deployer.program()  # what the Automation API runs inline

    run()  # returns once every resource is registered
    by_type: dict[str, list[Any]] = {}
    for r in mocks.recording.resources:
        by_type.setdefault(r.type, []).append(r)
    assert by_type["pulumi:providers:aws"][0].inputs["region"] == "eu-west-1"
    index = by_type["pinecone:index/index:Index"][0].inputs
    assert index["name"] == "catalog"
    assert index["spec"]["serverless"]["region"] == "eu-west-1"
    assert is_secret(by_type["pulumi:providers:pinecone"][0].inputs["apiKey"])
    assert by_type["pulumi:providers:pinecone"][0].inputs["apiKey"]["value"] == KEY
    assert "docker-build:index:Image" not in by_type  # REFARCH_IMAGE_URI given
    assert len(by_type["aws:ecs/service:Service"]) == 3


def test_program_refuses_to_run_without_a_key(with_credentials: None, tmp_path: Path) -> None:
    deployer = _deployer(_settings(tmp_path, PINECONE_API_KEY=""), FakePulumi())
    deployer.open_stack()
    with pytest.raises(DeployError, match="PINECONE_API_KEY"):
        deployer.program()


# --- the command line ---------------------------------------------------------------------------------


def test_cli_reports_missing_prerequisites(aws_env: None, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("PINECONE_API_KEY", raising=False)
    monkeypatch.setenv("REFARCH_HOME", str(tmp_path / "home"))
    assert main(["deploy", "up"]) == 2
    err = capsys.readouterr().err
    assert "cannot up the stack 'dev' yet" in err and FIX_CLI in err and FIX_AWS in err


def test_cli_destroy_needs_confirmation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("sys.stdin", open(__file__, encoding="utf-8"))  # not a terminal
    assert main(["deploy", "destroy"]) == 2
    assert "pass --yes" in capsys.readouterr().err


def test_cli_up_and_outputs_with_the_fake(with_credentials: None, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    fake = FakePulumi(outputs={"app_url": "http://alb.example"})
    monkeypatch.setattr(driver_module, "find_pulumi_command", lambda: fake)
    monkeypatch.setattr(driver_module.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setenv("REFARCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PINECONE_API_KEY", KEY)
    monkeypatch.setenv("REFARCH_IMAGE_URI", PINNED_IMAGE)
    migrations: list[Any] = []
    monkeypatch.setattr(driver_module.Deployer, "migrate",
                        lambda self, outputs=None: migrations.append(outputs) or "task")
    assert main(["deploy", "up", "--set", "appMaxTasks=5"]) == 2
    assert "refarch:domainName is not set" in capsys.readouterr().err
    assert main(["deploy", "up", "--set", "appMaxTasks=5", "--set", f"domainName={DOMAIN}"]) == 0
    out = capsys.readouterr().out
    assert "up: create 1 in" in out and "app_url: http://alb.example" in out
    assert migrations == [{"app_url": "http://alb.example"}]  # after the update, with its outputs
    assert main(["deploy", "outputs", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"app_url": "http://alb.example"}
    assert main(["deploy", "destroy", "--yes", "--remove-stack"]) == 0
    assert fake.stacks == {}


# --- the policy pack ---------------------------------------------------------------------------


def test_preview_and_up_run_with_the_policy_pack(with_credentials: None, tmp_path: Path) -> None:
    fake = FakePulumi()
    _deployer(_settings(tmp_path), fake).up()
    pack = str(driver_module.POLICY_PACK_DIR)
    assert (driver_module.POLICY_PACK_DIR / "PulumiPolicy.yaml").is_file()
    operations = [c for c in fake.calls if c.verb in ("preview", "up")]
    # up is preceded by a preview: stack policies judge the planned state there.
    assert [c.verb for c in operations] == ["preview", "up"]
    for call in operations:
        i = call.args.index("--policy-pack")
        assert call.args[i + 1] == pack
    fake_preview = FakePulumi()
    _deployer(_settings(tmp_path / "p"), fake_preview).preview()
    (call,) = fake_preview.calls_to("preview")
    assert call.args[call.args.index("--policy-pack") + 1] == pack


def test_a_mandatory_policy_failure_stops_the_deploy(with_credentials: None,
                                                     tmp_path: Path) -> None:
    message = "services-edge-https: forwards without authenticating first"
    fake = FakePulumi(policy_findings=[("https-with-sign-in", "mandatory", message),
                                       ("unsafe-opt-outs-reported", "advisory", "a warning")])
    with pytest.raises(DeployError) as caught:
        _deployer(_settings(tmp_path), fake).up()
    text = str(caught.value)
    assert "policy pack refused to preview" in text
    assert f"https-with-sign-in: {message}" in text
    assert "a warning" not in text  # advisory findings do not refuse
    assert fake.calls_to("up") == []  # nothing was changed


def test_an_advisory_finding_does_not_stop_the_deploy(with_credentials: None,
                                                      tmp_path: Path) -> None:
    lines: list[str] = []
    fake = FakePulumi(policy_findings=[("unsafe-opt-outs-reported", "advisory", "no e-mail")])
    deployer = Deployer(_settings(tmp_path), pulumi_command=fake, session_factory=boto3.Session,
                        progress_bar=False, write=lines.append, run_migrations=False,
                        overrides={"domainName": DOMAIN})
    deployer.up()
    assert len(fake.calls_to("up")) == 1
    assert "  policy [advisory] unsafe-opt-outs-reported: no e-mail" in lines
    # The offline check's own warnings are written too.
    assert any(line.startswith("WARNING unsafe-opt-outs-reported: alarmEmail") for line in lines)


def test_the_offline_rules_refuse_before_any_preview(with_credentials: None, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from refarch.deploy import rulebook, rules

    broken = rules.Rule("test-always-fails", "a rule that fails", lambda plan: ["broken on purpose"])
    monkeypatch.setattr(rulebook, "RULES", [*rules.RULES, broken])
    fake = FakePulumi()
    with pytest.raises(DeployError, match="test-always-fails: broken on purpose"):
        _deployer(_settings(tmp_path), fake).up()
    assert fake.calls_to("preview") == [] and fake.calls_to("up") == []


def test_placeholder_pins_refuse_a_build_before_any_preview(
        with_credentials: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Building from the Dockerfile (no REFARCH_IMAGE_URI), whose digests are placeholders.
    monkeypatch.setattr(driver_module.shutil, "which", lambda name: f"/usr/bin/{name}")
    fake = FakePulumi()
    with pytest.raises(DeployError) as caught:
        _deployer(_settings(tmp_path, REFARCH_IMAGE_URI=""), fake).up()
    text = str(caught.value)
    assert "image-pins-filled-in: base image python:3.11-slim-bookworm has a placeholder" in text
    assert "requirements-torch-cpu.lock: torch==2.13.0+cpu has a placeholder hash" in text
    assert fake.calls_to("preview") == [] and fake.calls_to("up") == []
