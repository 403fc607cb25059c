"""The run's settings and the files they name, read and checked before pytest starts; a wrong one is one sentence
and exit 2 (with no earlier run's reports left to publish)."""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import pytest

from modmsg import __version__
from modmsg.config import OPTIONS, ConfigError, Settings, load_config_file, resolve
from modmsg.deviations import Deviations, DeviationsError, load_deviations
from modmsg.ledger import Ledger, ledger_path
from modmsg.plugin.state import new_run_id
from modmsg.plugin.upstream import as_upstream_error, pass_settings, upstream_dir
from modmsg.profiles import Profile, ProfileError, load_profile
from modmsg.redaction import Redactor, inert
from modmsg.requirements import Catalogue, CatalogueError, load_catalogue, matches
from modmsg.results import RunResult
from modmsg.results_file import ResultsError, load_results
from modmsg.target import probe, transport_for
from modmsg.transport import RunBudget

SETUP_ERRORS = (ConfigError, ProfileError, CatalogueError, DeviationsError)
"""A wrong setting or a wrong file named by one: one sentence and exit 2, never a traceback."""


@dataclass(frozen=True)
class Prepared:
    """The run's settings and the files they name, read and checked before pytest configures anything."""

    settings: Settings
    catalogue: Catalogue
    profile: Profile
    overlay: Deviations | None
    baseline: RunResult | None
    run_id: str = field(default_factory=lambda: new_run_id())
    """The tag of every thread this run creates, the probe's included."""
    upstream_pass: bool = False
    """This pytest is the upstream pass of a run with --upstream-url (:mod:`.upstream`)."""


def prepare(config: pytest.Config) -> Prepared:
    """Check every setting and every file one names; raise one of SETUP_ERRORS (one sentence) at the first wrong one."""
    cli = {option.name: config.getoption(f"modmsg_{option.name}") for option in OPTIONS}
    settings, pass_run_id = pass_settings(resolve(cli, file=load_config_file(Path.cwd())), config)
    if settings.upstream_headers and not settings.upstream_url:
        raise ConfigError(
            "--upstream-header (MODMSG_UPSTREAM_HEADERS, upstream_headers in modmsg.toml) is set without --upstream-url"
        )
    catalogue = load_catalogue()
    for selector in settings.requirements:
        if not any(matches(r.id, selector) for r in catalogue.active()):
            close = difflib.get_close_matches(selector, [r.id for r in catalogue.active()], n=1, cutoff=0.75)
            hint = f"; did you mean {close[0]}?" if close else "; `modmsg requirements` lists them"
            raise ConfigError(f"--req {selector} matches no requirement in the catalogue{hint}")
    profile = load_profile(settings.profile)
    overlay = load_deviations(settings.overlay, catalogue) if settings.overlay else None
    baseline = load_baseline(settings, profile) if settings.baseline else None
    if settings.sign_key:
        check_sign_key(settings.sign_key)
    if pass_run_id is not None:  # the upstream pass tags its threads with the run's id
        return Prepared(settings, catalogue, profile, overlay, baseline, run_id=pass_run_id, upstream_pass=True)
    return Prepared(settings, catalogue, profile, overlay, baseline)


def check_sign_key(path: str) -> None:
    """--sign-key must name a readable Ed25519 private key before anything runs, not after a long run."""
    from modmsg.report.signing import SigningError, load_signing_key

    try:
        load_signing_key(Path(path))
    except SigningError as exc:
        raise ConfigError(f"--sign-key: {exc}") from None


def probe_target(prepared: Prepared) -> None:
    """Raise ConfigError (one sentence, already redacted) when no Assistants API answers at the base URL."""
    settings = prepared.settings
    assert settings.base_url is not None
    transport = transport_for(
        settings,
        settings.base_url,
        settings.api_key,
        prepared.profile.settings.beta_header,
        RunBudget.since(settings.max_duration),
    )
    try:
        left = probe(transport, settings.base_url, prepared.run_id)
    except ConfigError as exc:
        raise ConfigError(transport.redactor.console(str(exc))) from None
    if left:  # could not delete the probe's thread: the ledger names it for `modmsg sweep`
        Ledger(ledger_path(settings.report_dir), redact=transport.redactor.text).created(
            prepared.run_id, left, settings.base_url
        )


def probe_upstream(prepared: Prepared) -> None:
    """Raise ConfigError (one sentence) when no Assistants API answers at --upstream-url, as for the target."""
    settings = prepared.settings
    assert settings.upstream_url is not None
    as_pass = settings.upstream_pass(report_dir=upstream_dir(settings), seed=None, max_duration=settings.max_duration)
    try:
        probe_target(dataclasses.replace(prepared, settings=as_pass))
    except ConfigError as exc:
        raise as_upstream_error(exc) from None


def load_baseline(settings: Settings, profile: Profile) -> RunResult:
    """The --baseline results.json, refused (one sentence) when it is unreadable or from another run's kind: a
    different target, profile or suite version would turn every difference into a false regression or fix."""
    path = settings.baseline
    try:
        baseline = load_results(Path(str(path)))
    except (ResultsError, OSError) as exc:
        raise ConfigError(f"baseline {path} cannot be used: {exc}") from None
    except RecursionError:
        raise ConfigError(f"baseline {path} cannot be used: it is nested too deeply to be a results.json") from None
    secrets_ = settings.secrets()
    target = settings.base_url or "bundled reference server"
    this_run = {
        "target": Redactor(frozenset(), secrets_).text(target) if secrets_ else target,
        "profile": profile.name,
        "suite_version": __version__,
    }
    for key, ours in this_run.items():
        theirs = getattr(baseline.meta, key, None)
        if isinstance(theirs, str) and theirs != ours:
            raise ConfigError(
                f"baseline {path} is from another {key.replace('_', ' ')} ({theirs}, this run: {ours}); "
                "compare only runs of the same target, profile and suite version"
            )
    return baseline


def refuse(message: str, report_dir: Path | None) -> NoReturn:
    """A wrong setting: one sentence, exit 2, no verdict, and no earlier run's reports left to publish.
    ``message`` is made inert here; a caller that knows the run's secrets redacts it first."""
    if report_dir is not None:
        clear_reports(report_dir)
    pytest.exit(f"modmsg: {inert(message)}", returncode=2)


def clear_reports(report_dir: Path) -> None:
    """Best effort: a report directory that cannot be cleared is reported by the writer that needs it."""
    from modmsg.report import clear_reports

    with contextlib.suppress(OSError):
        clear_reports(report_dir)


def report_dir_hint(config: pytest.Config) -> Path:
    """Where the reports of this run would go, when the settings as a whole could not be read: the option, its
    variable, modmsg.toml (when that file can be read), the default."""
    raw = config.getoption("modmsg_report_dir") or os.environ.get("MODMSG_REPORT_DIR")
    if not raw:
        with contextlib.suppress(ConfigError):
            raw = load_config_file(Path.cwd()).get("report_dir")
    return Path(str(raw or next(option.default for option in OPTIONS if option.name == "report_dir")))
