"""The reference server under fuzz and load: the code behind ``tests/test_soak.py`` (CI size) and ``make soak``.

* :func:`fuzz`: Schemathesis-generated requests over *every* operation of the vendored fragment (createThread,
  getThread, modifyThread, deleteThread, listMessages, createMessage, getMessage, modifyMessage,
  deleteMessage), in both generation modes (positive and negative), split evenly. Every other case is pinned to
  a live thread/message (so bodies reach the handlers, not only the 404 path), and most carry valid credentials
  (so they pass the gate). The verdict: not a single 5xx and not a single failed request.
* :func:`load`: N concurrent clients modify one message for S seconds, each writing only its own metadata key
  and reading it back; a value that goes missing or backwards is a lost update. Also: every answer 200.

``python -m proving.soak`` runs both at full size (10,000 generated requests, 16 clients for 30 s) against a
freshly started reference server and exits 1 on any finding.
"""

from __future__ import annotations

import argparse
import logging
import math
import secrets
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from typing import Any

import requests

BETA = ("OpenAI-Beta", "assistants=v2")
REQUEST_TIMEOUT = 10.0
MAX_FINDINGS = 20
MODES = ("positive", "negative")


# --------------------------------------------------------------------------------------------------- fuzz


@dataclass(frozen=True)
class FuzzReport:
    requests: int
    per_operation: tuple[tuple[str, int], ...]
    statuses: tuple[tuple[int, int], ...]
    server_errors: tuple[str, ...]
    failures: tuple[str, ...]
    """Requests that got no answer at all (refused, reset, timeout)."""
    server_error_count: int = 0

    @property
    def ok(self) -> bool:
        return self.server_error_count == 0 and not self.failures

    def summary(self) -> str:
        statuses = ", ".join(f"{status}: {count}" for status, count in self.statuses)
        return (
            f"fuzz: {self.requests} generated requests over {len(self.per_operation)} operation/mode pairs; "
            f"{self.server_error_count} 5xx, {len(self.failures)} without an answer (statuses {statuses})"
        )


@dataclass(frozen=True)
class _Share:
    operation: str  # "METHOD /path"
    mode: str
    count: int


def _operations() -> list[Any]:
    import schemathesis

    from modmsg.spec import load_overlaid

    config = schemathesis.Config.from_dict({"generation": {"database": "none"}})
    schema = schemathesis.openapi.from_dict(load_overlaid(), config=config)
    return [result.ok() for result in schema.get_all_operations()]


def operation_labels() -> list[str]:
    return [operation.label for operation in _operations()]


@dataclass
class _Live:
    """A thread and a message of the fuzzer's own, re-created after a generated case deletes them."""

    session: requests.Session
    base_url: str
    headers: dict[str, str]
    thread_id: str = ""
    message_id: str = ""
    setup_answers: list[requests.Response] = field(default_factory=list)
    """Answers to the set-up calls (a 5xx there counts too)."""

    def ids(self) -> dict[str, str]:
        """The live ids, or {} when the target would not create them (the case then keeps its generated ids)."""
        if not self.thread_id or not self.message_id:
            self.forget()
            thread = self._post("threads", {})
            if thread is None:
                return {}
            message = self._post(f"threads/{thread}/messages", {"role": "user", "content": "soak"})
            if message is None:
                return {}
            self.thread_id, self.message_id = thread, message
        return {"thread_id": self.thread_id, "message_id": self.message_id}

    def _post(self, path: str, body: dict[str, Any]) -> str | None:
        try:
            response = self.session.post(f"{self.base_url}/{path}", json=body, headers=self.headers, timeout=10)
        except requests.RequestException:
            return None  # the generated request that follows will show the same trouble
        self.setup_answers.append(response)
        try:
            created = response.json().get("id") if response.status_code == 200 else None
        except (ValueError, AttributeError):
            created = None
        return created if isinstance(created, str) else None

    def forget(self) -> None:
        self.thread_id = self.message_id = ""


