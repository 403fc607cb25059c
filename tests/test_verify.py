"""The claim bundle (claim.json, SHA256SUMS, claim.json.sig) and `modmsg verify DIR` (issue 15, part 3).

Two real runs per module: a signed run of the whole suite against the bundled reference server, and an unsigned run
of the metadata requirements against a variant that breaks three of them, through its URL and key. Every tampering
test works on a copy of one of them.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat
from helpers import SuiteRun, run_cli, run_suite

from modmsg.cli import main
from modmsg.reference.variants import get_variant
from modmsg.report import ARTEFACTS, SIGNED, clear_reports
from modmsg.report.bundle import Provenance, write_bundle
from modmsg.report.signing import SigningError
from modmsg.report.verify import verify_bundle
from modmsg.results_file import load_results

KEY = "sk-modmsg-verify-0123456789abcdef"
REPORTS = ("results.json", "junit.xml", "summary.md", "report.html", "badge.svg")
BROKEN = ("MM-META-01", "MM-META-02", "MM-META-03")  # what empty_string_deletes_key breaks


@dataclass(frozen=True)
class Keys:
    private: Path
    public: Path
    other_public: Path


def _pem_public(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    folder = tmp_path_factory.mktemp("keys")
    key = Ed25519PrivateKey.generate()
    private = folder / "vendor-signing-key.pem"
    private.write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    (folder / "vendor.pub").write_bytes(_pem_public(key))
    (folder / "other.pub").write_bytes(_pem_public(Ed25519PrivateKey.generate()))
    return Keys(private, folder / "vendor.pub", folder / "other.pub")


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory, keys: Keys) -> SuiteRun:
    done = run_suite(tmp_path_factory.mktemp("signed"), "--sign-key", str(keys.private))
    assert done.exit_code == 0, done.output[-3000:]
    return done


@pytest.fixture(scope="module")
def failing(tmp_path_factory: pytest.TempPathFactory) -> SuiteRun:
    with get_variant("empty_string_deletes_key").start(KEY) as server:
        done = run_suite(
            tmp_path_factory.mktemp("failing"), "--base-url", server.base_url, "--req", "MM-META",
            env={"MODMSG_API_KEY": KEY},
        )  # fmt: skip
    assert done.exit_code == 1, done.output[-3000:]
    assert all(done.outcomes()[i] == "FAIL" for i in BROKEN)
    return done


def copy_of(run: SuiteRun, tmp_path: Path) -> Path:
    return Path(shutil.copytree(run.report_dir, tmp_path / "bundle"))


def verify(directory: Path, *args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    code = main(["verify", str(directory), *args])
    captured = capsys.readouterr()
    return code, (captured.out + captured.err).splitlines()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def reseal(directory: Path) -> None:
    """What an attacker who edits a report does next: the claim's subjects and SHA256SUMS recomputed."""
    claim_path = directory / "claim.json"
    claim = json.loads(claim_path.read_text(encoding="utf-8"))
    for subject in claim["subject"]:
        subject["digest"]["sha256"] = sha256(directory / subject["name"])
    claim_path.write_text(json.dumps(claim, indent=2), encoding="utf-8")
    names = [line.split("  ", 1)[1] for line in (directory / "SHA256SUMS").read_text(encoding="utf-8").splitlines()]
    (directory / "SHA256SUMS").write_text("".join(f"{sha256(directory / n)}  {n}\n" for n in names), encoding="utf-8")


def edit(path: Path, old: str, new: str, count: int = 1) -> None:
    content = path.read_text(encoding="utf-8")
    assert old in content, (path.name, old)
    path.write_text(content.replace(old, new, count), encoding="utf-8")


# ------------------------------------------------------------------------------------------------ intact bundles


@pytest.mark.parametrize("which", ["signed", "failing"])
def test_an_intact_bundle_verifies(which: str, request: pytest.FixtureRequest, capsys) -> None:
    run: SuiteRun = request.getfixturevalue(which)
    code, lines = verify(run.report_dir, capsys=capsys)
    assert code == 0, lines
    assert "match SHA256SUMS" in lines[0] and "say what results.json says" in lines[0]
    assert lines[1] == f"claim: {run.results['claim']['text']}"
    if shutil.which("sha256sum"):  # the manifest is plain sha256sum format
        checked = subprocess.run(
            ["sha256sum", "-c", "SHA256SUMS"], cwd=run.report_dir, capture_output=True, check=False
        )
        assert checked.returncode == 0, checked.stdout


