"""Supply-chain checks of the image build: every input pinned by digest or hash.

:func:`dockerfile_findings` reads a Dockerfile and its lock files and reports

* *unpinned* inputs (mandatory): a base image or the BuildKit frontend without ``@sha256:``, a
  downloaded file (``ADD https://...``) without ``--checksum=sha256:``, a ``pip install`` of
  anything but the lock files with ``--require-hashes`` (or the local package with
  ``--no-deps``), a lock line without a ``--hash``;
* *placeholders* (refused on deploy): a digest or hash of 64 zeros, which stands for a value
  that cannot be known offline (an image digest, the checksum of a file on a server this
  machine cannot reach). ``docs/deploy.md`` says how to fill each in.

The rules ``image-build-pinned`` and ``image-pins-filled-in`` (:mod:`refarch.deploy.safety_rules`)
run these on the Dockerfile the plan's image is built from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

#: The stand-in for a digest or hash that cannot be known offline.
PLACEHOLDER = "0" * 64
_DIGEST = re.compile(r"@sha256:([0-9a-f]{64})\b")
_CHECKSUM = re.compile(r"--checksum=sha256:([0-9a-f]{64})\b")
_HASH = re.compile(r"--hash=sha256:([0-9a-f]{64})\b")


@dataclass
class Findings:
    """What a Dockerfile leaves unpinned, and which pins are placeholders."""

    unpinned: list[str] = field(default_factory=list)
    placeholders: list[str] = field(default_factory=list)


def _logical_lines(text: str) -> list[str]:
    joined = re.sub(r"\\\n", " ", text)
    return [line.strip() for line in joined.splitlines() if line.strip()]


def _args(lines: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in lines:
        match = re.match(r"^ARG\s+(\w+)=(\S+)", line, re.I)
        if match:
            found[match.group(1)] = match.group(2)
    return found


def _expand(value: str, args: dict[str, str]) -> str:
    return re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), value)


def _digest_pin(what: str, reference: str, findings: Findings) -> None:
    match = _DIGEST.search(reference)
    if not match:
        findings.unpinned.append(f"{what} {reference} is not pinned by digest (@sha256:...)")
    elif match.group(1) == PLACEHOLDER:
        findings.placeholders.append(f"{what} {reference.split('@')[0]} has a placeholder "
                                     "digest: fill in the real one")


def lock_findings(path: Path, findings: Findings) -> None:
    """Every requirement of a lock file pinned (==) with at least one real hash."""
    if not path.is_file():
        findings.unpinned.append(f"lock file {path.name} is missing")
        return
    for line in _logical_lines(path.read_text(encoding="utf-8")):
        if line.startswith("#"):
            continue
        name = line.split()[0]
        hashes = _HASH.findall(line)
        if "==" not in name or not hashes:
            findings.unpinned.append(f"{path.name}: {name} is not pinned with a hash")
        elif all(h == PLACEHOLDER for h in hashes):
            findings.placeholders.append(f"{path.name}: {name} has a placeholder hash: fill "
                                         "in the real one")


def dockerfile_findings(dockerfile: Path) -> Findings:
    """Check ``dockerfile`` (and the lock files it installs, beside it)."""
    findings = Findings()
    if not dockerfile.is_file():
        findings.unpinned.append(f"{dockerfile} does not exist")
        return findings
    text = dockerfile.read_text(encoding="utf-8")
    syntax = re.match(r"^#\s*syntax=(\S+)", text)
    if syntax:
        _digest_pin("the BuildKit frontend", syntax.group(1), findings)
    lines = [line for line in _logical_lines(text) if not line.startswith("#")]
    args = _args(lines)
    stages: set[str] = set()
    locks: set[str] = set()
    for line in lines:
        keyword = line.split()[0].upper()
        if keyword == "FROM":
            parts = line.split()
            image = _expand(parts[1], args)
            if image not in stages:
                _digest_pin("base image", image, findings)
            if len(parts) >= 4 and parts[2].upper() == "AS":
                stages.add(parts[3])
        elif keyword == "ADD" and re.search(r"\shttps?://", line):
            match = _CHECKSUM.search(line)
            url = re.search(r"(https?://\S+)", line)
            where = url.group(1) if url else "a URL"
            if not match:
                findings.unpinned.append(f"ADD {where} has no --checksum=sha256:...")
            elif match.group(1) == PLACEHOLDER:
                findings.placeholders.append(f"ADD {where} has a placeholder checksum: fill in "
                                             "the real one")
        elif keyword == "RUN":
            for command in re.split(r"&&|;", line[len("RUN"):]):
                if not re.search(r"\bpip3?\s+install\b", command):
                    continue
                if "--require-hashes" in command:
                    locks.update(re.findall(r"-r\s+(\S+)", command))
                elif "--no-deps" in command and re.search(r"\s(-e\s+)?\.(\s|$)", command):
                    continue  # the local package itself, its dependencies come from the lock
                else:
                    findings.unpinned.append(f"pip install without --require-hashes: "
                                             f"{command.strip()[:80]}")
        elif keyword == "COPY":
            continue
    for lock in sorted(locks):
        lock_findings(dockerfile.parent / Path(lock).name, findings)
    if not locks:
        findings.unpinned.append("no hash-checked install from a lock file")
    return findings


def image_uri_findings(uri: str) -> Findings:
    """A prebuilt image must be given by digest (a tag can be moved to other content)."""
    findings = Findings()
    _digest_pin("imageUri", uri, findings)
    return findings