def _fuzz_shares(base_url: str, api_key: str, shares: Sequence[_Share], seed: int) -> dict[str, Any]:
    """One worker: run its shares; return plain counters (picklable across processes). Hypothesis keeps its caches
    in a private home meanwhile, as in a run: a worker process is no pytest session, and they went to the working
    directory's .hypothesis (``make test`` left one in the clone)."""
    from modmsg.plugin.home import use_private_home

    undo = use_private_home()
    try:
        return _fuzz_here(base_url, api_key, shares, seed)
    finally:
        undo()


def _fuzz_here(base_url: str, api_key: str, shares: Sequence[_Share], seed: int) -> dict[str, Any]:
    import hypothesis
    from hypothesis import HealthCheck, Phase
    from schemathesis import GenerationMode

    operations = {operation.label: operation for operation in _operations()}
    auth = {"Authorization": f"Bearer {api_key}", BETA[0]: BETA[1]}
    session = requests.Session()
    live = _Live(session, base_url.rstrip("/"), auth)
    per_operation: Counter[str] = Counter()
    statuses: Counter[int] = Counter()
    server_errors: list[str] = []
    failures: list[str] = []
    sequence = 0

    def send(label: str, case: Any) -> None:
        """``label``: "METHOD /path [mode]"."""
        nonlocal sequence
        sequence += 1
        path_ids = {k: v for k, v in (case.path_parameters or {}).items()}
        pinned = sequence % 2 == 0 and path_ids
        if pinned:
            case.path_parameters = {**path_ids, **{k: v for k, v in live.ids().items() if k in path_ids}}
        try:
            kwargs = case.as_transport_kwargs(base_url=base_url)
        except (ValueError, TypeError, UnicodeError):
            return  # a case the client library cannot even express is not a request
        headers = dict(kwargs.get("headers") or {})
        if sequence % 5:  # most cases past the gate; every fifth keeps whatever credentials were generated
            headers.update(auth)
        kwargs["headers"] = headers
        try:
            response = session.request(**kwargs, timeout=REQUEST_TIMEOUT, allow_redirects=False)
        except (requests.exceptions.InvalidHeader, requests.exceptions.InvalidURL, ValueError, UnicodeError):
            return  # refused by the client before sending
        except requests.RequestException as exc:
            failures.append(f"{label}: {type(exc).__name__}")
            session.close()
            return
        per_operation[label] += 1
        statuses[response.status_code] += 1
        if response.status_code >= 500:
            server_errors.append(
                f"{kwargs['method']} {kwargs['url']} -> {response.status_code}: {response.text[:200]!r}"
                f" (body {str(kwargs.get('json', kwargs.get('data')))[:200]!r})"
            )
        if pinned and kwargs["method"].upper() == "DELETE" and response.status_code == 200:
            live.forget()
        for answer in live.setup_answers:
            if answer.status_code >= 500:
                server_errors.append(f"set-up POST {answer.url} -> {answer.status_code}: {answer.text[:200]!r}")
        live.setup_answers.clear()

    def run(strategy: Any, label: str, examples: int, seed_: int) -> None:
        @hypothesis.seed(seed_)
        @hypothesis.settings(
            max_examples=examples,
            database=None,
            deadline=None,
            phases=(Phase.generate,),
            suppress_health_check=list(HealthCheck),
            verbosity=hypothesis.Verbosity.quiet,
            print_blob=False,
        )
        @hypothesis.given(case=strategy)
        def generated(case: Any) -> None:
            send(label, case)

        generated()

    for index, share in enumerate(shares):
        strategy = operations[share.operation].as_strategy(generation_mode=GenerationMode(share.mode))
        label = f"{share.operation} [{share.mode}]"
        for round_ in range(3):  # a small search space can run dry before the quota: go on with fresh seeds
            missing = share.count - per_operation[label]
            if missing <= 0:
                break
            run(strategy, label, missing, seed + 7919 * index + round_)
    return {
        "per_operation": dict(per_operation),
        "statuses": dict(statuses),
        "server_errors": server_errors,
        "failures": failures,
    }


