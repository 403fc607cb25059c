"""The claim bundle: beside the five reports, a claim record (claim.json) and a sha256 manifest (SHA256SUMS).

claim.json is an in-toto Statement (``https://in-toto.io/Statement/v1``) with the test-result predicate
(``https://in-toto.io/attestation/test-result/v0.1``): the subjects are the five reports with their sha256, the
predicate's standard fields say what passed, warned (waived) and failed and which files configured the run (the
vendored spec, the spec overlay, the catalogue, the profile and the deviations file, each by sha256, never by a
local path), and its ``modmsg`` field (the predicate is open to extension) holds the suite version and commit, the
product, the target as the reports show it (redacted, no userinfo), seed, start, end, the claim and one outcome
per requirement. With ``--sign-key``, claim.json.sig holds its detached Ed25519 signature (:mod:`.signing`).
SHA256SUMS lists every artefact in ``sha256sum`` format, so ``sha256sum -c SHA256SUMS`` checks it as well as
``modmsg verify DIR`` (:mod:`.verify`) does.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from modmsg.deviations import Deviations
from modmsg.paths import REPO_DIR, spec_dir
from modmsg.profiles import Profile
from modmsg.requirements import default_path as catalogue_path
from modmsg.results import Outcome, RunResult
from modmsg.spec import OVERLAY, fragment_path

REPORTS = ("results.json", "junit.xml", "summary.md", "report.html", "badge.svg")
"""The reports a claim record names as its subjects (modmsg.report writes them first)."""
CLAIM = "claim.json"
SIGNATURE = "claim.json.sig"
MANIFEST = "SHA256SUMS"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://in-toto.io/attestation/test-result/v0.1"
CLAIM_FORMAT = "modmsg-claim/1"
SPEC_INPUT = "spec/modify-message.openapi.yaml"
"""The vendored spec's name among the claim's configuration (its sha256 is also results.json's spec_sha256)."""
WARNED = (Outcome.WAIVED,)
FAILED = (Outcome.FAIL, Outcome.ERROR, Outcome.BLOCKED)
GIT_TIMEOUT = 5.0
_COMMIT = re.compile(r"[0-9a-f]{40}")


@dataclass(frozen=True)
class Input:
    """A file that configured the run, named without its local path, with its sha256."""

    name: str
    sha256: str


@dataclass(frozen=True)
class Provenance:
    """What the claim record says about the run beyond results.json: the suite's commit and the input files."""

    commit: str | None  # the suite's git commit; None outside a git checkout (an installed wheel)
    modified: bool | None  # tracked files differ from that commit
    inputs: tuple[Input, ...]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(REPO_DIR), *args], capture_output=True, text=True, timeout=GIT_TIMEOUT, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def suite_commit() -> tuple[str | None, bool | None]:
    """The suite's commit and whether tracked files differ from it; (None, None) when the suite does not run
    from a git checkout (an installed wheel: its parent directory is site-packages, never another repository)."""
    if not (REPO_DIR / ".git").exists() or not (REPO_DIR / "pyproject.toml").is_file():
        return None, None
    head = (_git("rev-parse", "HEAD") or "").strip()
    if not _COMMIT.fullmatch(head):
        return None, None
    status = _git("status", "--porcelain", "--untracked-files=no")
    return head, (bool(status.strip()) if status is not None else None)


def provenance(profile: Profile, deviations: Deviations | None) -> Provenance:
    """The run's input files by sha256: the vendored spec, its overlay, the catalogue, the profile, the deviations."""
    files = [
        (SPEC_INPUT, fragment_path()),
        (f"spec/{OVERLAY}", spec_dir() / OVERLAY),
        ("spec/requirements.yaml", catalogue_path()),
        (f"profile:{profile.name}", Path(profile.source)),
    ]
    if deviations is not None:
        files.append(("deviations", Path(deviations.source)))
    commit, modified = suite_commit()
    return Provenance(commit, modified, tuple(Input(name, digest) for name, path in files if (digest := _digest(path))))


def _digest(path: Path) -> str | None:
    """The file's sha256; None when it is gone by the end of the run (then the claim does not name it)."""
    try:
        return sha256_file(path)
    except OSError:
        return None


