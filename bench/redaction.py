"""``python -m bench.redaction``: what the redactor costs per exchange (it runs on every body the suite records).

A 164-character key and a 40-character secret header (the sizes of a real project key and a gateway token), and
bodies a target sends: a typical message object, 16 KiB (the evidence cap) of a message list, of prose, of text
full of JSON escapes, and of base64. Best of several rounds, in microseconds per ``Redactor.text`` call.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Callable

from modmsg.evidence import BODY_CAP
from modmsg.redaction import Redactor

ROUNDS = 7
CALLS = 50


def _best(call: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(ROUNDS):
        started = time.perf_counter()
        for _ in range(CALLS):
            call()
        best = min(best, (time.perf_counter() - started) / CALLS)
    return best * 1e6


def bodies() -> dict[str, str]:
    message = {
        "id": "msg_abc123def456ghi789jkl0",
        "object": "thread.message",
        "created_at": 1_700_000_000,
        "thread_id": "thread_abc123def456ghi789jkl0",
        "role": "user",
        "content": [{"type": "text", "text": {"value": "Hello there", "annotations": []}}],
        "metadata": {"k": "v", "run": "modmsg-0123456789ab"},
        "assistant_id": None,
        "run_id": None,
        "attachments": [],
    }
    listed = json.dumps({"object": "list", "data": [message] * 60})[:BODY_CAP]
    prose = json.dumps({"error": {"message": "lorem ipsum dolor sit amet, consectetur " * 500}})[:BODY_CAP]
    escaped = json.dumps({"metadata": {"k\u00e9y": "v\u00e4l\u00fce \u65e5\u672c " * 800}})[:BODY_CAP]
    encoded = base64.b64encode(secrets.token_bytes(BODY_CAP)).decode()[:BODY_CAP]
    return {
        "typical message": json.dumps(message),
        "16 KiB list": listed,
        "16 KiB prose": prose,
        "16 KiB JSON escapes": escaped,
        "16 KiB base64": encoded,
    }


def main() -> None:
    key = "sk-proj-" + secrets.token_urlsafe(120)[:156]
    redactor = Redactor.build(
        api_key=key, headers=(("X-Secret", "xs/" + secrets.token_urlsafe(30)[:37]),), secret_headers=("x-secret",)
    )
    print(f"{'body':<22}{'chars':>8}{'µs per call':>14}")
    for name, body in bodies().items():
        print(f"{name:<22}{len(body):>8}{_best(lambda body=body: redactor.text(body)):>14.1f}")


if __name__ == "__main__":
    main()