def fuzz(base_url: str, api_key: str, cases: int, *, seed: int | None = None, workers: int = 1) -> FuzzReport:
    """At least ``cases`` generated requests, split evenly over every operation and both generation modes."""
    labels = operation_labels()
    pairs = [(label, mode) for label in labels for mode in MODES]
    per_pair = math.ceil(cases / len(pairs))
    workers = max(1, workers)
    seed = secrets.randbelow(2**31) if seed is None else seed
    plans: list[list[_Share]] = [[] for _ in range(workers)]
    for label, mode in pairs:  # every worker takes a slice of every pair: balanced whatever the pair's cost
        for worker in range(workers):
            count = per_pair // workers + (1 if worker < per_pair % workers else 0)
            if count:
                plans[worker].append(_Share(label, mode, count))
    if workers == 1:
        results = [_fuzz_shares(base_url, api_key, plans[0], seed)]
    else:
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
            futures = [
                pool.submit(_fuzz_shares, base_url, api_key, plan, seed + 104_729 * n) for n, plan in enumerate(plans)
            ]
            results = [future.result() for future in futures]
    per_operation: Counter[str] = Counter()
    statuses: Counter[int] = Counter()
    server_errors: list[str] = []
    failures: list[str] = []
    for result in results:
        per_operation.update(result["per_operation"])
        statuses.update(result["statuses"])
        server_errors += result["server_errors"]
        failures += result["failures"]
    return FuzzReport(
        requests=sum(per_operation.values()),
        per_operation=tuple(sorted(per_operation.items())),
        statuses=tuple(sorted(statuses.items())),
        server_errors=tuple(server_errors[:MAX_FINDINGS]),
        failures=tuple(failures[:MAX_FINDINGS]),
        server_error_count=len(server_errors),
    )


# --------------------------------------------------------------------------------------------------- load


@dataclass(frozen=True)
class LoadReport:
    clients: int
    seconds: float
    requests: int
    modifies: int
    errors: tuple[str, ...]
    lost_updates: tuple[str, ...]
    error_count: int = 0
    lost_update_count: int = 0

    @property
    def ok(self) -> bool:
        return self.error_count == 0 and self.lost_update_count == 0 and self.modifies > 0

    def summary(self) -> str:
        return (
            f"load: {self.clients} clients for {self.seconds:g} s: {self.requests} requests ({self.modifies} "
            f"modifies), {self.error_count} errors, {self.lost_update_count} lost updates"
        )


