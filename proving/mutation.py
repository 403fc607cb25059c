"""Mutation score: run the real suite against every broken variant and count the variants it catches.

``python -m proving.mutation`` (``make mutation``) starts each variant on loopback, runs ``pytest suites``
against it in a subprocess (the code path a user runs, the same function ``tests/test_variants.py`` uses),
and prints, per variant, the level of the worst requirement it breaks and the requirement ids that caught it.
It then runs the stock Schemathesis CLI (``st run --checks all`` on the vendored spec) against the reference
server and every variant, so the gain over the plain tool is a number, and writes ``reports/mutation.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import requests

from modmsg.paths import REPO_DIR, spec_dir, suites_dir
from modmsg.reference import DEFAULT_BEHAVIOUR
from modmsg.reference.variants import VARIANTS, Variant
from modmsg.requirements import Catalogue, load_catalogue

REFERENCE = Variant("reference", "The correct reference server (no defect).", (), DEFAULT_BEHAVIOUR)
LEVEL_ORDER = ("MUST", "SHOULD", "MAY")
REDUCED_EXAMPLES = 5
REDUCED_SEQUENCES = 8
"""--max-examples for a variant whose ``breaks`` names no MM-GEN requirement (the handwritten tests catch it)."""
SUITE_TIMEOUT = 600.0
STOCK_EXAMPLES = 100
"""The stock tool's -n: the same budget as the suite's default --max-examples."""
STOCK_SEED = 1
STOCK_TIMEOUT = 300.0
WORKERS = 2


def fresh_key() -> str:
    return f"sk-modmsg-{secrets.token_hex(12)}"


def subprocess_env(extra: Mapping[str, str]) -> dict[str, str]:
    """The environment without any MODMSG_* setting of the caller, plus ``extra``."""
    clean = {key: value for key, value in os.environ.items() if not key.startswith("MODMSG_")}
    return {**clean, **extra}


# ---------------------------------------------------------------------------------------------------------
# Our suite against one server
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SuiteOutcome:
    """What one run of the real suite said about one server."""

    name: str
    exit_code: int
    outcomes: Mapping[str, str]
    seconds: float
    output: str
    args: tuple[str, ...] = ()
    claim: str | None = None
    """The claim level of the run (``MUST+SHOULD``, ``MUST``), None when it makes no claim."""

    def ids(self, outcome: str) -> tuple[str, ...]:
        return tuple(req for req, value in self.outcomes.items() if value == outcome)

    @property
    def failed(self) -> tuple[str, ...]:
        return self.ids("FAIL")

    @property
    def errored(self) -> tuple[str, ...]:
        return self.ids("ERROR")

    def describe(self) -> str:
        """A short diagnosis for assertion messages: exit code, non-PASS outcomes and the output tail."""
        bad = {req: value for req, value in self.outcomes.items() if value not in ("PASS", "SKIP")}
        tail = "\n".join(self.output.splitlines()[-40:])
        args = " ".join(self.args)
        return f"{self.name} [{args}]: exit {self.exit_code}, {bad or 'all PASS/SKIP'} ({self.seconds:.1f} s)\n{tail}"


def examples_for(variant: Variant) -> int | None:
    """Full generation for a variant that must be caught by MM-GEN, a reduced one otherwise."""
    if variant is REFERENCE or any(req.startswith("MM-GEN-") for req in variant.breaks):
        return None
    return REDUCED_EXAMPLES


def run_suite(
    base_url: str,
    api_key: str,
    report_dir: Path,
    *args: str,
    name: str = "target",
    timeout: float = SUITE_TIMEOUT,
) -> SuiteOutcome:
    """``python -m pytest suites --base-url URL ARGS`` with the key in MODMSG_API_KEY; outcomes from results.json."""
    command = [
        sys.executable, "-m", "pytest", str(suites_dir()), "-q", "-p", "no:cacheprovider",
        "--report-dir", str(report_dir), "--base-url", base_url, *args,
    ]  # fmt: skip
    started = time.monotonic()
    done = subprocess.run(
        command,
        cwd=REPO_DIR,
        env=subprocess_env({"MODMSG_API_KEY": api_key}),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    seconds = time.monotonic() - started
    results = report_dir / "results.json"
    outcomes: dict[str, str] = {}
    claim = None
    if results.is_file():
        data = json.loads(results.read_text(encoding="utf-8"))
        outcomes = {entry["id"]: entry["outcome"] for entry in data["requirements"]}
        claim = (data.get("claim") or {}).get("level")
    output = (done.stdout + done.stderr).replace(api_key, "[REDACTED]")
    return SuiteOutcome(name, done.returncode, outcomes, seconds, output, tuple(args), claim)


def sequences_for(variant: Variant) -> int | None:
    """The default number of generated sequences for a variant that must be caught (or may be caught) by MM-SEQ,
    a reduced one otherwise: its sequences still run, and must still not FAIL, but fewer of them."""
    if variant is REFERENCE or any(req.startswith("MM-SEQ-") for req in (*variant.breaks, *variant.generated)):
        return None
    return REDUCED_SEQUENCES


def run_variant(
    variant: Variant,
    report_dir: Path,
    *args: str,
    max_examples: int | Literal["auto"] | None = "auto",
) -> SuiteOutcome:
    """Start ``variant`` on loopback and run the real suite against it (``max_examples="auto"``: see
    :func:`examples_for` and :func:`sequences_for`; None: the suite's defaults)."""
    auto = max_examples == "auto"
    examples = examples_for(variant) if auto else max_examples
    sequences = sequences_for(variant) if auto and "--max-sequences" not in args else None
    extra = (
        *args,
        *(("--max-examples", str(examples)) if examples is not None else ()),
        *(("--max-sequences", str(sequences)) if sequences is not None else ()),
    )
    api_key = fresh_key()
    with variant.start(api_key) as server:
        return run_suite(server.base_url, api_key, report_dir, *extra, name=variant.name)


def run_many(jobs: Sequence[tuple[str, Callable[[], Any]]], workers: int = WORKERS) -> dict[str, Any]:
    """Run named jobs on ``workers`` threads (each job starts its own server and subprocess)."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {name: pool.submit(job) for name, job in jobs}
        return {name: future.result() for name, future in futures.items()}


# ---------------------------------------------------------------------------------------------------------
# The stock Schemathesis CLI against one server
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StockOutcome:
    """One ``st run`` of the vendored spec against one server: exit code and the finding codes it reported."""

    name: str
    exit_code: int
    findings: tuple[str, ...]
    known: int
    new: int
    seconds: float
    output: str

    def describe(self) -> str:
        tail = "\n".join(self.output.splitlines()[-30:])
        return f"{self.name}: st exit {self.exit_code}, findings {self.findings or '-'}\n{tail}"


def schemathesis_cli() -> str:
    """The ``schemathesis`` console script next to this interpreter (the project venv's)."""
    return str(Path(sys.executable).with_name("schemathesis"))


def live_message(base_url: str, api_key: str) -> tuple[str, str]:
    """Create a thread and a message on the server, so the stock tool's path ids point at something real."""
    headers = {"Authorization": f"Bearer {api_key}", "OpenAI-Beta": "assistants=v2"}
    thread = requests.post(f"{base_url}/threads", json={}, headers=headers, timeout=10).json()
    message = requests.post(
        f"{base_url}/threads/{thread['id']}/messages",
        json={"role": "user", "content": "stock schemathesis target"},
        headers=headers,
        timeout=10,
    ).json()
    return thread["id"], message["id"]


def stock_command(
    base_url: str,
    api_key: str,
    workdir: Path,
    ids: tuple[str, str],
    *,
    seed: int,
    examples: int,
    baseline: Path | None,
    update: bool,
) -> list[str]:
    """``st run`` with every check on the vendored spec, the suite's headers, and the path pinned to ``ids``."""
    config = workdir / "schemathesis.toml"
    config.write_text(
        f'[parameters]\n"path.thread_id" = "{ids[0]}"\n"path.message_id" = "{ids[1]}"\n', encoding="utf-8"
    )
    command = [
        schemathesis_cli(), "--config-file", str(config), "run", str(spec_dir() / "modify-message.openapi.yaml"),
        "--url", base_url, "--checks", "all", "--include-operation-id", "modifyMessage",
        "--header", f"Authorization: Bearer {api_key}", "--header", "OpenAI-Beta: assistants=v2",
        "--seed", str(seed), "--max-examples", str(examples), "--continue-on-failure", "--workers", "1",
        "--report", "json", "--report-json-path", str(workdir / "st.json"),
    ]  # fmt: skip
    if baseline is not None:
        command += ["--baseline", str(baseline), *(["--baseline-update"] if update else [])]
    return command


def run_stock(
    variant: Variant,
    workdir: Path,
    *,
    baseline: Path | None = None,
    update: bool = False,
    seed: int = STOCK_SEED,
    examples: int = STOCK_EXAMPLES,
) -> StockOutcome:
    """Start ``variant`` and run the stock Schemathesis CLI against a live message on it."""
    workdir.mkdir(parents=True, exist_ok=True)
    api_key = fresh_key()
    with variant.start(api_key) as server:
        ids = live_message(server.base_url, api_key)
        command = stock_command(
            server.base_url, api_key, workdir, ids, seed=seed, examples=examples, baseline=baseline, update=update
        )
        started = time.monotonic()
        done = subprocess.run(
            command,
            cwd=workdir,
            env=subprocess_env({"NO_COLOR": "1"}),
            capture_output=True,
            text=True,
            timeout=STOCK_TIMEOUT,
            check=False,
        )
        seconds = time.monotonic() - started
    report = workdir / "st.json"
    data: dict[str, Any] = json.loads(report.read_text(encoding="utf-8")) if report.is_file() else {}
    findings = tuple(sorted({f"{group['code']} {group['title']}" for group in data.get("failures", [])}))
    counts = data.get("baseline") or {}
    output = done.stdout.replace(api_key, "[REDACTED]") + done.stderr.replace(api_key, "[REDACTED]")
    return StockOutcome(
        variant.name, done.returncode, findings, int(counts.get("known", 0)), int(counts.get("new", 0)), seconds, output
    )


def merge_baselines(paths: Iterable[Path], into: Path) -> None:
    """One Schemathesis baseline file holding every entry of ``paths`` (same identity, one entry)."""
    entries: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    document: dict[str, Any] = {"format_version": 1, "entries": []}
    for path in paths:
        if not path.is_file():
            continue
        data = json.loads(path.read_text(encoding="utf-8"))
        document = {**data, "entries": []}
        for entry in data.get("entries", []):
            entries.setdefault((entry["operation"], entry["check"], entry["failure"], entry["signature"]), entry)
    document["entries"] = [entries[key] for key in sorted(entries)]
    into.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


@dataclass(frozen=True)
class StockRun:
    """The stock tool against the reference (plain and with the baseline) and against every variant."""

    plain_reference: tuple[StockOutcome, ...]
    reference: StockOutcome
    variants: Mapping[str, StockOutcome]
    baseline: tuple[Mapping[str, Any], ...]

    @property
    def reference_clean(self) -> bool:
        return self.reference.exit_code == 0

    def caught(self, name: str) -> bool:
        """Caught as the brief defines it: non-zero exit for the variant, zero for the reference."""
        outcome = self.variants.get(name)
        return outcome is not None and self.reference_clean and outcome.exit_code != 0


BASELINE_SEEDS = (STOCK_SEED, STOCK_SEED + 1, STOCK_SEED + 2)


def run_stock_all(variants: Sequence[Variant], workdir: Path, *, workers: int = WORKERS) -> StockRun:
    """Plain runs on the reference (their failures become the accepted baseline), then every variant."""
    plain = run_many(
        [
            (
                f"seed {seed}",
                lambda s=seed: run_stock(
                    REFERENCE, workdir / f"baseline-{s}", baseline=workdir / f"baseline-{s}.json", update=True, seed=s
                ),
            )
            for seed in BASELINE_SEEDS
        ],
        workers,
    )
    baseline = workdir / "baseline.json"
    merge_baselines((workdir / f"baseline-{seed}.json" for seed in BASELINE_SEEDS), baseline)
    jobs = [("reference", lambda: run_stock(REFERENCE, workdir / "reference", baseline=baseline))]
    jobs += [(v.name, lambda v=v: run_stock(v, workdir / v.name, baseline=baseline)) for v in variants]
    done = run_many(jobs, workers)
    entries = json.loads(baseline.read_text(encoding="utf-8")).get("entries", [])
    accepted = tuple({key: entry[key] for key in ("check", "failure", "signature")} for entry in entries)
    return StockRun(
        plain_reference=tuple(plain.values()),
        reference=done.pop("reference"),
        variants=done,
        baseline=accepted,
    )


# ---------------------------------------------------------------------------------------------------------
# Scoring, the table and the report
# ---------------------------------------------------------------------------------------------------------


def worst_level(reqs: Iterable[str], catalogue: Catalogue) -> str:
    levels = {catalogue.get(req).level.value for req in reqs}
    return next((level for level in LEVEL_ORDER if level in levels), "-")


@dataclass(frozen=True)
class Row:
    """One variant in the mutation table."""

    variant: str
    doc: str
    level: str
    breaks: tuple[str, ...]
    caught_by: tuple[str, ...]
    errors: tuple[str, ...]
    stock_exit: int | None = None
    stock_findings: tuple[str, ...] = ()
    stock_caught: bool | None = None

    @property
    def caught(self) -> bool:
        return bool(self.caught_by)

    @property
    def missed(self) -> tuple[str, ...]:
        return tuple(req for req in self.breaks if req not in self.caught_by)

    def as_dict(self) -> dict[str, Any]:
        return {
            "variant": self.variant,
            "doc": self.doc,
            "level": self.level,
            "breaks": list(self.breaks),
            "caught": self.caught,
            "caught_by": list(self.caught_by),
            "missed_breaks": list(self.missed),
            "errors": list(self.errors),
            "stock": None
            if self.stock_exit is None
            else {"exit_code": self.stock_exit, "findings": list(self.stock_findings), "caught": self.stock_caught},
        }


@dataclass(frozen=True)
class Score:
    caught: int
    total: int

    @property
    def percent(self) -> float:
        return 100.0 * self.caught / self.total if self.total else 0.0

    def __str__(self) -> str:
        return f"{self.caught}/{self.total} ({self.percent:.0f}%)"

    def as_dict(self) -> dict[str, Any]:
        return {"caught": self.caught, "total": self.total, "percent": round(self.percent, 1)}


def score(rows: Iterable[Row], caught: Callable[[Row], bool | None], level: str | None = None) -> Score:
    chosen = [row for row in rows if level is None or row.level == level]
    return Score(sum(bool(caught(row)) for row in chosen), len(chosen))


def build_rows(
    variants: Sequence[Variant],
    ours: Mapping[str, SuiteOutcome],
    reference: SuiteOutcome,
    stock: StockRun | None,
    catalogue: Catalogue,
) -> list[Row]:
    false_alarms = set(reference.failed)
    rows = []
    for variant in variants:
        outcome = ours[variant.name]
        stock_outcome = stock.variants.get(variant.name) if stock else None
        rows.append(
            Row(
                variant=variant.name,
                doc=variant.doc,
                level=worst_level(variant.breaks, catalogue),
                breaks=variant.breaks,
                caught_by=tuple(req for req in outcome.failed if req not in false_alarms),
                errors=outcome.errored,
                stock_exit=stock_outcome.exit_code if stock_outcome else None,
                stock_findings=stock_outcome.findings if stock_outcome else (),
                stock_caught=stock.caught(variant.name) if stock else None,
            )
        )
    return rows


def render_table(rows: Sequence[Row]) -> list[str]:
    name_width = max((len(row.variant) for row in rows), default=7)
    lines = [f"{'variant':<{name_width}}  {'level':<6}  {'ours':<6}  {'stock':<6}  caught by (our requirement ids)"]
    for row in rows:
        ours = "caught" if row.caught else "MISSED"
        stock = "-" if row.stock_caught is None else ("caught" if row.stock_caught else "missed")
        caught_by = ", ".join(row.caught_by) or "-"
        extra = f"  [ERROR: {', '.join(row.errors)}]" if row.errors else ""
        lines.append(f"{row.variant:<{name_width}}  {row.level:<6}  {ours:<6}  {stock:<6}  {caught_by}{extra}")
    return lines


def machine() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
    }


def report(rows: Sequence[Row], reference: SuiteOutcome, stock: StockRun | None, seconds: float) -> dict[str, Any]:
    ours = {"all": score(rows, lambda r: r.caught).as_dict(), "must": score(rows, lambda r: r.caught, "MUST").as_dict()}
    data: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "seconds": round(seconds, 1),
        "reference": {"exit_code": reference.exit_code, "failed": list(reference.failed)},
        "score": ours,
        "variants": [row.as_dict() for row in rows],
    }
    if stock is not None:
        data["stock"] = {
            "command": "st run spec/modify-message.openapi.yaml --checks all --include-operation-id modifyMessage "
            f"-H 'Authorization: Bearer ...' -H 'OpenAI-Beta: assistants=v2' --seed {STOCK_SEED} "
            f"--max-examples {STOCK_EXAMPLES} --continue-on-failure --baseline <reference baseline>",
            "plain_reference_exit_codes": [outcome.exit_code for outcome in stock.plain_reference],
            "plain_reference_findings": sorted({f for outcome in stock.plain_reference for f in outcome.findings}),
            "baseline": [dict(entry) for entry in stock.baseline],
            "reference_exit_code": stock.reference.exit_code,
            "reference_findings": list(stock.reference.findings),
            "score": {
                "all": score(rows, lambda r: r.stock_caught).as_dict(),
                "must": score(rows, lambda r: r.stock_caught, "MUST").as_dict(),
            },
            "plain_score": {"caught": 0, "total": len(rows)}
            if any(outcome.exit_code != 0 for outcome in stock.plain_reference)
            else None,
        }
    return data


