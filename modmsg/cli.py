"""The ``modmsg`` command: run the suites, serve the reference server, list requirements, re-render reports.

Exit codes: 0 conformant for what was asked · 1 non-conformant (or a regression) · 2 usage, configuration or
unreachable target.
"""

from __future__ import annotations

import argparse
import difflib
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from modmsg import __version__
from modmsg.config import OPTIONS, ConfigError, Option
from modmsg.values import parse_latency_ms

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2
EXAMPLES = {
    "run": "examples:\n  modmsg run\n  MODMSG_API_KEY=sk-... modmsg run --base-url https://staging.example/v1 "
    "--header 'x-portkey-provider: openai'\n  modmsg run --req MM-META --profile spec --seed 7",
    "serve": "examples:\n  modmsg serve --port 8080 --api-key sk-local\n  modmsg serve --variant accepts_17_keys",
    "requirements": "examples:\n  modmsg requirements\n  modmsg requirements --level MUST --profile spec\n"
    "  modmsg requirements MM-META-03",
    "report": "examples:\n  modmsg report reports/results.json --out published/",
    "variants": "examples:\n  modmsg variants",
    "sweep": "examples:\n  MODMSG_API_KEY=sk-... modmsg sweep --base-url https://staging.example/v1\n"
    "  modmsg sweep --base-url https://staging.example/v1 --ledger ci-reports/.modmsg-threads.jsonl --dry-run",
    "verify": "examples:\n  modmsg verify reports/\n  modmsg verify published/ --public-key vendor-ed25519.pub.pem\n"
    "  (cd reports && sha256sum -c SHA256SUMS)",
}


class CliError(Exception):
    """A usage problem: printed as one line, exit 2."""


class _Parser(argparse.ArgumentParser):
    """argparse with its errors as one line (``modmsg: …``, exit 2) instead of a usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"modmsg: {message} (see `{self.prog} --help`)\n")


def _unknown_option(command: argparse.ArgumentParser, word: str) -> str:
    """One sentence for an option ``command`` does not know, with the closest one it does."""
    if not word.startswith("-"):
        return f"unexpected argument {_shown(word)} for `{command.prog}`; see `{command.prog} --help`"
    flag = word.split("=", 1)[0]
    known = [option for action in command._actions for option in action.option_strings]
    close = difflib.get_close_matches(flag, known, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]}?" if close else f"; see `{command.prog} --help`"
    after = " (pytest's own options go after --)" if command.prog.endswith(" run") and not close else ""
    return f"unknown option {_shown(flag)} for `{command.prog}`{hint}{after}"


def _shown(text: str) -> str:
    return text if text.isprintable() and len(text) <= 60 else repr(text[:60])


def _workers(text: str) -> int:
    try:
        count = int(text)
    except ValueError:
        count = 0
    if count < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of workers >= 1, got {text!r}")
    return count


def _add_option(parser: argparse.ArgumentParser, option: Option[Any], help: str) -> None:
    """A command's flag for ``option``; unset stays None, so resolve() applies env, modmsg.toml and the default."""
    parser.add_argument(
        option.flag,
        dest=option.name,
        metavar=option.metavar,
        default=None,
        action="append" if option.repeatable else "store",
        help=f"{help} [env {option.env}]",
    )