def test_every_run_writes_the_claim_record_and_the_manifest_beside_its_reports(failing: SuiteRun) -> None:
    directory = failing.report_dir
    assert all((directory / name).is_file() for name in ARTEFACTS)
    assert not (directory / "claim.json.sig").exists()  # unsigned
    listed = (directory / "SHA256SUMS").read_text(encoding="utf-8").splitlines()
    assert [line.split("  ")[1] for line in listed] == [*REPORTS, "claim.json"]
    claim = json.loads((directory / "claim.json").read_text(encoding="utf-8"))
    assert claim["_type"] == "https://in-toto.io/Statement/v1"
    assert claim["predicateType"] == "https://in-toto.io/attestation/test-result/v0.1"
    assert {s["name"]: s["digest"]["sha256"] for s in claim["subject"]} == {n: sha256(directory / n) for n in REPORTS}
    predicate, results = claim["predicate"], failing.results
    assert predicate["result"] == "fail" and set(BROKEN) <= set(predicate["failedTests"])
    inputs = {c["name"] for c in predicate["configuration"]}
    assert inputs == {
        "spec/modify-message.openapi.yaml",
        "spec/overlay.yaml",
        "spec/requirements.yaml",
        "profile:openai",
    }
    facts = predicate["modmsg"]
    assert facts["outcomes"] == failing.outcomes()
    assert facts["target"] == results["meta"]["target"] and facts["target"].startswith("http://127.0.0.1:")
    assert facts["seed"] == results["meta"]["seed"] and facts["started"] == results["meta"]["started"]
    assert facts["suite"]["version"] == results["meta"]["suite_version"] and facts["claim"] == results["claim"]
    commit = facts["suite"]["commit"]  # this checkout is a git checkout: its commit, 40 hex digits
    assert isinstance(commit, str) and len(commit) == 40 and int(commit, 16) >= 0
    assert KEY not in (directory / "claim.json").read_text(encoding="utf-8")


def test_the_signing_key_and_its_path_reach_no_artefact(signed: SuiteRun, keys: Keys) -> None:
    pem = keys.private.read_text(encoding="ascii").splitlines()[1]
    for name in (*ARTEFACTS, *SIGNED):
        content = (signed.report_dir / name).read_text(encoding="utf-8")
        assert keys.private.name not in content and str(keys.private.parent) not in content and pem not in content
    listed = (signed.report_dir / "SHA256SUMS").read_text(encoding="utf-8")
    assert listed.endswith("  claim.json.sig\n")


# ------------------------------------------------------------------------------------------------ tampering


@pytest.mark.parametrize("name", [*ARTEFACTS[:-1], "claim.json.sig"])
def test_a_changed_byte_in_any_artefact_is_caught(name: str, signed: SuiteRun, tmp_path: Path, capsys) -> None:
    directory = copy_of(signed, tmp_path)
    path = directory / name
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle] = ord("x") if data[middle] != ord("x") else ord("y")
    path.write_bytes(bytes(data))
    code, lines = verify(directory, capsys=capsys)
    assert code == 1
    assert f"{name} does not match its sha256 in SHA256SUMS: its bytes changed after the run" in lines
    assert "Traceback" not in "\n".join(lines)


def test_a_changed_manifest_is_caught(signed: SuiteRun, tmp_path: Path, capsys) -> None:
    directory = copy_of(signed, tmp_path)
    edit(directory / "SHA256SUMS", "  junit.xml", "  junit.xml.bak")
    code, lines = verify(directory, capsys=capsys)
    assert code == 1
    assert "SHA256SUMS lists 'junit.xml.bak', which is no artefact of a modmsg bundle" in lines
    assert "junit.xml is in the directory but not listed in SHA256SUMS" in lines


@pytest.mark.parametrize("name", [*REPORTS, "claim.json", "claim.json.sig"])
def test_a_missing_file_is_caught(name: str, signed: SuiteRun, tmp_path: Path, capsys) -> None:
    directory = copy_of(signed, tmp_path)
    (directory / name).unlink()
    code, lines = verify(directory, capsys=capsys)
    assert code == 1
    assert f"{name} is listed in SHA256SUMS but missing" in lines
    assert lines[-1].endswith("discrepancy(ies)") and "Traceback" not in "\n".join(lines)


def test_a_missing_manifest_is_caught(signed: SuiteRun, tmp_path: Path, capsys) -> None:
    directory = copy_of(signed, tmp_path)
    (directory / "SHA256SUMS").unlink()
    code, lines = verify(directory, capsys=capsys)
    assert code == 1 and "SHA256SUMS is missing, so nothing vouches for the bytes of the artefacts" in lines