def summary_lines(data: Mapping[str, Any]) -> list[str]:
    ours = data["score"]
    lines = [
        f"modmsg suite:      {ours['all']['caught']}/{ours['all']['total']} variants caught "
        f"({ours['all']['percent']:.0f}%); MUST-level {ours['must']['caught']}/{ours['must']['total']} "
        f"({ours['must']['percent']:.0f}%)"
    ]
    stock = data.get("stock")
    if stock:
        plain = stock["plain_reference_exit_codes"]
        lines.append(
            f"stock Schemathesis: {stock['score']['all']['caught']}/{stock['score']['all']['total']} "
            f"({stock['score']['all']['percent']:.0f}%); MUST-level {stock['score']['must']['caught']}/"
            f"{stock['score']['must']['total']} ({stock['score']['must']['percent']:.0f}%) "
            f"with the reference's own findings accepted as a baseline"
        )
        if any(code != 0 for code in plain):
            found = ", ".join(stock["plain_reference_findings"]) or "?"
            lines.append(
                f"                    without a baseline: 0/{stock['score']['all']['total']}: the correct reference "
                f"server already fails it (exit codes {plain}: {found})"
            )
        if stock["reference_exit_code"] != 0:
            lines.append(
                f"                    the reference still fails with the baseline ({stock['reference_findings']}), "
                "so no variant counts as caught"
            )
    return lines


