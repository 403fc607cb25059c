"""The compatibility matrix harness (proving/matrix), driven with stub products: never the real gateways.

The real products run in `make matrix` only; here a "product" is the reference server itself or one of its
broken variants, so the cells the harness computes are known in advance.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest

from modmsg.reference.variants import get_variant
from proving.matrix import cells, harness, products, render
from proving.matrix.cells import Alignment, Misaligned, Row, Run, attribute

REPO = Path(__file__).resolve().parent.parent
ALIGNED = Alignment("abc123", 7, 10, "openai")


# --------------------------------------------------------------------------------------------- attribution


@pytest.mark.parametrize(
    ("product", "control", "expected"),
    [
        ("FAIL", "PASS", "introduced"),
        ("FAIL", "FAIL", "inherited"),
        ("BLOCKED", "PASS", "unknown"),  # not judged through the product: the precondition's cell says why
        ("ERROR", "PASS", "unknown"),
        ("BLOCKED", "FAIL", "unknown"),
        ("PASS", "ERROR", "unknown"),
        ("PASS", "FAIL", "masked"),
        ("PASS", "PASS", "none"),
        ("SKIP", "PASS", "unknown"),
        ("PASS", "SKIP", "unknown"),
        ("WAIVED", "FAIL", "unknown"),
        ("NOT RUN", "PASS", "unknown"),
    ],
)
def test_attribution_compares_the_product_with_the_control(product: str, control: str, expected: str):
    assert attribute(product, control) == expected


def _run(product: str, outcomes: dict[str, str], alignment: Alignment = ALIGNED, **fields: object) -> Run:
    rows = tuple(
        Row(req, f"title of {req}", "MUST", outcome, "" if outcome == "PASS" else f"evidence {req}")
        for req, outcome in outcomes.items()
    )
    values: dict[str, object] = dict(version="1.2.3", date="2026-11-29T20:00:00+00:00", isolation="netns", watched=True)
    values.update(fields)
    return Run(product, product.title(), alignment=alignment, rows=rows, **values)  # type: ignore[arg-type]


def test_the_matrix_puts_the_control_first_and_attributes_every_cell():
    control = _run("reference", {"MM-A": "PASS", "MM-B": "FAIL", "MM-C": "PASS"})
    gateway = _run("gateway", {"MM-A": "FAIL", "MM-B": "FAIL", "MM-C": "PASS"})
    mock = _run("mock", {"MM-A": "PASS", "MM-B": "PASS"})
    matrix = cells.build([mock, gateway, control])
    assert [run.product for run in matrix.runs] == ["reference", "gateway", "mock"]
    assert matrix.cell("MM-A", "gateway") == cells.Cell("FAIL", "introduced", "evidence MM-A", "control")
    assert matrix.cell("MM-B", "gateway").attribution == "inherited"
    assert matrix.cell("MM-B", "mock").attribution == "masked"
    assert matrix.cell("MM-C", "mock") == cells.Cell("NOT RUN", "unknown", "")
    assert matrix.cell("MM-A", "reference") == cells.Cell("PASS", "")
    assert matrix.tally("gateway") == {"introduced": 1, "inherited": 1, "none": 1}


def test_the_suites_own_attribution_wins_over_the_comparison():
    control = _run("reference", {"MM-A": "PASS"})
    gateway = _run("gateway", {"MM-A": "FAIL"})
    gateway = replace(gateway, rows=(replace(gateway.rows[0], attribution="inherited"),))
    cell = cells.build([control, gateway]).cell("MM-A", "gateway")
    assert (cell.attribution, cell.source) == ("inherited", "results")


@pytest.mark.parametrize(
    ("field", "value", "said"),
    [("suite_commit", "def456", "suite commit def456"), ("seed", 8, "seed 8"), ("max_examples", 100, "max examples")],
)
def test_runs_of_another_commit_or_seed_never_share_a_matrix(field: str, value: object, said: str):
    control = _run("reference", {"MM-A": "PASS"})
    odd = _run("gateway", {"MM-A": "PASS"}, alignment=replace(ALIGNED, **{field: value}))
    with pytest.raises(Misaligned, match=said) as refused:
        cells.build([control, odd])
    assert "'gateway'" in str(refused.value) and "'reference'" in str(refused.value)


def test_a_matrix_needs_a_judged_control_column():
    with pytest.raises(Misaligned, match="no 'reference' run"):
        cells.build([_run("gateway", {"MM-A": "PASS"})])
    with pytest.raises(Misaligned, match="control run was not judged"):
        cells.build([_run("reference", {}, not_judged="it would not start")])


def test_a_run_survives_its_json_round_trip():
    run = _run("gateway", {"MM-A": "FAIL"}, contacts=("1.1.1.1:443/tcp",), counts={"FAIL": 1}, claim="not conformant")
    assert cells.run_from_json(json.loads(json.dumps(cells.run_to_json(run)))) == run


def test_rows_keep_the_evidence_and_an_attribution_field_of_results_json():
    failing = {"id": "MM-A", "title": "A", "level": "MUST", "outcome": "FAIL", "attribution": "introduced"}
    failing["tests"] = [{"outcome": "FAIL", "failure": {"expected": "400", "received": "500 boom"}}]
    passing = {"id": "MM-B", "title": "B", "level": "SHOULD", "outcome": "PASS", "tests": []}
    rows = cells.rows_from_results({"requirements": [failing, passing]})
    assert rows[0] == Row("MM-A", "A", "MUST", "FAIL", "expected 400; got 500 boom", "introduced")
    assert rows[1] == Row("MM-B", "B", "SHOULD", "PASS", "", None)


# ---------------------------------------------------------------------------------------------- rendering


def test_the_rendered_matrix_names_versions_commit_seed_and_every_cell():
    control = _run("reference", {"MM-A": "PASS", "MM-B": "PASS"}, version="modmsg 0.1.0")
    gateway = _run("gateway", {"MM-A": "FAIL", "MM-B": "PASS"}, version="9.8.7 <beta>", note="stopped early: no answer")
    gateway = replace(gateway, counts={"PASS": 1, "FAIL": 1})
    matrix = cells.build([control, gateway])
    text = render.markdown(matrix, {"gateway": "recipes/gateway-x.md"})
    assert "`abc123`" in text and "seed `7`" in text and "`--max-examples 10`" in text
    assert "| Gateway (`gateway`) | 9.8.7 <beta> |" in text and "modmsg 0.1.0" in text
    assert (
        "| 1 PASS, 1 FAIL (stopped early: no answer); 1 introduced | none | [gateway-x.md](recipes/gateway-x.md) |"
        in text
    )
    assert "| MM-A title of MM-A | MUST | PASS | **FAIL · introduced** |" in text
    assert "| MM-B title of MM-B | MUST | PASS | PASS · none |" in text
    assert "| MM-A | FAIL · introduced | evidence MM-A |" in text and "(recipes/gateway-x.md)" in text
    unwatched = render.markdown(cells.build([control, replace(gateway, watched=False)]), {})
    assert "| not checked (host network) |" in unwatched
    page = render.page(matrix, {"gateway": "recipes/gateway-x.md"})
    assert "9.8.7 &lt;beta&gt;" in page and "<beta>" not in page
    assert '<td class="FAIL introduced" title="evidence MM-A">FAIL · introduced</td>' in page


# ------------------------------------------------------------------------------------- the harness, stubbed


def _variant_product(name: str) -> products.Product:
    """A stub product: a broken variant of the reference server standing where a gateway would be."""

    @contextmanager
    def start(home: Path, upstream: products.Upstream, log: Path) -> Iterator[products.Endpoint]:
        with get_variant(name).start(upstream.api_key) as server:
            yield products.Endpoint(server.base_url, upstream.api_key)

    def version(home: Path) -> str:
        return f"variant {name}"

    return products.Product(name, f"variant {name}", "modmsg", "", lambda home: None, version, start)


def test_the_harness_runs_the_suite_through_each_product_and_attributes_what_it_breaks(tmp_path: Path):
    settings = harness.Settings(
        seed=3, max_examples=5, profile="openai", suite_commit="stub", isolation="host",
        upstream_url=False, extra=("--req", "MM-META-06", "--req", "MM-META-05"),
    )  # fmt: skip
    control = harness.run_product(products.product("reference"), tmp_path / "ref", tmp_path / "r1", settings)
    stub = harness.run_product(_variant_product("accepts_17_keys"), tmp_path / "stub", tmp_path / "r2", settings)
    assert not control.not_judged and not stub.not_judged
    harness.save(control, tmp_path / "runs")
    harness.save(stub, tmp_path / "runs")
    matrix = cells.build(harness.load(tmp_path / "runs"))
    judged = {row.id for row in matrix.requirements if row.outcome == "PASS"}
    assert {"MM-META-05", "MM-META-06"} <= judged and "MM-RESP-01" not in judged  # the rest: not selected
    assert matrix.cell("MM-RESP-01", "accepts_17_keys") == cells.Cell("SKIP", "unknown", "", "control")
    assert matrix.cell("MM-META-06", "accepts_17_keys").outcome == "FAIL"
    assert matrix.cell("MM-META-06", "accepts_17_keys").attribution == "introduced"
    assert "17" in matrix.cell("MM-META-06", "accepts_17_keys").evidence
    assert matrix.cell("MM-META-05", "accepts_17_keys").attribution == "none"
    assert stub.version == "variant accepts_17_keys" and stub.alignment.seed == 3
    assert (stub.watched, stub.contacts) == (False, ())  # the host network is never watched: not isolated


def test_a_product_that_will_not_start_is_recorded_as_not_judged(tmp_path: Path):
    @contextmanager
    def start(home: Path, upstream: products.Upstream, log: Path) -> Iterator[products.Endpoint]:
        raise products.ProductError("the stub exited with 1 during startup")
        yield  # pragma: no cover

    broken = products.Product("broken", "broken", "x", "", lambda home: None, lambda home: "0.0.1", start)
    settings = harness.Settings(1, 5, "openai", "stub", "host", False)
    run = harness.run_product(broken, tmp_path, tmp_path / "reports", settings)
    assert run.not_judged == "the stub exited with 1 during startup" and run.rows == () and run.version == "0.0.1"


def test_the_suite_command_passes_the_upstream_only_when_the_suite_has_the_option():
    settings = harness.Settings(5, 20, "openai", "c", "host", upstream_url=False, extra=("--req", "MM-META"))
    plain = harness.suite_command("http://127.0.0.1:1", ("x-a: 1",), None, Path("out"), settings)
    assert "--upstream-url" not in plain and plain[plain.index("--header") + 1] == "x-a: 1"
    assert plain[plain.index("--seed") + 1] == "5" and plain[plain.index("--max-examples") + 1] == "20"
    assert plain[-2:] == ["--req", "MM-META"]
    attributed = harness.suite_command("http://127.0.0.1:1", (), "http://127.0.0.1:2/v1", Path("out"), settings)
    at = attributed.index("--upstream-url")
    assert attributed[at + 1 : at + 4] == ["http://127.0.0.1:2/v1", "--upstream-api-key-env", harness.UPSTREAM_KEY_ENV]


def test_the_outbound_watch_reports_every_non_loopback_socket(tmp_path: Path):
    header = "  sl  local_address rem_address   st\n"
    (tmp_path / "tcp").write_text(
        header
        + "   0: 0100007F:1F90 0100007F:C350 01\n"  # loopback to loopback
        + "   1: 00000000:CA42 01010101:01BB 02\n"  # SYN_SENT to 1.1.1.1:443
        + "   2: 00000000:1F90 00000000:0000 0A\n"  # a listener
    )
    (tmp_path / "udp6").write_text(
        header
        + "   0: 00000000000000000000000001000000:0035 00000000000000000000000001000000:0035 07\n"  # ::1
        + "   1: 0000000000000000FFFF00000100007F:0035 0000000000000000FFFF000008080808:0035 07\n"  # ::ffff:8.8.8.8
    )
    assert harness.remote_addresses(tmp_path) == {"1.1.1.1:443/tcp", "8.8.8.8:53/udp"}
    seen: set[str] = set()
    with harness.watching(seen, tmp_path):
        pass
    assert seen == {"1.1.1.1:443/tcp", "8.8.8.8:53/udp"}


def test_the_upstream_option_is_detected_from_the_installed_suite():
    from modmsg.config import OPTIONS

    declared = any(option.flag == "--upstream-url" for option in OPTIONS)
    assert harness.supports_upstream_url() is declared  # False until issue 15 part 1 is merged, then True


def test_the_suite_commit_is_the_last_commit_that_changed_the_suite():
    commit = harness.suite_commit()
    expected = subprocess.run(
        ["git", "-C", str(REPO), "log", "-1", "--format=%H", "--", *harness.SUITE_PATHS],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert commit.removesuffix("+dirty") == expected


def test_the_command_refuses_to_mix_unaligned_runs_in_one_sentence(tmp_path: Path):
    runs = tmp_path / "runs"
    harness.save(_run("reference", {"MM-A": "PASS"}), runs)
    harness.save(_run("gateway", {"MM-A": "PASS"}, alignment=replace(ALIGNED, seed=99)), runs)
    done = subprocess.run(
        [sys.executable, "-m", "proving.matrix", "--render-only", "--home", str(tmp_path), "--out", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().startswith("matrix: run 'gateway' has seed 99 but 'reference' has 7")
    assert not (tmp_path / "compatibility.md").exists()
    harness.save(_run("gateway", {"MM-A": "FAIL"}), runs)
    done = subprocess.run(
        [sys.executable, "-m", "proving.matrix", "--render-only", "--home", str(tmp_path), "--out", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "**FAIL · introduced**" in (tmp_path / "compatibility.md").read_text(encoding="utf-8")
    assert (tmp_path / "compatibility.html").is_file()


def test_every_product_is_pinned_exactly():
    litellm = (REPO / "recipes" / "litellm" / "requirements.txt").read_text(encoding="utf-8").splitlines()
    pins = [line for line in litellm if line and not line.startswith("#")]
    assert "litellm==1.108.7" in pins and all("==" in line for line in pins)
    manifest = json.loads((REPO / "recipes" / "prism" / "package.json").read_text(encoding="utf-8"))
    lock = json.loads((REPO / "recipes" / "prism" / "package-lock.json").read_text(encoding="utf-8"))
    version = manifest["dependencies"][products.PRISM_PACKAGE]
    assert lock["packages"][f"node_modules/{products.PRISM_PACKAGE}"]["version"] == version
    assert products.PRODUCTS[0].name == cells.CONTROL
    assert ".matrix/" in (REPO / ".gitignore").read_text(encoding="utf-8").splitlines()


def test_inside_the_matrix_network_namespace_the_watch_sees_an_outbound_attempt():
    from proving.matrix.__main__ import netns_available

    if not netns_available():
        pytest.skip("no unprivileged network namespace here (unshare -rn)")
    probe = (
        "import socket, time\n"
        "from proving.matrix.harness import watching\n"
        "seen = set()\n"
        "with watching(seen):\n"
        "    s = socket.socket(); s.setblocking(False); s.connect_ex(('192.0.2.1', 443)); time.sleep(0.3); s.close()\n"
        "print(sorted(seen))\n"
    )
    script = 'ip link set lo up && ip route add default dev lo && exec "$@"'
    done = subprocess.run(
        ["unshare", "-rn", "sh", "-c", script, "sh", sys.executable, "-c", probe],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['192.0.2.1:443/tcp']"  # TEST-NET-1: nothing leaves the namespace anyway


def test_the_command_runs_the_control_in_a_network_namespace_and_writes_the_matrix(tmp_path: Path):
    from proving.matrix.__main__ import netns_available

    if not netns_available():
        pytest.skip("no unprivileged network namespace here (unshare -rn)")
    command = [sys.executable, "-m", "proving.matrix", "--products", "reference", "--seed", "4", "--max-examples", "5"]
    command += ["--home", str(tmp_path), "--out", str(tmp_path), "--", "--req", "MM-META-06"]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    run = harness.load(tmp_path / "runs")[0]
    assert run.watched and run.contacts == () and run.isolation.startswith("every run in a network namespace")
    assert run.outcome("MM-META-06") == "PASS" and run.alignment.seed == 4 and run.alignment.max_examples == 5
    text = (tmp_path / "compatibility.md").read_text(encoding="utf-8")
    assert "seed `4`, `--max-examples 5`" in text and "| modmsg " in text and "| none |" in text


def test_products_start_without_proxies_or_suite_secrets_and_litellm_offline(monkeypatch: pytest.MonkeyPatch):
    for name in ("HTTPS_PROXY", "http_proxy", "TRUSTED_CUSTOM_HOSTS", "MODMSG_API_KEY"):
        monkeypatch.setenv(name, "x")
    env = products.clean_env({"OPENAI_API_BASE": "http://127.0.0.1:1"})
    assert not {"HTTPS_PROXY", "http_proxy", "TRUSTED_CUSTOM_HOSTS", "MODMSG_API_KEY"} & set(env)
    assert env["OPENAI_API_BASE"] == "http://127.0.0.1:1" and env["PATH"]
    assert products.LITELLM_OFFLINE["LITELLM_LOCAL_MODEL_COST_MAP"] == "True"
    assert products.LITELLM_OFFLINE["LITELLM_TELEMETRY"] == "False"