@dataclass
class _Tally:
    """Shared by the client threads; only touched under ``lock``."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    requests: int = 0
    modifies: int = 0
    errors: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    last_written: dict[str, int] = field(default_factory=dict)

    def add(self, key: str, written: int, sent: int, modifies: int, errors: list[str], lost: list[str]) -> None:
        with self.lock:
            self.last_written[key] = written
            self.requests += sent
            self.modifies += modifies
            self.errors.extend(errors)
            self.lost.extend(lost)


def _metadata(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    metadata = body.get("metadata") if isinstance(body, dict) else None
    return metadata if isinstance(metadata, dict) else {}


def load(base_url: str, api_key: str, *, clients: int = 16, seconds: float = 30.0) -> LoadReport:
    """``clients`` threads modify one message for ``seconds``; each owns one metadata key (16 keys: the limit)."""
    if not 1 <= clients <= 16:
        raise ValueError("between 1 and 16 clients: each owns one of the message's 16 metadata keys")
    base = base_url.rstrip("/")
    headers = {"Authorization": f"Bearer {api_key}", BETA[0]: BETA[1]}
    with requests.Session() as setup:
        thread_id = setup.post(f"{base}/threads", json={}, headers=headers, timeout=REQUEST_TIMEOUT).json()["id"]
        message_id = setup.post(
            f"{base}/threads/{thread_id}/messages",
            json={"role": "user", "content": "load"},
            headers=headers,
            timeout=REQUEST_TIMEOUT,
        ).json()["id"]
    url = f"{base}/threads/{thread_id}/messages/{message_id}"
    tally = _Tally()
    deadline: list[float] = []  # set once, by the barrier, when every client is ready
    start = threading.Barrier(clients, action=lambda: deadline.append(time.monotonic() + seconds))

    def client(index: int) -> None:
        key = f"client-{index:02d}"
        errors: list[str] = []
        lost: list[str] = []
        sent = modifies = written = 0
        with requests.Session() as session:
            start.wait(timeout=30)
            while time.monotonic() < deadline[0] and len(errors) < MAX_FINDINGS:
                value = written + 1
                try:
                    response = session.post(url, json={"metadata": {key: str(value)}}, headers=headers, timeout=10)
                    sent += 1
                    if response.status_code != 200:
                        errors.append(f"{key}: modify answered {response.status_code}: {response.text[:200]!r}")
                        continue
                    modifies += 1
                    written = value
                    if _metadata(response).get(key) != str(value):
                        lost.append(f"{key}: modify response shows {_metadata(response).get(key)!r}, sent {value}")
                    read = session.get(url, headers=headers, timeout=10)
                    sent += 1
                    if read.status_code != 200:
                        errors.append(f"{key}: get answered {read.status_code}")
                    elif _metadata(read).get(key) != str(value):
                        lost.append(f"{key}: wrote {value}, then read {_metadata(read).get(key)!r}")
                    if value % 10 == 0:
                        listing = session.get(f"{base}/threads/{thread_id}/messages", headers=headers, timeout=10)
                        sent += 1
                        if listing.status_code != 200:
                            errors.append(f"{key}: list answered {listing.status_code}")
                except requests.RequestException as exc:
                    errors.append(f"{key}: {type(exc).__name__}")
        tally.add(key, written, sent, modifies, errors, lost)

    workers = [threading.Thread(target=client, args=(i,), name=f"modmsg-soak-{i}") for i in range(clients)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(seconds + 60)
    errors = list(tally.errors)
    lost = list(tally.lost)
    if any(worker.is_alive() for worker in workers):
        errors.append("a client did not finish within its time bound")
    with requests.Session() as check:
        final = _metadata(check.get(url, headers=headers, timeout=REQUEST_TIMEOUT))
        check.delete(f"{base}/threads/{thread_id}", headers=headers, timeout=REQUEST_TIMEOUT)
    for key, value in sorted(tally.last_written.items()):
        if value and final.get(key) != str(value):
            lost.append(f"{key}: last wrote {value}, finally stored {final.get(key)!r}")
    return LoadReport(
        clients=clients,
        seconds=seconds,
        requests=tally.requests,
        modifies=tally.modifies,
        errors=tuple(errors[:MAX_FINDINGS]),
        lost_updates=tuple(lost[:MAX_FINDINGS]),
        error_count=len(errors),
        lost_update_count=len(lost),
    )


# ---------------------------------------------------------------------------------------------------- CLI


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m proving.soak", description="The reference server under Schemathesis fuzz and concurrent load."
    )
    parser.add_argument("--cases", type=int, default=10_000, help="generated requests, at least (default 10000)")
    parser.add_argument("--clients", type=int, default=16, help="concurrent load clients (default 16)")
    parser.add_argument("--seconds", type=float, default=30.0, help="load duration (default 30)")
    parser.add_argument("--workers", type=int, default=2, help="fuzz worker processes (default 2)")
    parser.add_argument("--seed", type=int, default=None, help="fuzz seed (default: random, printed)")
    args = parser.parse_args(argv)

    from modmsg.reference import start_server

    # uvicorn warns once per malformed request; negative-mode cases send thousands on purpose
    logging.getLogger("uvicorn.error").setLevel(logging.ERROR)
    seed = secrets.randbelow(2**31) if args.seed is None else args.seed
    api_key = f"sk-modmsg-soak-{secrets.token_hex(8)}"
    with start_server(api_key) as server:
        print(f"fuzzing {server.base_url} with {args.cases} cases (seed {seed}) ...", flush=True)
        fuzzed = fuzz(server.base_url, api_key, args.cases, seed=seed, workers=args.workers)
        print(fuzzed.summary(), flush=True)
        for line in fuzzed.server_errors + fuzzed.failures:
            print(f"  {line}")
        loaded = load(server.base_url, api_key, clients=args.clients, seconds=args.seconds)
        print(loaded.summary(), flush=True)
        for line in loaded.errors + loaded.lost_updates:
            print(f"  {line}")
    good = fuzzed.ok and fuzzed.requests >= args.cases and loaded.ok
    print("soak: OK" if good else "soak: FAILED")
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
