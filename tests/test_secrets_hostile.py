"""A hostile target echoes the key and a secret header in every field and encoding; nothing of them may show.

The server (stdlib, loopback) puts the secrets raw, cut in half, JSON-escaped (mixed ``\\uXXXX`` case, ``\\/``),
base64 (standard and URL-safe, with and without padding, of the key alone, of ``Bearer KEY`` and of Basic
``user:KEY`` forms at every alignment), percent-encoded (mixed case, ``+`` for a space), in a 502 reason phrase,
in response headers, straddling the 16 KiB evidence cut, and in the ids it hands out (so in every later URL and
in the thread ledger). The real suite runs against it in a subprocess, and the console, every artefact of the
report directory (the ledger included), pytest's own JUnit and the request recording are searched for the
secrets, any 24-character fragment of them and of their base64 forms, in the text as written and decoded. It
also sends terminal controls (ESC sequences, an OSC-8 link, CR, NUL, BEL, bidi overrides): none may reach the
console.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from helpers import Cleanups, SuiteRun, run_suite

from modmsg.config import default_settings, resolve
from modmsg.evidence import BODY_CAP, Exchange
from modmsg.ledger import Entry, Ledger
from modmsg.recording import RequestLog
from modmsg.redaction import MIN_FRAGMENT, REDACTED, Redactor, inert
from modmsg.transport import Transport

KEY = "sk-proj-" + secrets.token_urlsafe(117)[:156]  # 164 characters, like a real project key
SECRET = "xs/Very+Secret/Header/Value-" + secrets.token_hex(6)  # 40 characters, with '/' and '+'
ID_PART = KEY[:120]  # the key's alphabet is the id alphabet: a long fragment of it makes a valid id
WRONG_KEY = "sk-modmsg-wrong-key-0000000000"  # suites/test_requests.py's deliberate wrong key: shown as sent
CONTROLS = "\x1b[2J\x1b]8;;http://evil.example/\x07click\x1b]8;;\x07\r\x00\u202e\u2066\u200f\x9b"
TERMINAL_CONTROLS = frozenset(c for c in CONTROLS if not c.isprintable())
FRAGMENT = 24


# ------------------------------------------------------------------------------------------------ the target


def _b64(data: str) -> list[str]:
    std = base64.b64encode(data.encode()).decode()
    url = base64.urlsafe_b64encode(data.encode()).decode()
    return [std, std.rstrip("="), url, url.rstrip("="), std.replace("/", "\\/")]


def _echoes(value: str) -> str:
    """``value`` in every form, as JSON-safe text (the \\u escapes are valid JSON escapes)."""
    half = len(value) // 2
    forms = [value, value[: half + 7], value[half - 7 :]]
    forms.append(
        "".join(
            c if i % 3 == 0 else f"\\u{ord(c):04x}" if i % 3 == 1 else f"\\u{ord(c):04X}" for i, c in enumerate(value)
        ).replace("/", "\\/")
    )
    for wrapped in (value, f"Bearer {value}", f"user:{value}", f":{value}", f"{value}:", f"a{value}", f"ab{value}"):
        forms += _b64(wrapped)
    forms.append("Basic " + base64.b64encode(f"user:{value}".encode()).decode())
    forms.append("".join(f"%{b:02x}" if i % 2 else f"%{b:02X}" for i, b in enumerate(value.encode())))
    forms.append(urllib.parse.quote_plus(f"Bearer {value}"))
    return " | ".join(forms)


def _wide(value: str) -> str:
    """``value`` as UTF-16 (both byte orders) and UTF-32 bytes, which a body read as UTF-8 shows as the value's
    characters with NULs between them (a target that answers in another encoding than it says)."""
    return " | ".join(value.encode(codec).decode("latin-1") for codec in ("utf-16-le", "utf-16-be", "utf-32-le"))


ECHOES = _echoes(KEY) + " | " + _echoes(SECRET)
JSON_CONTROLS = json.dumps(CONTROLS)[1:-1]


class Hostile(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.answer()

    def do_POST(self) -> None:
        self.answer()

    def do_DELETE(self) -> None:
        self.answer()

    def answer(self) -> None:
        sent = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        parts = urllib.parse.urlsplit(self.path).path.strip("/").split("/")[1:]  # without the "v1"
        method, shape = self.command, (len(parts), parts[-1] if parts else "")
        if method == "POST" and parts == ["threads"]:
            # an id that is safe in a path yet carries 120 characters of the key, and the metadata sent echoed back
            # (so the suite uses the thread and writes its id to the ledger and the recording)
            metadata = json.loads(sent or b"{}").get("metadata") or {}
            thread = {
                "id": f"thread_{ID_PART}",
                "object": "thread",
                "created_at": int(time.time()),
                "metadata": metadata,
            }
            self.json(200, thread)
        elif method == "POST" and shape[0] == 3 and shape[1] == "messages":
            self.json(200, _message(parts[1]))
        elif method == "POST" and shape[0] == 4:  # modify: an error straddling the evidence cut, raw controls
            head = '{"error": {"message": "'
            pad = "p" * (BODY_CAP - len(head) - 40)
            body = f'{head}{pad}{KEY} {ECHOES} {CONTROLS}", "type": "invalid_request_error", "param": null}}}}'
            self.send(400, "Bad Request", "application/json", body)
        elif method == "GET" and shape[0] == 4:  # a valid message, the echoes JSON-escaped in an extra field
            body = json.dumps(_message(parts[1]))[:-1] + f', "debug": "{ECHOES} {JSON_CONTROLS}"}}'
            self.send(200, "OK", "application/json", body)
        elif method == "GET" and shape[0] == 3:  # listMessages: a gateway page, the key in its reason phrase
            page = f"<html>{ECHOES} {_wide(KEY)} {_wide(SECRET)} {CONTROLS}</html>"
            self.send(502, f"Bad Gateway {KEY} {CONTROLS[:-8]}", "text/html", page)
        else:  # the probe, getThread, deleteThread: errors (so the ledger keeps its lines)
            status = 500 if method == "DELETE" else 404
            body = f'{{"error": {{"message": "no such thing: {ECHOES} {JSON_CONTROLS}", "type": "x", "code": null}}}}'
            self.send(status, "Error", "application/json", body)

    def json(self, status: int, data: object) -> None:
        self.send(status, "OK", "application/json", json.dumps(data))

    def send(self, status: int, reason: str, content_type: str, body: str) -> None:
        data = body.encode("utf-8", "surrogatepass")
        self.send_response(status, reason)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Echo-Key", KEY)
        self.send_header("X-Echo-Authorization", self.headers.get("Authorization", ""))
        self.send_header("X-Echo-Basic", "Basic " + base64.b64encode(f"user:{KEY}".encode()).decode())
        self.send_header("X-Secret", SECRET)
        self.send_header("Set-Cookie", "s=" + urllib.parse.quote(SECRET, safe=""))
        self.end_headers()
        self.wfile.write(data)


def _message(thread_id: str) -> dict[str, object]:
    return {
        "id": f"msg_{ID_PART}",
        "object": "thread.message",
        "created_at": int(time.time()),
        "thread_id": thread_id,
        "role": "user",
        "content": [{"type": "text", "text": {"value": "hi", "annotations": []}}],
        "metadata": {},
        "assistant_id": None,
        "run_id": None,
        "attachments": [],
        "status": None,
        "incomplete_details": None,
        "completed_at": None,
        "incomplete_at": None,
    }


@pytest.fixture(scope="module")
def hostile() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hostile)
    server.daemon_threads = True
    worker = threading.Thread(target=server.serve_forever, daemon=True)
    worker.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


def _run(tmp_path: Path, base_url: str, *extra: str) -> tuple[SuiteRun, list[Path]]:
    reports = tmp_path / "reports"
    recording, junit = tmp_path / "requests.jsonl", tmp_path / "pytest-junit.xml"
    done = run_suite(
        reports,
        "-p",
        "no:randomly",
        "--base-url",
        base_url,
        "--header",
        f"X-Secret: {SECRET}",
        "--secret-header",
        "X-Secret",
        *("--req", "MM-RESP-01", "--req", "MM-META-02", "--req", "MM-META-03", "--req", "MM-REQ-07"),
        *("--req", "MM-ERR-09", "--req", "MM-GEN-01"),
        "--max-examples",
        "5",
        "--max-transport-failures",
        "0",
        "--record-requests",
        str(recording),
        "--junitxml",
        str(junit),
        *extra,
        env={"MODMSG_API_KEY": KEY},
        timeout=120,
    )
    artefacts = [recording, junit, *(p for p in reports.rglob("*") if p.is_file())]
    return done, artefacts


# ------------------------------------------------------------------------------------------------ the search


def _base64_cores(value: str) -> list[str]:
    """What base64 of any text holding ``value`` must contain, at each alignment (computed independently of
    modmsg: encode with 0-2 bytes before, drop the groups shared with the neighbours)."""
    cores = []
    for prefix in ("", "a", "ab"):
        std = base64.b64encode((prefix + value).encode()).decode()
        core = std[4 if prefix else 0 : len(std) - 4]
        cores += [core, core.replace("+", "-").replace("/", "_")]
    return cores


def _needles(value: str) -> set[str]:
    forms = [value, *_base64_cores(value)]
    return {form[i : i + FRAGMENT] for form in forms for i in range(len(form) - FRAGMENT + 1)}


NEEDLES = {"the key": _needles(KEY), "the secret header": _needles(SECRET)}


def _views(text: str) -> list[str]:
    unescaped = re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), text).replace("\\/", "/")
    views = [text, unescaped, urllib.parse.unquote(text), urllib.parse.unquote_plus(text)]
    # UTF-16/32 of the value read as UTF-8: its characters with NULs between them, raw or shown as \x00 or \u0000
    return views + [view.replace("\x00", "").replace("\\x00", "") for view in views]


def leaks(where: str, text: str) -> list[str]:
    found = []
    for view in _views(text):
        for what, needles in NEEDLES.items():
            hit = next((n for n in needles if n in view), None)
            if hit is not None:
                found.append(f"{where}: {what} ({hit!r})")
    return sorted(set(found))


def _all_leaks(done: SuiteRun, artefacts: list[Path]) -> list[str]:
    found = leaks("console", done.output)
    for path in artefacts:
        found += leaks(path.name, path.read_bytes().decode("utf-8", "replace"))
    return found


# ------------------------------------------------------------------------------------------------ end to end


def test_a_hostile_target_gets_no_secret_into_any_output(tmp_path: Path, hostile: str) -> None:
    done, artefacts = _run(tmp_path, hostile)
    names = {p.name for p in artefacts if p.exists()}
    assert {"requests.jsonl", "pytest-junit.xml", "results.json", "report.html", ".modmsg-threads.jsonl"} <= names, (
        names,
        done.output[-3000:],
    )
    assert done.exit_code == 1, done.output[-3000:]
    assert _all_leaks(done, [p for p in artefacts if p.exists()]) == []
    results = done.results
    assert results["meta"]["variables"] == [
        {"variable": "MODMSG_API_KEY", "meaning": "the API key (sent as Authorization: Bearer …)"},
        {"variable": "MODMSG_SECRET_X_SECRET", "meaning": "the value of the X-Secret header"},
    ]
    curls = [e["curl"] for r in results["requirements"] for t in r["tests"] for e in t["evidence"]]
    assert any('-H "Authorization: Bearer $MODMSG_API_KEY"' in c and "$MODMSG_SECRET_X_SECRET" in c for c in curls)
    # the deliberate wrong key of MM-REQ-07 is not a secret: its evidence and curl show it as sent
    assert any(f"-H 'Authorization: Bearer {WRONG_KEY}'" in c for c in curls)


def test_tracebacks_locals_and_logs_show_no_secret_and_no_terminal_control(tmp_path: Path, hostile: str) -> None:
    """Also with every log record shown live and written to a file: urllib3 logs each request line (the hostile
    ids carry 120 characters of the key), and neither goes through a report."""
    log_file = tmp_path / "debug.log"
    done, artefacts = _run(
        tmp_path, hostile, "-v", "--tb=long", "--showlocals", "--log-cli-level=DEBUG", "--log-file", str(log_file),
        "--log-file-level=DEBUG",
    )  # fmt: skip
    assert done.exit_code == 1, done.output[-3000:]
    assert "Traceback" in done.output or "def test_" in done.output  # tracebacks were printed
    assert "connectionpool" in done.output and "connectionpool" in log_file.read_text("utf-8")  # urllib3 logged
    assert _all_leaks(done, [log_file, *(p for p in artefacts if p.exists())]) == []
    controls = sorted({repr(c) for c in done.output if c in TERMINAL_CONTROLS})
    assert controls == [], controls
    assert "\\x1b[2J" in done.output  # shown, escaped


# ------------------------------------------------------------------------------------------------ the redactor


@pytest.fixture(scope="module")
def redactor() -> Redactor:
    return Redactor.build(
        api_key=KEY, headers=(("X-Secret", SECRET), ("X-Plain", "p")), secret_headers=("authorization", "x-secret")
    )


@pytest.mark.parametrize(
    "form",
    [
        pytest.param(KEY, id="exact"),
        pytest.param(KEY[:30], id="first-30"),
        pytest.param(KEY[100 : 100 + MIN_FRAGMENT], id="a-12-character-fragment"),
        pytest.param("".join(f"\\u{ord(c):04x}" for c in KEY), id="json-lower-hex"),
        pytest.param("".join(f"\\u{ord(c):04X}" if i % 2 else c for i, c in enumerate(KEY)), id="json-mixed"),
        pytest.param(SECRET.replace("/", "\\/"), id="json-slash"),
        pytest.param(urllib.parse.quote(SECRET, safe=""), id="percent-upper"),
        pytest.param("".join(f"%{b:02x}" for b in KEY.encode()), id="percent-lower-every-char"),
        pytest.param(urllib.parse.quote_plus(f"Bearer {SECRET}"), id="form-encoded"),
        pytest.param("".join(f"&#{ord(c)};" if i % 2 else f"&#X{ord(c):04x};" for i, c in enumerate(KEY)), id="html"),
        *(
            pytest.param(value.encode(codec).decode("utf-8", "replace"), id=f"{codec}-read-as-utf8")
            for codec in ("utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be", "utf-16")
            for value in (KEY, SECRET[:20])
        ),
        # the same, once shown: by repr (\x00), in JSON (\u0000), URL-encoded (%00)
        pytest.param(repr(KEY.encode("utf-16-le").decode("latin-1"))[1:-1], id="utf-16-repr"),
        pytest.param(json.dumps(KEY.encode("utf-32-be").decode("latin-1"))[1:-1], id="utf-32-json"),
        pytest.param(urllib.parse.quote(KEY.encode("utf-16-le")), id="utf-16-percent"),
        *(
            pytest.param(encoding(f"{before}{value}{after}".encode()).decode().rstrip(strip), id=f"b64-{n}-{m}-{s}")
            for n, (before, after) in enumerate([("", ""), ("Bearer ", ""), ("user:", ""), (":", ""), ("", ":")])
            for m, encoding in enumerate([base64.b64encode, base64.urlsafe_b64encode])
            for s, strip in enumerate(["", "="])
            for value in (KEY, SECRET)
        ),
    ],
)
def test_every_form_of_a_secret_is_redacted(redactor: Redactor, form: str) -> None:
    text = f'{{"message": "before {form} after"}}'
    redacted = redactor.text(text)
    assert REDACTED in redacted
    assert leaks("text", redacted) == []
    assert redacted.startswith('{"message": "before ') and redacted.endswith(' after"}')


def test_log_records_show_no_secret_in_message_traceback_or_stack(redactor: Redactor) -> None:
    """Every record made while a run's factory is installed: its message (also one whose arguments do not format),
    the traceback a handler prints and the stack, redacted; and the factory is gone once the session ends."""
    import io
    import logging
    import sys

    from modmsg.plugin.logs import redacted_log_records

    before = logging.getLogRecordFactory()
    config = Cleanups()
    redacted_log_records(config, redactor.text)  # type: ignore[arg-type]
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("modmsg.test.hostile")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("echo %s \x1b[2J", KEY)
        logger.warning("bad %d format %s", KEY)
        try:
            raise ValueError(f"unparsed data: 'Echo {KEY}'")
        except ValueError:
            logger.warning("failed to parse headers", exc_info=True)
        logger.warning("here %s", "we are", stack_info=True)
        frame_with_key = KEY  # noqa: F841 - a local the stack does not show, but its line might
        logger.warning(f"stack of {KEY}", stack_info=True)
    finally:
        logger.removeHandler(handler)
        config.run()
    shown = stream.getvalue()
    assert "failed to parse headers" in shown and "Traceback" in shown and "ValueError" in shown
    assert "\x1b" not in shown and "\\x1b" in shown  # made inert
    assert leaks("log", shown) == [], shown[-2000:]
    assert logging.getLogRecordFactory() is before
    assert sys.exc_info() == (None, None, None)


def test_text_without_secrets_and_the_wrong_key_are_left_alone(redactor: Redactor) -> None:
    for text in (
        f"Bearer {WRONG_KEY}",
        json.dumps({"id": "msg_abc123def456ghi789jkl0", "v": "sk-proj-", "u": "%41%42 \\u0041 \\/"}),
        KEY[: MIN_FRAGMENT - 1],
        "",
    ):
        assert redactor.text(text) == text


def test_a_short_secret_is_matched_exactly_only() -> None:
    short = Redactor.build(api_key="k3y-s3cr3t", secret_headers=("authorization",))
    assert short.text("a k3y-s3cr3t b") == f"a {REDACTED} b"
    assert short.text("a k3y-s3cr3 b") == "a k3y-s3cr3 b"


def test_credentials_in_the_base_url_are_secrets_too_in_basic_form() -> None:
    userinfo = Redactor.build(api_key=None, base_url="http://vendor:hunter2-pass@127.0.0.1:9/v1")
    basic = "Basic " + base64.b64encode(b"vendor:hunter2-pass").decode()
    shown = userinfo.text(f"{basic} and hunter2-pass")
    assert shown.endswith(f" and {REDACTED}") and REDACTED in shown.split()[1]
    # what is left of the base64 is the user name and the group the password shares with it
    assert not any(basic[i : i + 8] in shown for i in range(16, len(basic) - 8))


def test_a_secret_header_in_basic_form_hides_its_user_and_password_too() -> None:
    basic = Redactor.build(
        api_key=None,
        headers=(("Proxy-Authorization", "Basic " + base64.b64encode(b"vendor:pa55word").decode()),),
        secret_headers=("proxy-authorization",),
    )
    assert basic.text("denied: vendor / pa55word") == f"denied: vendor / {REDACTED}"


def test_a_repetitive_secret_is_still_found_everywhere() -> None:
    dull = Redactor.build(api_key="a" * 40 + "Z")
    shown = dull.text("b" + "a" * 5000 + "b")
    assert REDACTED in shown and "a" * MIN_FRAGMENT not in shown and len(shown) < 30


def test_redaction_happens_before_the_cut(redactor: Redactor) -> None:
    text = "x" * (100 - 20) + KEY + "tail"
    assert redactor.clip(text, 100) == "x" * 80 + REDACTED + "tail"[: 100 - 80 - len(REDACTED)]
    transport = Transport(base_url="http://127.0.0.1:9/v1", api_key=KEY)
    body = ("p" * (BODY_CAP - 40) + KEY).encode()
    request = requests.Request("POST", "http://127.0.0.1:9/v1/x", data=body).prepare()
    exchange = transport.evidence(request)
    assert exchange.request_body is not None and leaks("body", exchange.request_body) == []
    assert exchange.request_body.endswith("p" + REDACTED)  # the whole key, though half of it lay past the cut


def test_request_headers_show_secrets_as_variables_and_wrong_keys_as_sent(redactor: Redactor) -> None:
    shown = dict(
        redactor.request_headers(
            {"Authorization": f"Bearer {KEY}", "X-Secret": SECRET, "X-Other": f"Bearer {WRONG_KEY}", "X-Plain": "p"}
        )
    )
    assert shown == {
        "Authorization": "Bearer $MODMSG_API_KEY",
        "X-Secret": "$MODMSG_SECRET_X_SECRET",
        "X-Other": f"Bearer {WRONG_KEY}",
        "X-Plain": "p",
    }
    response = dict(redactor.headers({"X-Secret": "anything", "X-Echo": KEY[:40], "Authorization": "Bearer z"}))
    assert response == {"X-Secret": REDACTED, "X-Echo": REDACTED, "Authorization": REDACTED}


def test_the_api_key_variable_is_the_one_the_key_came_from() -> None:
    settings = resolve({"base_url": "http://127.0.0.1:9/v1", "api_key_env": "VENDOR_KEY"}, env={"VENDOR_KEY": KEY})
    assert Redactor.from_settings(settings).variables[0][0] == "VENDOR_KEY"
    assert Redactor.from_settings(settings).reference(f"Bearer {KEY}") == "Bearer $VENDOR_KEY"


def test_the_curl_runs_as_pasted_and_never_shows_the_value(redactor: Redactor) -> None:
    awkward = 'a "quoted" $HOME `id` back\\slash'
    headers = {
        "Authorization": f"Bearer {KEY}",
        "X-Secret": SECRET,
        "X-Awkward": awkward,
        "X-Bang": "hi!",
        "X-Mixed": f"hi! {KEY}x {awkward}",
    }
    exchange = Exchange(
        method="POST",
        url="http://127.0.0.1:9/v1/threads/t/messages/m?q=$HOME",
        request_headers=redactor.request_headers(headers),
        request_body='{"metadata": {"k": "$HOME \'x\'"}}',
        status=None,
        variables=tuple(v for v, _ in redactor.variables),
    )
    curl = exchange.curl()
    assert KEY not in curl and SECRET not in curl and '-H "Authorization: Bearer $MODMSG_API_KEY"' in curl
    for shell in ("sh", "bash"):
        done = subprocess.run(
            [shell, "-c", f'curl() {{ printf "%s\\n" "$@"; }}\n{curl}'],
            env={"MODMSG_API_KEY": KEY, "MODMSG_SECRET_X_SECRET": SECRET, "HOME": "/nowhere", "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            check=True,
        )
        argv = done.stdout.splitlines()
        assert f"Authorization: Bearer {KEY}" in argv and f"X-Secret: {SECRET}" in argv, argv
        assert f"X-Awkward: {awkward}" in argv and "X-Bang: hi!" in argv, argv
        assert f"X-Mixed: hi! {KEY}x {awkward}" in argv, argv
        assert "http://127.0.0.1:9/v1/threads/t/messages/m?q=$HOME" in argv
        assert '{"metadata": {"k": "$HOME \'x\'"}}' in argv


def test_objects_that_hold_a_secret_never_show_it_in_a_repr(redactor: Redactor) -> None:
    settings = default_settings(
        base_url="http://127.0.0.1:9/v1",
        api_key=KEY,
        headers=(("X-Secret", SECRET), ("X-Plain", "p")),
        secret_headers=("authorization", "x-secret"),
    )
    transport = Transport(base_url="http://127.0.0.1:9/v1", api_key=KEY, headers=(("X-Secret", SECRET),))
    for thing in (settings, transport, redactor, Redactor.from_settings(settings)):
        text = repr(thing)
        assert KEY[:MIN_FRAGMENT] not in text and SECRET not in text, text
    assert "X-Plain" in repr(settings) and "'p'" in repr(settings)


def test_the_recording_and_the_ledger_redact_every_field(tmp_path: Path, redactor: Redactor) -> None:
    class Answer:
        status_code = 200
        headers = {"content-type": "application/json"}

        def json(self) -> dict[str, str]:
            return {"id": f"msg_{KEY}"}

    log = RequestLog(tmp_path / "rec.jsonl", redactor)
    request = requests.Request("GET", f"http://127.0.0.1:9/v1/threads/thread_{KEY}").prepare()
    request.body = b"\xff" + KEY.encode()
    log.write(request, Answer(), 0.1, error=f"502 Bad Gateway {KEY[:40]}")  # type: ignore[arg-type]
    log.close()
    ledger = Ledger(tmp_path / "ledger.jsonl", redact=redactor.text)
    ledger.append([Entry("created", "run", f"thread_{KEY}", "http://127.0.0.1:9/v1")])
    for path in (tmp_path / "rec.jsonl", tmp_path / "ledger.jsonl"):
        text = path.read_text(encoding="utf-8")
        body = json.loads(text.splitlines()[0]).get("body_b64")
        text += base64.b64decode(body).decode("utf-8", "replace") if body else ""
        assert leaks(path.name, text) == [] and REDACTED in text, text


def test_inert_shows_every_terminal_control_escaped() -> None:
    assert inert("a\tb\nc") == "a\tb\nc"
    assert inert(CONTROLS) == (
        "\\x1b[2J\\x1b]8;;http://evil.example/\\x07click\\x1b]8;;\\x07\\x0d\\x00\\u202e\\u2066\\u200f\\x9b"
    )
    assert inert("\u061c\u200e\u202a\u2069\ud800\x7f") == "\\u061c\\u200e\\u202a\\u2069\\ud800\\x7f"
