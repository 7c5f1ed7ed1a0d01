"""The Automation API driver: preview, up, refresh, destroy and outputs of the AWS stack.

:class:`Deployer` runs the Pulumi program *inline* (``infra.program.build_stack`` in this
process, no ``pulumi up`` in a shell): it creates or selects the stack in a workspace under
``REFARCH_HOME/deploy``, writes the stack's configuration from refarch's settings (the Pinecone
API key as a secret), installs the provider plugins and streams progress to the terminal or
notebook. Before anything starts it checks what is missing (the Pulumi CLI, AWS credentials,
``PINECONE_API_KEY``, Docker when the image must be built, a Pulumi login) and says how to fix
each; every failure is a :class:`~refarch.errors.DeployError`.

    deployer = Deployer(Settings.from_env())
    deployer.preview()
    result = deployer.up()
    print(result.outputs["app_url"])
    deployer.destroy()
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import metadata, resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from refarch.deploy.program import INFRA_DIR, load_infra, stack_config
from refarch.errors import DeployError
from refarch.logs import event
from refarch.settings import Settings

if TYPE_CHECKING:
    from pulumi import automation as auto

    from infra.config import StackConfig

log = logging.getLogger("refarch.deploy")

#: The Pulumi project name, shared with ``infra/Pulumi.yaml`` so both drive the same stacks.
PROJECT = "refarch"
#: Oldest Pulumi CLI that runs inline programs for refresh and destroy.
MIN_CLI_VERSION = (3, 181, 0)
#: Operations, and what each needs before it can start.
OPERATIONS: dict[str, frozenset[str]] = {
    "preview": frozenset({"aws", "pinecone"}),
    "up": frozenset({"aws", "pinecone", "docker"}),
    "refresh": frozenset({"aws"}),
    "destroy": frozenset({"aws"}),
    "outputs": frozenset(),
}
#: The OIDC provider's client secret, saved with the stack as secret config (by hand:
#: ``pulumi config set --secret refarch:oidcClientSecret``), never a StackConfig field.
OIDC_SECRET_KEY = "refarch:oidcClientSecret"
#: The CrossGuard policy pack every preview and up runs with (``infra/policy``).
POLICY_PACK_DIR = INFRA_DIR / "policy"
#: Python packages whose Pulumi provider plugins the program uses.
PLUGIN_PACKAGES = ("pulumi_aws", "pulumi_random", "pulumi_docker_build", "pinecone_pulumi")

FIX_CLI = ("install the Pulumi CLI (curl -fsSL https://get.pulumi.com | sh, or brew install "
           "pulumi) and make sure `pulumi` is on PATH")
FIX_AWS = ("configure AWS credentials: `aws configure` (access keys), or `aws sso login "
           "--profile NAME` and `export AWS_PROFILE=NAME`, or set AWS_ACCESS_KEY_ID and "
           "AWS_SECRET_ACCESS_KEY")
FIX_PINECONE = ("create an API key in the Pinecone console (API Keys) and `export "
                "PINECONE_API_KEY=...`")
FIX_DOCKER = ("install and start Docker to build the services' image, or set REFARCH_IMAGE_URI "
              "to an image you already pushed")
FIX_LOGIN = ("log in to a Pulumi state backend: `pulumi login` (Pulumi Cloud), or `pulumi login "
             "--local` / `pulumi login s3://BUCKET` for self-managed state (then also export "
             "PULUMI_CONFIG_PASSPHRASE)")
FIX_DOMAIN = ("set the name users will open the app at: `refarch deploy up --set "
              "domainName=search.example.org` (plus --set hostedZoneId=Z... to create the DNS "
              "records in Route 53), or --set unsafeNoTls=true for a short workshop")
FIX_PASSPHRASE = ("export PULUMI_CONFIG_PASSPHRASE (the passphrase that encrypts this stack's "
                  "secrets; an empty string is allowed if the stack was created with one)")


@dataclass(frozen=True)
class Problem:
    """A missing prerequisite and how to fix it."""

    what: str
    fix: str

    def __str__(self) -> str:
        return f"{self.what}: {self.fix}"


@dataclass
class OperationResult:
    """What a Pulumi operation did."""

    operation: str
    changes: dict[str, int] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    lines: list[str] = field(default_factory=list)


def plugin_requirements() -> list[tuple[str, str, str | None]]:
    """(plugin name, version, download server or None) of every provider the program uses,
    read from each SDK package's ``pulumi-plugin.json``."""
    found = []
    for package in PLUGIN_PACKAGES:
        spec = json.loads(resources.files(package).joinpath("pulumi-plugin.json").read_text())
        version = spec.get("version") or metadata.version(package.replace("_", "-"))
        found.append((spec["name"], f"v{version}", spec.get("server")))
    return found