# ---------------------------------------------------------------------------------------------------------
# The generated variant table in docs/variants.md
# ---------------------------------------------------------------------------------------------------------

DOCS_PATH = REPO_DIR / "docs" / "variants.md"
TABLE_BEGIN = "<!-- variants:begin (generated by `python -m proving.mutation --docs`; do not edit) -->"
TABLE_END = "<!-- variants:end -->"


def variant_table(catalogue: Catalogue | None = None) -> str:
    """The Markdown table of VARIANTS (name, level, breaks, generated, defect) for docs/variants.md."""
    catalogue = catalogue or load_catalogue()
    lines = ["| variant | level | breaks | when generated input reaches it | defect |", "|---|---|---|---|---|"]
    for variant in VARIANTS:
        doc = variant.doc.replace("|", "\\|")
        level = worst_level(variant.breaks, catalogue)
        generated = ", ".join(variant.generated) or "-"
        lines.append(f"| `{variant.name}` | {level} | {', '.join(variant.breaks)} | {generated} | {doc} |")
    return "\n".join(lines)


def docs_with_table(text: str, table: str) -> str:
    head, _, rest = text.partition(TABLE_BEGIN)
    _, _, tail = rest.partition(TABLE_END)
    return f"{head}{TABLE_BEGIN}\n{table}\n{TABLE_END}{tail}"