def _latency_ms(text: str) -> float:
    try:
        return parse_latency_ms(text, "--latency-ms")
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="modmsg",
        description="Conformance suite for OpenAI-compatible 'modify message' "
        "(POST /v1/threads/{thread_id}/messages/{message_id}).",
        epilog="exit codes: 0 conformant, 1 not conformant, 2 usage/configuration/unreachable target",
    )
    parser.add_argument("--version", action="version", version=f"modmsg {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    formatter = argparse.RawDescriptionHelpFormatter

    run = commands.add_parser(
        "run",
        help="run the conformance suites against a target (default: the reference server)",
        epilog=EXAMPLES["run"],
        formatter_class=formatter,
    )
    for option in OPTIONS:
        _add_option(run, option, option.help)
    run.add_argument("-k", dest="keyword", metavar="EXPR", help="pytest -k expression (test names, ids, levels)")
    run.add_argument("--workers", type=_workers, default=None, metavar="N", help="parallel workers (pytest-xdist)")
    run.add_argument("pytest_args", nargs=argparse.REMAINDER, help="further arguments for pytest, after --")

    serve = commands.add_parser(
        "serve", help="run the bundled reference server", epilog=EXAMPLES["serve"], formatter_class=formatter
    )
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument(
        "--api-key", default=None, help="key the server accepts [env MODMSG_API_KEY; default sk-modmsg-reference]"
    )
    serve.add_argument(
        "--variant", default=None, metavar="NAME", help="switch on one deliberate defect (see `modmsg variants`)"
    )
    serve.add_argument(
        "--rate-limit", type=float, default=None, metavar="N", help="answer 429 past N requests per second"
    )
    serve.add_argument(
        "--latency-ms",
        type=_latency_ms,
        default=0.0,
        metavar="MS",
        help="a distant target: answer each request MS ms late, the first of each new connection 2*MS ms late",
    )

    listing = commands.add_parser(
        "requirements",
        help="print the requirement catalogue",
        epilog=EXAMPLES["requirements"],
        formatter_class=formatter,
    )
    listing.add_argument(
        "id", nargs="?", metavar="ID", help="explain one requirement: statement, level, source, tests, variants"
    )
    listing.add_argument("--level", choices=("MUST", "SHOULD", "MAY"))
    listing.add_argument("--profile", choices=("openai", "spec"))

    commands.add_parser(
        "variants",
        help="list the deliberately broken server variants",
        epilog=EXAMPLES["variants"],
        formatter_class=formatter,
    )

    report = commands.add_parser(
        "report",
        help="re-render report.html, summary.md and badge.svg from a results.json",
        epilog=EXAMPLES["report"],
        formatter_class=formatter,
    )
    report.add_argument("results", type=Path)
    report.add_argument("--out", type=Path, default=None, help="output directory (default: next to the results file)")

    sweep = commands.add_parser(
        "sweep",
        help="delete the threads that crashed runs left on a target (only threads carrying their run's tag)",
        description="Reads the thread ledger that runs against a --base-url keep (REPORT_DIR/.modmsg-threads.jsonl), "
        "and deletes every thread still listed there for this target whose metadata still carries the modmsg_run "
        "tag of the run that created it. Threads without that tag are never deleted. Exit codes: 0 every listed "
        "thread settled, 1 some could not be checked or deleted (they stay listed: sweep again), 2 usage.",
        epilog=EXAMPLES["sweep"],
        formatter_class=formatter,
    )
    by_name = {option.name: option for option in OPTIONS}
    sweep_help = {
        "base_url": "Target API root the crashed runs used, e.g. https://staging.example/v1 (required).",
        "report_dir": "Report directory of those runs; the ledger is DIR/.modmsg-threads.jsonl.",
    }
    for name in ("base_url", "api_key", "api_key_env", "headers", "secret_headers", "profile", "timeout", "report_dir"):
        _add_option(sweep, by_name[name], sweep_help.get(name, by_name[name].help))
    sweep.add_argument(
        "--ledger", type=Path, default=None, help="ledger file (default: REPORT_DIR/.modmsg-threads.jsonl)"
    )
    sweep.add_argument("--run", default=None, metavar="RUN_ID", help="only the threads of this run (modmsg-...)")
    sweep.add_argument("--dry-run", action="store_true", help="check and list, delete nothing")
    verify = commands.add_parser(
        "verify",
        help="check a published report directory: manifest, claim record and every report agree with results.json",
        description="Checks the claim bundle every run writes beside its reports: each artefact matches its sha256 in "
        "SHA256SUMS, and claim.json, junit.xml, report.html, summary.md and badge.svg say what results.json says "
        "(claim and one outcome per requirement). With --public-key, claim.json.sig must be a valid Ed25519 "
        "signature of claim.json (runs signed with --sign-key). Exit codes: 0 the bundle verifies, 1 one line per "
        "discrepancy, 2 no such directory, no bundle in it, or an unusable public key.",
        epilog=EXAMPLES["verify"],
        formatter_class=formatter,
    )
    verify.add_argument("directory", type=Path, metavar="DIR", help="the report directory of a run")
    verify.add_argument(
        "--public-key", type=Path, default=None, metavar="PATH", help="Ed25519 public key (PEM) of the claim's signer"
    )
    for command in commands.choices.values():
        command.set_defaults(command_parser=command)  # main() names its options when one is mistyped
    return parser


def _pytest_args(args: argparse.Namespace) -> list[str]:
    from modmsg.paths import suites_dir

    argv = [str(suites_dir()), "-p", "no:cacheprovider", "-q"]
    # This process imported modmsg before pytest could mark the plugin for assertion rewriting; the plugin raises
    # typed failures and needs none, so pytest's warning about it would only be noise in every run.
    argv += ["-W", "ignore:Module already imported so cannot be rewritten:pytest.PytestAssertRewriteWarning"]
    for option in OPTIONS:
        value = getattr(args, option.name)
        if value is None:
            continue
        for item in value if option.repeatable else [value]:
            argv += [option.flag, str(item)]
    if args.keyword:
        argv += ["-k", args.keyword]
    if args.workers and args.workers > 1:
        # loadgroup: a generation stream's tests (xdist_group marks) share a worker, so each stream is drawn once;
        # every other test is handed out one by one as under --dist load.
        argv += ["-n", str(args.workers), "--dist", "loadgroup"]
    extra = list(args.pytest_args)
    return argv + (extra[1:] if extra[:1] == ["--"] else extra)


def cmd_run(args: argparse.Namespace) -> int:
    import pytest

    if args.api_key:
        print("modmsg: warning: --api-key shows in the process list; prefer MODMSG_API_KEY", file=sys.stderr)
    code = pytest.main(_pytest_args(args))
    if code == pytest.ExitCode.OK:
        return EXIT_OK
    if code == pytest.ExitCode.TESTS_FAILED:
        return EXIT_FAIL
    if code == pytest.ExitCode.NO_TESTS_COLLECTED:  # e.g. -k under --workers (the plugin says it without xdist)
        print("modmsg: the selection (-k, -m, --req or the paths after --) selects no test; nothing was run",
              file=sys.stderr)  # fmt: skip
    return EXIT_USAGE


def cmd_serve(args: argparse.Namespace) -> int:
    from modmsg.reference import DEFAULT_BEHAVIOUR, serve_forever

    variant = None
    if args.variant:
        from modmsg.reference.variants import get_variant

        try:
            variant = get_variant(args.variant)
        except KeyError as exc:
            raise CliError(str(exc.args[0])) from None
    behaviour = variant.behaviour if variant is not None else DEFAULT_BEHAVIOUR
    middleware = variant.middleware if variant is not None else ()
    if args.rate_limit is not None:
        import dataclasses

        behaviour = dataclasses.replace(behaviour, rate_limit=args.rate_limit)
    api_key = args.api_key or os.environ.get("MODMSG_API_KEY") or "sk-modmsg-reference"
    try:
        serve_forever(
            host=args.host,
            port=args.port,
            api_key=api_key,
            behaviour=behaviour,
            middleware=middleware,
            latency_ms=args.latency_ms,
        )
    except RuntimeError as exc:
        raise CliError(str(exc).splitlines()[0]) from None
    return EXIT_OK


def cmd_requirements(args: argparse.Namespace) -> int:
    from modmsg.requirements import load_catalogue

    if args.id:
        return explain_requirement(args.id)
    rows = [
        r
        for r in load_catalogue().active()
        if (not args.level or r.level.value == args.level) and (not args.profile or args.profile in r.profiles)
    ]
    width = max((len(r.title) for r in rows), default=10)
    print(f"{'id':<11} {'level':<6} {'title':<{width}}  profiles")
    for r in rows:
        print(f"{r.id:<11} {r.level.value:<6} {r.title:<{width}}  {','.join(r.profiles)}")
    print(f"{len(rows)} requirement(s)")
    return EXIT_OK


def explain_requirement(req_id: str) -> int:
    """``modmsg requirements ID``: what the requirement says, where it comes from, what judges and breaks it."""
    from modmsg.config import req_selector
    from modmsg.reference.variants import VARIANTS
    from modmsg.requirements import load_catalogue
    from modmsg.testindex import judging_tests

    catalogue = load_catalogue()
    wanted = req_selector(req_id)  # mm-meta-3 is MM-META-03
    if wanted not in catalogue:
        close = difflib.get_close_matches(wanted, [r.id for r in catalogue], n=1, cutoff=0.75)
        hint = f"; did you mean {close[0]}?" if close else "; `modmsg requirements` lists them"
        raise CliError(f"no requirement {_shown(req_id)} in the catalogue{hint}")
    requirement = catalogue.get(wanted)
    tests = judging_tests().get(requirement.id, ())
    variants = [v for v in VARIANTS if requirement.id in v.breaks]
    rows = [
        ("level", requirement.level.value),
        ("statement", requirement.statement),
        ("source", str(requirement.source)),
        ("profiles", ", ".join(requirement.profiles)),
        ("condition", f"judged only when {requirement.when}" if requirement.when else "always judged"),
    ]
    if requirement.retired:
        rows.append(("retired", requirement.retired))
    print(f"{requirement.id}  {requirement.title}")
    for label, value in rows:
        print(f"  {label + ':':<11}{value}")
    print(f"  tests ({len(tests)}) that judge it:")
    for test in tests:
        print(f"    {test}")
    print(f"  variants ({len(variants)}) that break it (`modmsg serve --variant NAME`):")
    for variant in variants:
        print(f"    {variant.name}: {variant.doc}")
    return EXIT_OK


def cmd_variants(args: argparse.Namespace) -> int:
    from modmsg.reference.variants import VARIANTS

    width = max(len(v.name) for v in VARIANTS)
    for variant in VARIANTS:
        print(f"{variant.name:<{width}}  breaks {','.join(variant.breaks)}\n{'':<{width}}  {variant.doc}")
    print(f"{len(VARIANTS)} variant(s)")
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    from modmsg.report import rerender
    from modmsg.results_file import ResultsError

    if not args.results.is_file():
        raise CliError(f"no results file at {args.results}")
    out = args.out or args.results.parent
    try:
        for path in rerender(args.results, out):
            print(f"wrote {path}")
    except ResultsError as exc:
        raise CliError(str(exc)) from None
    if (out / "SHA256SUMS").is_file():  # the run's bundle vouches for the run's bytes, not for these
        print(f"note: {out / 'SHA256SUMS'} lists the run's own reports; the re-rendered files no longer match it")
    return EXIT_OK


def cmd_sweep(args: argparse.Namespace) -> int:
    from modmsg.config import ConfigError, load_config_file, resolve
    from modmsg.ledger import Ledger, ledger_path
    from modmsg.profiles import ProfileError, load_profile
    from modmsg.sweep import sweep
    from modmsg.target import transport_for

    if args.api_key:
        print("modmsg: warning: --api-key shows in the process list; prefer MODMSG_API_KEY", file=sys.stderr)
    skip = ("command", "command_parser", "ledger", "run", "dry_run")
    cli = {name: getattr(args, name) for name in vars(args) if name not in skip}
    try:
        settings = resolve(cli, file=load_config_file(Path.cwd()))
        beta = load_profile(settings.profile).settings.beta_header
    except (ConfigError, ProfileError) as exc:
        raise CliError(str(exc)) from None
    if settings.base_url is None or settings.api_key is None:
        raise CliError("sweep needs the target: --base-url URL (or MODMSG_BASE_URL) and its API key")
    ledger = Ledger(args.ledger or ledger_path(settings.report_dir))
    if not ledger.path.is_file():
        print(f"nothing to sweep: no ledger at {ledger.path}")
        return EXIT_OK
    transport = transport_for(settings, settings.base_url, settings.api_key, beta)  # the run's one factory
    # Ledger targets are recorded redacted, exactly as the run's reports show them.
    target = transport.redactor.text(settings.base_url)
    result = sweep(transport, ledger, target, run=args.run, dry_run=args.dry_run)
    for swept in result.results:
        detail = f": {transport.redactor.text(swept.detail)}" if swept.detail else ""
        print(f"{swept.action:<12} {swept.entry.thread} (run {swept.entry.run}){detail}")
    parts = [
        f"would delete {result.count('would delete')}" if args.dry_run else f"deleted {result.count('deleted')}",
        f"{result.count('gone')} already gone",
        f"{result.count('untagged')} without their run's tag left alone",
    ]
    if result.count("kept"):
        parts.append(f"{result.count('kept')} not settled (still in {ledger.path}; sweep again later)")
    if result.other_targets:
        parts.append(f"{result.other_targets} ledger entries of other targets untouched")
    print(f"sweep of {target}: " + "; ".join(parts))
    return EXIT_OK if result.complete else EXIT_FAIL


def cmd_verify(args: argparse.Namespace) -> int:
    from modmsg.redaction import inert
    from modmsg.report.verify import BundleError, verify_bundle

    try:
        result = verify_bundle(args.directory, args.public_key)
    except BundleError as exc:
        raise CliError(str(exc)) from None
    where = inert(str(args.directory))
    for problem in result.problems:
        print(inert(problem))
    if not result.ok:
        print(f"modmsg verify: {where} does not verify: {len(result.problems)} discrepancy(ies)", file=sys.stderr)
        return EXIT_FAIL
    signed = {"valid": "signature valid", "not checked": "signed (give --public-key to check it)"}
    print(
        f"{where}: {len(result.listed)} artefacts match SHA256SUMS; the claim record and the reports say what "
        f"results.json says; {signed.get(result.signature, 'not signed')}"
    )
    print(f"claim: {inert(result.claim)}")
    return EXIT_OK


COMMANDS = {
    "run": cmd_run,
    "serve": cmd_serve,
    "requirements": cmd_requirements,
    "variants": cmd_variants,
    "report": cmd_report,
    "sweep": cmd_sweep,
    "verify": cmd_verify,
}


def main(argv: Sequence[str] | None = None) -> int:
    args, unknown = _parser().parse_known_args(argv)
    if unknown:
        print(f"modmsg: {_unknown_option(args.command_parser, unknown[0])}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return COMMANDS[args.command](args)
    except CliError as exc:
        print(f"modmsg: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("modmsg: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `modmsg requirements | head`: the reader has gone; no traceback for that
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, as a shell reports a writer its reader left


if __name__ == "__main__":
    sys.exit(main())