def without_userinfo(target: str) -> str:
    """The target without user:password@ (the reports' target is already redacted; this is belt and braces)."""
    try:
        parts = urlsplit(target)
    except ValueError:
        return target
    if not parts.scheme or "@" not in parts.netloc:
        return target
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def ids_with(run: RunResult, outcomes: Iterable[Outcome]) -> list[str]:
    wanted = tuple(outcomes)
    return [r.id for r in run.requirements if r.outcome in wanted]


def predicate_result(run: RunResult) -> str:
    """in-toto's ``result``: "pass" only when the run makes a claim and nothing failed or was waived."""
    clean = not ids_with(run, (*FAILED, *WARNED))
    return "pass" if run.claim.status == "conformant" and clean else "fail"


def modmsg_facts(run: RunResult, commit: str | None, modified: bool | None) -> dict[str, Any]:
    """The claim's own fields: everything ``modmsg verify`` compares with results.json, and the suite's commit."""
    meta = run.meta
    attributed = {}  # with --upstream-url only, so a claim without an upstream keeps its shape
    if meta.upstream is not None:
        attributed = {
            "upstream": without_userinfo(meta.upstream),
            "attribution": {r.id: r.attribution.value for r in run.requirements if r.attribution is not None},
        }
    return {
        "format": CLAIM_FORMAT,
        "suite": {"name": "modmsg", "version": meta.suite_version, "commit": commit, "modified": modified},
        "spec": {"version": meta.spec_version, "commit": meta.spec_commit, "sha256": meta.spec_sha256},
        "product": {"name": meta.product, "version": meta.product_version},
        "target": without_userinfo(meta.target),
        "profile": meta.profile,
        "seed": meta.seed,
        "max_examples": meta.max_examples,
        "selection": list(meta.selection),
        "started": meta.started,
        "finished": meta.finished,
        "stopped": meta.stopped,
        "claim": run.claim.as_dict(),
        "outcomes": {r.id: r.outcome.value for r in run.requirements},
        **attributed,
    }


def statement(run: RunResult, subjects: Mapping[str, str], origin: Provenance) -> dict[str, Any]:
    """The claim record: an in-toto Statement with the test-result predicate, extended by a ``modmsg`` field."""
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": name, "digest": {"sha256": digest}} for name, digest in subjects.items()],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "result": predicate_result(run),
            "configuration": [{"name": i.name, "digest": {"sha256": i.sha256}} for i in origin.inputs],
            "passedTests": ids_with(run, (Outcome.PASS,)),
            "warnedTests": ids_with(run, WARNED),
            "failedTests": ids_with(run, FAILED),
            "modmsg": modmsg_facts(run, origin.commit, origin.modified),
        },
    }


def manifest_text(digests: Mapping[str, str]) -> str:
    """``sha256sum`` format: the hex digest, two spaces (text mode), the file name."""
    return "".join(f"{digest}  {name}\n" for name, digest in digests.items())


def write_bundle(run: RunResult, directory: Path, origin: Provenance, sign_key: Path | None = None) -> tuple[Path, ...]:
    """Write claim.json (its signature with a key) and SHA256SUMS beside the five reports already in ``directory``.

    The key is loaded before anything is written, so a key that cannot be used leaves no half bundle
    (:class:`~modmsg.report.signing.SigningError`, one sentence)."""
    signer = None
    if sign_key is not None:
        from modmsg.report.signing import load_signing_key

        signer = load_signing_key(sign_key)
    digests = {name: sha256_file(directory / name) for name in REPORTS}
    record = json.dumps(statement(run, digests, origin), indent=2, ensure_ascii=False) + "\n"
    claim = directory / CLAIM
    claim.write_bytes(record.encode("utf-8", "backslashreplace"))
    written = [claim]
    if signer is not None:
        signature = directory / SIGNATURE
        signature.write_text(signer.sign(claim.read_bytes()), encoding="ascii")
        written.append(signature)
    digests.update({path.name: sha256_file(path) for path in written})
    manifest = directory / MANIFEST
    manifest.write_text(manifest_text(digests), encoding="utf-8", newline="\n")
    return (*written, manifest)