def _aws_credentials(session_factory: Callable[[], Any]) -> bool:
    try:
        return session_factory().get_credentials() is not None
    except Exception:  # noqa: BLE001 - a broken profile is "no credentials" with its fix
        return False


def find_pulumi_command() -> auto.PulumiCommand:
    """The Pulumi CLI on PATH, version-checked; DeployError saying how to install it."""
    from pulumi import automation as auto
    from pulumi.automation.errors import InvalidVersionError

    if shutil.which("pulumi") is None:
        raise DeployError(f"the Pulumi CLI was not found: {FIX_CLI}")
    try:
        command = auto.PulumiCommand()
    except InvalidVersionError as exc:
        raise DeployError(f"the Pulumi CLI is not usable: {exc}") from None
    except OSError as exc:
        raise DeployError(f"the Pulumi CLI could not run ({exc}): {FIX_CLI}") from None
    return command


def _cli_error(exc: Exception, doing: str) -> DeployError:
    """Turn a Pulumi CommandError into a DeployError with the CLI's own words and a fix."""
    stderr = str(getattr(exc, "stderr", "") or "")
    stdout = str(getattr(exc, "stdout", "") or "")
    text = "\n".join(line for line in (stderr or stdout or str(exc)).splitlines()
                     if line.strip())
    tail = "\n".join(text.splitlines()[-8:])
    lowered = text.lower()
    hint = ""
    if "passphrase" in lowered:
        hint = f"\nfix: {FIX_PASSPHRASE}"
    elif "login" in lowered or "access_token" in lowered:
        hint = f"\nfix: {FIX_LOGIN}"
    return DeployError(f"pulumi failed to {doing}:\n{tail}{hint}")


def _policy_error(reporter: Any, operation: str, stack: str) -> DeployError | None:
    """A DeployError naming each mandatory policy violation the engine reported, or None."""
    refused = [(name, message) for level, name, message in reporter.policy_findings
               if level == "mandatory"]
    if not refused:
        return None
    listing = "\n".join(f"  - {name}: {message}" for name, message in refused)
    return DeployError(f"the policy pack refused to {operation} the stack {stack!r} "
                       f"(mandatory rules failed):\n{listing}")