def test_an_extra_unlisted_artefact_is_caught(failing: SuiteRun, tmp_path: Path, capsys) -> None:
    directory = copy_of(failing, tmp_path)
    (directory / "claim.json.sig").write_text("AAAA\n", encoding="ascii")
    code, lines = verify(directory, capsys=capsys)
    assert code == 1 and lines[0] == "claim.json.sig is in the directory but not listed in SHA256SUMS"


def test_a_hand_edited_results_outcome_is_caught_by_the_other_reports(
    failing: SuiteRun, tmp_path: Path, capsys
) -> None:
    """The attacker turns a FAIL into a PASS in results.json and rewrites SHA256SUMS (and the claim's subjects):
    every byte matches its manifest, but the reports and the claim still say FAIL."""
    directory = copy_of(failing, tmp_path)
    results = json.loads((directory / "results.json").read_text(encoding="utf-8"))
    entry = next(r for r in results["requirements"] if r["id"] == "MM-META-01")
    entry["outcome"] = "PASS"
    (directory / "results.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    reseal(directory)
    code, lines = verify(directory, capsys=capsys)
    assert code == 1
    assert not any("SHA256SUMS" in line for line in lines[:-1])  # every byte matches the rewritten manifest
    for source in ("junit.xml", "report.html", "claim.json"):
        assert f"{source} says MM-META-01 is FAIL; results.json says PASS" in lines, (source, lines)
    assert "summary.md lists MM-META-01 among the failing, as 'FAIL'; results.json has it as PASS" in lines, lines
    assert any(line.startswith("summary.md says the counts of the All row are") for line in lines), lines
    assert "badge.svg says its title is 'modify message: openai: 3/18 failing'; results.json makes it " \
        "'modify message: openai: 2/18 failing'" in lines  # fmt: skip


def test_a_hand_edited_claim_is_caught(failing: SuiteRun, tmp_path: Path, capsys) -> None:
    directory = copy_of(failing, tmp_path)
    claim = json.loads((directory / "claim.json").read_text(encoding="utf-8"))
    claim["predicate"]["modmsg"]["outcomes"]["MM-META-02"] = "PASS"
    claim["predicate"]["modmsg"]["seed"] = 7
    claim["predicate"]["modmsg"]["target"] = "https://api.openai.com/v1"
    (directory / "claim.json").write_text(json.dumps(claim, indent=2), encoding="utf-8")
    reseal(directory)
    code, lines = verify(directory, capsys=capsys)
    seed, target = failing.results["meta"]["seed"], failing.results["meta"]["target"]
    assert code == 1
    assert "claim.json says MM-META-02 is PASS; results.json says FAIL" in lines
    assert f"claim.json says the seed is '7'; results.json makes it '{seed}'" in lines
    assert f"claim.json says the target is 'https://api.openai.com/v1'; results.json makes it '{target}'" in lines
    assert len(lines) == 4, lines  # three sentences and the closing count


def test_a_claim_about_other_reports_is_caught(failing: SuiteRun, tmp_path: Path, capsys) -> None:
    directory = copy_of(failing, tmp_path)
    edit(directory / "summary.md", "conformance", "conformance ")  # a changed report, the manifest rewritten only
    names = ("results.json", "junit.xml", "summary.md", "report.html", "badge.svg", "claim.json")
    (directory / "SHA256SUMS").write_text("".join(f"{sha256(directory / n)}  {n}\n" for n in names), encoding="utf-8")
    code, lines = verify(directory, capsys=capsys)
    assert code == 1
    assert "claim.json names summary.md with another sha256 than the file has: the claim is not about it" in lines


@pytest.mark.parametrize(
    ("name", "old", "new", "sentence"),
    [
        ("junit.xml", 'name="claim_status" value="not-conformant"', 'name="claim_status" value="conformant"',
         "junit.xml says the claim status is 'conformant'; results.json makes it 'not-conformant'"),
        ("report.html", 'class="claim claim-not-conformant"', 'class="claim claim-conformant"',
         "report.html says the claim status is 'conformant'; results.json makes it 'not-conformant'"),
        ("summary.md", "NOT CONFORMANT", "CONFORMANT (MUST+SHOULD)",
         "summary.md says the claim is 'CONFORMANT (MUST+SHOULD)'; results.json makes it 'NOT CONFORMANT'"),
        ("badge.svg", 'fill="#cb2431"', 'fill="#2e8540"',
         "badge.svg says its colour is '#2e8540'; results.json makes it '#cb2431'"),
    ],
)  # fmt: skip
def test_a_report_that_disagrees_with_results_json_is_caught(
    name: str, old: str, new: str, sentence: str, failing: SuiteRun, tmp_path: Path, capsys
) -> None:
    directory = copy_of(failing, tmp_path)
    edit(directory / name, old, new)
    reseal(directory)
    code, lines = verify(directory, capsys=capsys)
    assert code == 1 and sentence in lines, lines


def test_a_junit_testcase_edited_to_pass_is_caught(failing: SuiteRun, tmp_path: Path, capsys) -> None:
    """The <failure> of a failing requirement removed from junit.xml, and the testsuite's count made to fit it."""
    directory = copy_of(failing, tmp_path)
    tree = ET.parse(directory / "junit.xml")
    suite = tree.getroot().find("testsuite")
    assert suite is not None
    case = next(c for c in suite.iter("testcase") if str(c.get("name")).startswith("MM-META-01 "))
    case.remove(case.find("failure"))
    suite.set("failures", str(int(suite.get("failures", "0")) - 1))
    tree.write(directory / "junit.xml", encoding="utf-8", xml_declaration=True)
    reseal(directory)
    code, lines = verify(directory, capsys=capsys)
    assert code == 1
    assert lines[:-1] == [
        "junit.xml says the testsuite's failures count is '2'; results.json makes it '3'",
        "junit.xml says MM-META-01 is PASS; results.json says FAIL",
    ]


def test_a_report_row_edited_to_pass_is_caught(failing: SuiteRun, tmp_path: Path, capsys) -> None:
    """The matrix row of a failing requirement in report.html made to read PASS, class and text."""
    directory = copy_of(failing, tmp_path)
    page = (directory / "report.html").read_text(encoding="utf-8")
    row_start = page.index('<tr class="row-fail">\n<th scope="row"><a class="id" href="#req-MM-META-01">')
    row_end = page.index("</tr>", row_start)
    row = page[row_start:row_end]
    forged = row.replace("row-fail", "row-pass").replace("state-fail", "state-pass").replace("FAIL", "PASS")
    (directory / "report.html").write_text(page[:row_start] + forged + page[row_end:], encoding="utf-8")
    reseal(directory)
    code, lines = verify(directory, capsys=capsys)
    assert code == 1 and lines[:-1] == ["report.html says MM-META-01 is PASS; results.json says FAIL"], lines


def test_a_requirement_section_edited_to_pass_is_caught(failing: SuiteRun, tmp_path: Path, capsys) -> None:
    """The open section of a failing requirement in report.html made to read PASS; its table row left alone."""
    directory = copy_of(failing, tmp_path)
    page = (directory / "report.html").read_text(encoding="utf-8")
    start = page.index('<details class="req req-fail" id="req-MM-META-02"')
    end = page.index("</h4>", start)
    forged = page[start:end].replace("req-fail", "req-pass").replace("state-fail", "state-pass").replace("FAIL", "PASS")
    (directory / "report.html").write_text(page[:start] + forged + page[end:], encoding="utf-8")
    reseal(directory)
    code, lines = verify(directory, capsys=capsys)
    assert code == 1
    assert lines[:-1] == [
        "report.html's own section for each requirement says MM-META-02 is PASS; results.json says FAIL"
    ], lines


# ------------------------------------------------------------------------------------------------ signatures


def test_a_signed_bundle_verifies_with_its_public_key(signed: SuiteRun, keys: Keys, capsys) -> None:
    code, lines = verify(signed.report_dir, "--public-key", str(keys.public), capsys=capsys)
    assert code == 0 and lines[0].endswith("; signature valid"), lines
    code, lines = verify(signed.report_dir, capsys=capsys)
    assert code == 0 and lines[0].endswith("signed (give --public-key to check it)"), lines


def test_a_signature_by_another_key_is_caught(signed: SuiteRun, keys: Keys, capsys) -> None:
    code, lines = verify(signed.report_dir, "--public-key", str(keys.other_public), capsys=capsys)
    assert code == 1
    assert lines[0] == (
        "claim.json.sig is not a valid signature of claim.json by this public key (a changed claim or another key)"
    )


def test_an_unsigned_bundle_fails_when_a_public_key_is_given(failing: SuiteRun, keys: Keys, capsys) -> None:
    code, lines = verify(failing.report_dir, "--public-key", str(keys.public), capsys=capsys)
    assert code == 1 and lines[0] == "claim.json.sig is missing, so the claim is not signed by the key given"


def test_a_resealed_claim_no_longer_matches_its_signature(signed: SuiteRun, keys: Keys, tmp_path: Path, capsys) -> None:
    directory = copy_of(signed, tmp_path)
    edit(directory / "claim.json", '"seed": ', '"seed": 1')  # a different seed, the manifest recomputed
    reseal(directory)
    code, lines = verify(directory, "--public-key", str(keys.public), capsys=capsys)
    assert code == 1
    assert any(line.startswith("claim.json says the seed is") for line in lines)
    assert any(line.startswith("claim.json.sig is not a valid signature") for line in lines)


def test_write_bundle_loads_the_key_before_writing_anything(failing: SuiteRun, keys: Keys, tmp_path: Path) -> None:
    """A key gone bad by the end of a run leaves no half bundle; a good one signs what verify then accepts."""
    directory = copy_of(failing, tmp_path)
    for name in ("claim.json", "SHA256SUMS"):
        (directory / name).unlink()
    run = load_results(directory / "results.json")
    origin = Provenance(commit=None, modified=None, inputs=())
    with pytest.raises(SigningError, match="cannot be read"):
        write_bundle(run, directory, origin, tmp_path / "gone.pem")
    assert sorted(p.name for p in directory.iterdir()) == sorted(REPORTS)
    written = write_bundle(run, directory, origin, keys.private)
    assert [p.name for p in written] == ["claim.json", "claim.json.sig", "SHA256SUMS"]
    assert verify_bundle(directory, keys.public).signature == "valid"


# ------------------------------------------------------------------------------------------------ wrong input


def test_a_directory_without_a_bundle_is_a_wrong_input(tmp_path: Path) -> None:
    for directory, words in ((tmp_path / "nope", "is not a directory"), (tmp_path, "holds no claim bundle")):
        done = run_cli("verify", str(directory))
        assert done.returncode == 2 and done.stdout == "", done.stderr
        assert done.stderr.count("\n") == 1 and words in done.stderr and "Traceback" not in done.stderr


def test_an_unusable_public_key_is_a_wrong_input(signed: SuiteRun, keys: Keys, tmp_path: Path, capsys) -> None:
    not_a_key = tmp_path / "not-a-key.pem"
    not_a_key.write_text("hello\n", encoding="utf-8")
    for path, words in (
        (not_a_key, "is not a PEM public key"),
        (tmp_path / "absent.pem", "cannot be read"),
        (keys.private, "is not a PEM public key"),
    ):
        code, lines = verify(signed.report_dir, "--public-key", str(path), capsys=capsys)
        assert code == 2 and len(lines) == 1 and words in lines[0], lines


def test_an_unusable_signing_key_stops_the_run_before_it_starts(tmp_path: Path) -> None:
    p256 = tmp_path / "p256.pem"
    p256.write_bytes(ec.generate_private_key(ec.SECP256R1()).private_bytes(Encoding.PEM, PrivateFormat.PKCS8,
                                                                          NoEncryption()))  # fmt: skip
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n", encoding="ascii")
    reports = tmp_path / "reports"
    for path, words in (
        (p256, "is not an Ed25519 key"),
        (garbage, "is not a PEM private key"),
        (tmp_path / "absent.pem", "cannot be read"),
    ):
        done = run_suite(reports, "--sign-key", str(path), "--req", "MM-RESP-04")
        assert done.exit_code == 2, done.output[-2000:]
        lines = [line for line in done.output.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("modmsg: --sign-key: the signing key") and words in lines[0]
        assert not reports.exists() or not any(reports.iterdir())


def test_clear_reports_removes_the_bundle_too(tmp_path: Path) -> None:
    for name in (*ARTEFACTS, *SIGNED, ".modmsg-threads.jsonl"):
        (tmp_path / name).write_text("x", encoding="utf-8")
    clear_reports(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".modmsg-threads.jsonl"]


def test_re_rendering_in_place_says_the_bundle_no_longer_matches(failing: SuiteRun, tmp_path: Path, capsys) -> None:
    directory = copy_of(failing, tmp_path)
    assert main(["report", str(directory / "results.json")]) == 0
    assert "the re-rendered files no longer match it" in capsys.readouterr().out
    code, lines = verify(directory, capsys=capsys)
    assert code == 1 and "report.html does not match its sha256 in SHA256SUMS: its bytes changed after the run" in lines


def test_a_run_that_signs_nothing_never_imports_cryptography(failing: SuiteRun) -> None:
    """The bundle is written and verified without loading the signing library (it is imported only for a key)."""
    code = (
        "import sys; from pathlib import Path; from modmsg.report.verify import verify_bundle; "
        "import modmsg.plugin, modmsg.report.bundle; "
        f"assert verify_bundle(Path({str(failing.report_dir)!r})).ok; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'cryptography'))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stdout + done.stderr