# ---------------------------------------------------------------------------------------------------------
# The command
# ---------------------------------------------------------------------------------------------------------


class QuietInvalidRequests(logging.Filter):
    """The stock tool sends requests no HTTP server can parse (NUL bytes ...): uvicorn's warning for each is noise."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Invalid HTTP request received" not in record.getMessage()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m proving.mutation", description=__doc__.splitlines()[0])
    parser.add_argument("--report-dir", type=Path, default=REPO_DIR / "reports")
    parser.add_argument("--workers", type=int, default=WORKERS, help="variants run in parallel (default 2)")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME", help="only these (repeatable)")
    parser.add_argument("--no-stock", action="store_true", help="skip the stock Schemathesis comparison")
    parser.add_argument("--docs", action="store_true", help="rewrite the variant table in docs/variants.md and exit")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.getLogger("uvicorn.error").addFilter(QuietInvalidRequests())
    catalogue = load_catalogue()
    if args.docs:
        DOCS_PATH.write_text(docs_with_table(DOCS_PATH.read_text(encoding="utf-8"), variant_table(catalogue)))
        print(f"wrote {DOCS_PATH}")
        return 0
    variants = [v for v in VARIANTS if not args.variant or v.name in args.variant]
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="modmsg-mutation-") as tmp:
        work = Path(tmp)
        jobs: list[tuple[str, Callable[[], SuiteOutcome]]] = [
            ("reference", lambda: run_variant(REFERENCE, work / "ours" / "reference"))
        ]
        jobs += [(v.name, lambda v=v: run_variant(v, work / "ours" / v.name)) for v in variants]
        print(
            f"running the suite against the reference and {len(variants)} variant(s), {args.workers} at a time",
            flush=True,
        )
        ours = run_many(jobs, args.workers)
        reference = ours.pop("reference")
        stock = None
        if not args.no_stock:
            print("running the stock Schemathesis CLI against the same servers", flush=True)
            stock = run_stock_all(variants, work / "stock", workers=args.workers)
    rows = build_rows(variants, ours, reference, stock, catalogue)
    data = report(rows, reference, stock, time.monotonic() - started)
    for line in render_table(rows):
        print(line)
    print()
    if reference.failed or reference.errored:
        print(f"WARNING: the reference server itself did not pass: {reference.describe()}")
    for line in summary_lines(data):
        print(line)
    args.report_dir.mkdir(parents=True, exist_ok=True)
    out = args.report_dir / "mutation.json"
    out.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"report: {out}  ({data['seconds']:.0f} s)")
    complete = all(row.caught and not row.errors for row in rows) and not reference.failed
    return 0 if complete else 1


if __name__ == "__main__":
    sys.exit(main())