class Deployer:
    """Drives one stack of the refarch program through the Automation API."""

    def __init__(
        self,
        settings: Settings,
        *,
        overrides: Mapping[str, str] | None = None,
        stack: str | None = None,
        pulumi_command: auto.PulumiCommand | None = None,
        session_factory: Callable[[], Any] | None = None,
        work_dir: Path | None = None,
        write: Callable[[str], None] | None = None,
        progress_bar: bool = True,
        run_migrations: bool = True,
    ) -> None:
        """``overrides`` are stack settings (``{"appMaxTasks": "6"}``) saved with the stack;
        ``pulumi_command`` and ``session_factory`` default to the real CLI and boto3;
        ``run_migrations=False`` leaves the migration task to ``refarch deploy migrate``."""
        self.settings = settings
        self.stack_name = stack or settings.deploy_stack
        self.overrides = dict(overrides or {})
        self.work_dir = work_dir or settings.home / "deploy"
        self._command = pulumi_command
        self._session_factory = session_factory
        self._write = write
        self._progress_bar = progress_bar
        self._run_migrations = run_migrations
        self._stack: auto.Stack | None = None
        self._config: StackConfig | None = None
        self._api_key: str | None = None
        self._saved_config: dict[str, Any] = {}
        self._plugins_installed = False

    # -- prerequisites ----------------------------------------------------------------------

    def problems(self, operation: str) -> list[Problem]:
        """Everything missing before ``operation`` can start (empty when ready).

        Checks the Pulumi CLI, AWS credentials and ``PINECONE_API_KEY`` as the operation needs
        them; Docker and a key saved with the stack are checked once the stack is open.
        """
        needs = self._needs(operation)
        found: list[Problem] = []
        if self._command is None and shutil.which("pulumi") is None:
            found.append(Problem("the Pulumi CLI was not found", FIX_CLI))
        if "aws" in needs and not _aws_credentials(self._sessions()):
            found.append(Problem("no AWS credentials were found", FIX_AWS))
        if "pinecone" in needs and not self.settings.pinecone_api_key and not self._saved_key():
            found.append(Problem("PINECONE_API_KEY is not set", FIX_PINECONE))
        if "pinecone" in needs and self._config is not None and (
                self._config.uses_placeholder_domain):
            found.append(Problem("refarch:domainName is not set (the offline plan's "
                                 "placeholder cannot get a certificate)", FIX_DOMAIN))
        return found

    def _needs(self, operation: str) -> frozenset[str]:
        if operation not in OPERATIONS:
            raise DeployError(f"unknown operation {operation!r}; use one of: "
                              f"{', '.join(OPERATIONS)}")
        return OPERATIONS[operation]

    def _sessions(self) -> Callable[[], Any]:
        if self._session_factory is None:
            import boto3

            region = self.settings.aws_region
            self._session_factory = lambda: boto3.Session(region_name=region)
        return self._session_factory

    def _saved_key(self) -> str | None:
        return self._saved_secret("pinecone:apiKey")

    def _saved_secret(self, key: str) -> str | None:
        value = self._saved_config.get(key)
        return getattr(value, "value", None) if value is not None else None

    def _require(self, operation: str) -> None:
        """Raise one DeployError listing every missing prerequisite of ``operation``.

        The CLI and AWS credentials are checked before the backend is touched; a Pinecone key
        saved with the stack is only known once it is open, so the key is checked again then.
        """
        problems = self.problems(operation)
        blocking = [p for p in problems if p.fix != FIX_PINECONE]
        if not blocking and self._stack is None and "pinecone" in self._needs(operation):
            # The key and the domain may be saved with the stack: open it to know.
            self.open_stack()
            problems = self.problems(operation)
        if problems:
            listing = "\n".join(f"  - {p}" for p in problems)
            raise DeployError(f"cannot {operation} the stack {self.stack_name!r} yet:\n{listing}")

    # -- the stack --------------------------------------------------------------------------

    def _pulumi(self) -> auto.PulumiCommand:
        if self._command is None:
            self._command = find_pulumi_command()
        version = getattr(self._command, "version", None)
        if version is not None and tuple(version.to_tuple()[:3]) < MIN_CLI_VERSION:
            raise DeployError(
                f"Pulumi CLI {version} is too old; refarch needs "
                f"{'.'.join(map(str, MIN_CLI_VERSION))} or newer: {FIX_CLI}"
            )
        return self._command

    def program(self) -> None:
        """The inline Pulumi program: the stack as configured, with the key as a secret."""
        import pulumi

        if self._config is None:
            raise DeployError("the stack is not configured yet (call open_stack first)")
        if not self._api_key:
            raise DeployError(f"PINECONE_API_KEY is not set: {FIX_PINECONE}")
        oidc_secret = self._saved_secret(OIDC_SECRET_KEY)
        load_infra("program").build_stack(
            self._config, pulumi.Output.secret(self._api_key),
            pulumi.Output.secret(oidc_secret) if oidc_secret else None)

    def open_stack(self) -> auto.Stack:
        """Create or select the stack and write its configuration (idempotent)."""
        if self._stack is not None:
            return self._stack
        from pulumi import automation as auto
        from pulumi.automation.errors import CommandError

        command = self._pulumi()
        self.work_dir.mkdir(parents=True, exist_ok=True)
        options = auto.LocalWorkspaceOptions(
            work_dir=str(self.work_dir),
            pulumi_command=command,
            project_settings=auto.ProjectSettings(
                name=PROJECT, runtime="python",
                description="refarch on AWS (driven by refarch deploy)",
            ),
            env_vars={"PULUMI_SKIP_UPDATE_CHECK": "true"},
        )
        try:
            stack = auto.create_or_select_stack(
                stack_name=self.stack_name, project_name=PROJECT, program=self.program,
                opts=options,
            )
        except CommandError as exc:
            raise self._diagnose(command, exc, f"open the stack {self.stack_name!r}") from None
        try:
            self._saved_config = dict(stack.get_all_config())
        except CommandError as exc:
            raise _cli_error(exc, "read the stack's configuration") from None
        saved = {key.split(":", 1)[1]: value.value for key, value in self._saved_config.items()
                 if key.startswith("refarch:") and key != OIDC_SECRET_KEY}
        self._config = stack_config(self.settings, self.stack_name, saved, self.overrides)
        self._api_key = self.settings.pinecone_api_key or self._saved_key()
        self._write_config(stack, saved)
        self._stack = stack
        return stack

    def _diagnose(self, command: auto.PulumiCommand, exc: Exception, doing: str) -> DeployError:
        """Explain a failure to open the stack: not logged in, or the CLI's own error."""
        from pulumi import automation as auto
        from pulumi.automation.errors import CommandError

        try:
            auto.LocalWorkspace(work_dir=str(self.work_dir), pulumi_command=command).who_am_i()
        except CommandError:
            return DeployError(f"Pulumi is not logged in to a state backend: {FIX_LOGIN}")
        return _cli_error(exc, doing)

    def _write_config(self, stack: auto.Stack, saved: Mapping[str, str]) -> None:
        from pulumi import automation as auto
        from pulumi.automation.errors import CommandError

        assert self._config is not None
        wanted = {f"refarch:{k}": auto.ConfigValue(v) for k, v in self._config.to_values().items()}
        wanted["aws:region"] = auto.ConfigValue(self._config.aws_region)
        if self._api_key and self.settings.pinecone_api_key:
            wanted["pinecone:apiKey"] = auto.ConfigValue(self._api_key, secret=True)
        # Settings back at their default are removed, so they do not come back next time.
        stale = [f"refarch:{k}" for k in saved if f"refarch:{k}" not in wanted]
        try:
            stack.set_all_config(wanted)
            if stale:
                stack.remove_all_config(stale)
        except CommandError as exc:
            raise _cli_error(exc, "write the stack's configuration") from None

    @property
    def config(self) -> StackConfig:
        """The stack's configuration (opens the stack)."""
        self.open_stack()
        assert self._config is not None
        return self._config

    def ensure_plugins(self) -> None:
        """Install the provider plugins the program needs, once per Deployer (the CLI skips
        plugins already installed)."""
        from pulumi.automation.errors import CommandError

        if self._plugins_installed:
            return
        workspace = self.open_stack().workspace
        for name, version, server in plugin_requirements():
            try:
                if server:
                    workspace.install_plugin_from_server(name, version, server)
                else:
                    workspace.install_plugin(name, version)
            except CommandError as exc:
                raise _cli_error(exc, f"install the {name} {version} plugin") from None
        self._plugins_installed = True

    # -- operations -------------------------------------------------------------------------

    def check_rules(self) -> list[Any]:
        """Run every rule on the offline plan of this stack's configuration (all values known
        under mocks, unlike a first preview); DeployError listing each mandatory violation.
        Returns the warnings (advisory findings), which are also written out."""
        from refarch.deploy import rules
        from refarch.deploy.plan import build_plan

        violations = rules.check(build_plan(self.config))
        refused = rules.refusing_deploy(violations)
        if refused:
            listing = "\n".join(f"  - {v}" for v in refused)
            raise DeployError(f"the stack {self.stack_name!r} breaks mandatory rules (nothing "
                              f"was changed):\n{listing}")
        warnings = [v for v in violations if not v.refuses_deploy]
        for warning in warnings:
            self._say(f"WARNING {warning}")
        return warnings

    def _say(self, line: str) -> None:
        if self._write is not None:
            self._write(line)
        else:
            log.warning("%s", line)

    def _check_docker(self, operation: str) -> None:
        self.open_stack()
        assert self._config is not None
        if ("docker" in self._needs(operation) and not self._config.image_uri
                and shutil.which("docker") is None):
            raise DeployError(f"cannot {operation}: Docker was not found: {FIX_DOCKER}")

    def policy_packs(self) -> list[str]:
        """The policy packs every preview and up runs with: refarch's guardrails."""
        if not (POLICY_PACK_DIR / "PulumiPolicy.yaml").is_file():
            raise DeployError(f"the policy pack is missing at {POLICY_PACK_DIR}: deploying "
                              "needs a full clone of the refarch repository")
        return [str(POLICY_PACK_DIR)]

    def _run(self, operation: str, action: Callable[..., Any],
             guarded: bool = False) -> OperationResult:
        from pulumi.automation.errors import CommandError

        from refarch.deploy.progress import ProgressReporter

        self._require(operation)
        stack = self.open_stack()
        assert self._config is not None
        self._check_docker(operation)
        if guarded:
            self.check_rules()
        self.ensure_plugins()
        reporter = ProgressReporter(operation, write=self._write, bar=self._progress_bar)
        started = time.perf_counter()
        event(log, "deploy_started", operation=operation, stack=self.stack_name)
        try:
            result = action(stack, reporter)
        except CommandError as exc:
            raise _policy_error(reporter, operation, self.stack_name) or _cli_error(
                exc, f"{operation} the stack {self.stack_name!r}") from None
        finally:
            reporter.close()
        seconds = time.perf_counter() - started
        outputs = {}
        if hasattr(result, "outputs") and result.outputs:
            outputs = {k: v.value for k, v in result.outputs.items()}
        changes = dict(reporter.changes)
        if not changes and getattr(result, "change_summary", None):
            changes = {getattr(k, "value", str(k)): int(v)
                       for k, v in result.change_summary.items()}
        summary = getattr(result, "summary", None)
        if not changes and summary is not None and summary.resource_changes:
            changes = {str(k): int(v) for k, v in summary.resource_changes.items()}
        event(log, "deploy_finished", operation=operation, stack=self.stack_name,
              seconds=seconds, changes=json.dumps(changes, sort_keys=True))
        return OperationResult(operation, changes, outputs, seconds, list(reporter.lines))

    def preview(self) -> OperationResult:
        """Show what ``up`` would change, without changing anything; the offline rule check
        and the policy pack run first, and a mandatory violation fails the preview."""
        packs = self.policy_packs()
        return self._run("preview", lambda stack, reporter: stack.preview(
            on_event=reporter, color="never", policy_packs=packs), guarded=True)

    def up(self) -> OperationResult:
        """Create or update every resource; returns the stack outputs.

        Refused before anything changes when a mandatory rule fails: offline on the plan, then
        in a preview with the policy pack (stack policies judge the planned state, so the
        preview is where they can stop a change), and the update itself runs with the pack.
        """
        self._require("up")  # what up needs beyond a preview (Docker), said up front
        self._check_docker("up")
        packs = self.policy_packs()
        self._run("preview", lambda stack, reporter: stack.preview(
            on_event=reporter, color="never", policy_packs=packs), guarded=True)
        result = self._run("up", lambda stack, reporter: stack.up(
            on_event=reporter, color="never", policy_packs=packs))
        if self._run_migrations:
            # The services wait (wait-for-schema) until this has run.
            self.migrate(result.outputs)
        return result

    # -- operator access (refarch.deploy.operator) -------------------------------------------

    def _client(self, service: str) -> Any:
        return self._sessions()().client(service, region_name=self.settings.aws_region)

    def migrate(self, outputs: Mapping[str, Any] | None = None) -> str:
        """Run the migration task (the master credentials' only holder) and wait for it;
        returns its task ARN."""
        from refarch.deploy.operator import run_migration

        self._say("running the migration task (refarch db migrate --role-passwords)")
        task = run_migration(self._sessions()(), outputs or self.outputs())
        self._say(f"migrations applied and role passwords set ({task})")
        return task

    def add_user(self, email: str) -> str:
        """Create a sign-in user in the stack's Cognito user pool; returns the pool id."""
        from refarch.deploy.operator import add_user

        return add_user(self._client("cognito-idp"), self.outputs(), email)

    def psql_command(self, service: str = "app") -> list[str]:
        """The ECS Exec command that opens psql in a running ``service`` task as its role."""
        from refarch.deploy.operator import psql_command, running_task

        outputs = self.outputs()
        task = running_task(self._client("ecs"), outputs, service)
        return psql_command(outputs, self.settings.aws_region, service, task)

    def refresh(self) -> OperationResult:
        """Bring the stack's state in line with what exists in the cloud."""
        return self._run("refresh", lambda stack, reporter: stack.refresh(
            on_event=reporter, color="never"))

    def destroy(self, remove_stack: bool = False) -> OperationResult:
        """Delete every resource of the stack (and the stack itself with ``remove_stack``)."""
        from pulumi.automation.errors import CommandError

        result = self._run("destroy", lambda stack, reporter: stack.destroy(
            on_event=reporter, color="never"))
        if remove_stack:
            try:
                self.open_stack().workspace.remove_stack(self.stack_name)
            except CommandError as exc:
                raise _cli_error(exc, f"remove the stack {self.stack_name!r}") from None
        return result

    def outputs(self) -> dict[str, Any]:
        """The stack outputs of the last ``up`` (empty before the first one)."""
        from pulumi.automation.errors import CommandError

        self._require("outputs")
        stack = self.open_stack()
        try:
            return {k: v.value for k, v in stack.outputs().items()}
        except CommandError as exc:
            raise _cli_error(exc, "read the stack outputs") from None
