"""Generate docs/requirements.md from spec/requirements.yaml (`make docs`); a test fails when it is stale."""

from __future__ import annotations

import sys
from pathlib import Path

from modmsg.paths import REPO_DIR
from modmsg.requirements import AREA_TITLES, Catalogue, load_catalogue

TARGET = REPO_DIR / "docs" / "requirements.md"
README = REPO_DIR / "README.md"
TABLE_START, TABLE_END = "<!-- config-table:start -->", "<!-- config-table:end -->"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render(catalogue: Catalogue) -> str:
    active = catalogue.active()
    lines = [
        "# Requirement reference",
        "",
        "<!-- generated from spec/requirements.yaml by `make docs`; do not edit by hand -->",
        "",
        f"{len(active)} requirements: "
        + ", ".join(f"{sum(r.level.value == lvl for r in active)} {lvl}" for lvl in ("MUST", "SHOULD", "MAY"))
        + ". Profiles: `openai` judges "
        + f"{len(catalogue.for_profile('openai'))}, `spec` judges {len(catalogue.for_profile('spec'))}.",
        "",
        "Sources: `spec` is a JSON pointer into `spec/modify-message.openapi.yaml`; `observed` and `decision`",
        "cite `openai-behaviour.md` (the research notes on pre-shutdown OpenAI behaviour, §3 and §6); `http`",
        "names RFC 9110.",
        "A requirement with a *when* condition is judged only once that condition occurs in a run; otherwise it",
        "reports SKIP and does not block a claim.",
    ]
    for area, title in AREA_TITLES.items():
        entries = [r for r in active if r.area == area]
        lines += ["", f"## {area}: {title}", "", "| id | level | title | profiles |", "|---|---|---|---|"]
        lines += [
            f"| [{r.id}](#{r.id.lower()}) | {r.level.value} | {_cell(r.title)} | {', '.join(r.profiles)} |"
            for r in entries
        ]
        for r in entries:
            lines += [
                "",
                f"### {r.id}",
                "",
                f"**{r.level.value}** · {_cell(r.title)}",
                "",
                r.statement,
                "",
                f"- source ({r.source.kind}): `{r.source.ref}`",
                f"- profiles: {', '.join(r.profiles)}",
            ]
            if r.when:
                lines.append(f"- judged when: {r.when}")
    retired = [r for r in catalogue if r.retired]
    if retired:
        lines += ["", "## Retired", ""] + [f"- {r.id}: {r.retired}" for r in retired]
    return "\n".join(lines) + "\n"


def config_table() -> str:
    """The README's configuration table, from modmsg.config.OPTIONS (the single source of truth)."""
    from modmsg.config import OPTIONS

    rows = ["| option | environment | default | meaning |", "|---|---|---|---|"]
    for option in OPTIONS:
        default = "(none)" if option.default in (None, ()) else f"`{option.default}`"
        flag = f"`{option.flag} {option.metavar}`" + (" (repeatable)" if option.repeatable else "")
        rows.append(f"| {flag} | `{option.env}` | {default} | {_cell(option.help)} |")
    return "\n".join(rows)


def readme_with_current_table(text: str) -> str:
    head, _, rest = text.partition(TABLE_START)
    _, _, tail = rest.partition(TABLE_END)
    return f"{head}{TABLE_START}\n{config_table()}\n{TABLE_END}{tail}"


def main(argv: list[str] | None = None) -> int:
    TARGET.parent.mkdir(parents=True, exist_ok=True)
    TARGET.write_text(render(load_catalogue()), encoding="utf-8")
    README.write_text(readme_with_current_table(README.read_text(encoding="utf-8")), encoding="utf-8")
    print(f"wrote {TARGET.relative_to(Path.cwd()) if TARGET.is_relative_to(Path.cwd()) else TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
