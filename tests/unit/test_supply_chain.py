"""The supply-chain check finds every unpinned input of a Dockerfile and every placeholder."""

from __future__ import annotations

from pathlib import Path

from refarch.deploy.supply_chain import PLACEHOLDER, dockerfile_findings, image_uri_findings

ROOT = Path(__file__).resolve().parents[2]
REAL = "ab" * 32


def _write(tmp_path: Path, dockerfile: str, lock: str = f"six==1.17.0 --hash=sha256:{REAL}\n") -> Path:
    (tmp_path / "requirements.lock").write_text(lock, encoding="utf-8")
    path = tmp_path / "Dockerfile"
    path.write_text(dockerfile, encoding="utf-8")
    return path


PINNED = f"""# syntax=docker/dockerfile:1.7@sha256:{REAL}
ARG BASE=python:3.11-slim@sha256:{REAL}
FROM ${{BASE}} AS build
COPY requirements.lock ./
RUN pip install --require-hashes -r requirements.lock \\
 && pip install --no-deps -e .
FROM build AS runtime
ADD --checksum=sha256:{REAL} https://example.org/ca.pem /etc/ssl/ca.pem
"""


def test_a_fully_pinned_dockerfile_passes(tmp_path: Path) -> None:
    findings = dockerfile_findings(_write(tmp_path, PINNED))
    assert findings.unpinned == [] and findings.placeholders == []


def test_each_unpinned_input_is_found(tmp_path: Path) -> None:
    text = (PINNED.replace(f"1.7@sha256:{REAL}", "1.7")
            .replace(f"slim@sha256:{REAL}", "slim")
            .replace(f"--checksum=sha256:{REAL} ", "")
            + "RUN pip install requests==2.32.3\n")
    found = dockerfile_findings(_write(tmp_path, text, "six==1.17.0\n")).unpinned
    assert any("frontend docker/dockerfile:1.7 is not pinned" in f for f in found)
    assert any("base image python:3.11-slim is not pinned" in f for f in found)
    assert any("ADD https://example.org/ca.pem has no --checksum" in f for f in found)
    assert any("pip install without --require-hashes: pip install requests" in f for f in found)
    assert any("six==1.17.0 is not pinned with a hash" in f for f in found)


def test_placeholders_are_reported_apart(tmp_path: Path) -> None:
    text = PINNED.replace(f"slim@sha256:{REAL}", f"slim@sha256:{PLACEHOLDER}")
    findings = dockerfile_findings(_write(tmp_path, text, f"six==1.17.0 --hash=sha256:{PLACEHOLDER}"))
    assert findings.unpinned == []
    assert findings.placeholders == [
        "base image python:3.11-slim has a placeholder digest: fill in the real one",
        "requirements.lock: six==1.17.0 has a placeholder hash: fill in the real one"]


def test_the_repository_dockerfile_is_fully_pinned_up_to_its_placeholders() -> None:
    findings = dockerfile_findings(ROOT / "Dockerfile")
    assert findings.unpinned == []
    # What could not be known offline, each refused by `refarch deploy up` until filled in.
    assert len(findings.placeholders) == 5, findings.placeholders


def test_a_prebuilt_image_must_be_given_by_digest() -> None:
    assert image_uri_findings("public.ecr.aws/x/refarch:1").unpinned
    assert image_uri_findings(f"public.ecr.aws/x/refarch@sha256:{REAL}").unpinned == []
