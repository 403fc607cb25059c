"""SEQ: generated sequences of the sibling calls, judged after every step against a model of the target.

Hypothesis draws ``--max-sequences`` sequences of at most ``--max-steps`` steps (createThread, createMessage,
modifyMessage with metadata from a small alphabet, invalid modifies, modifies of unknown, foreign and deleted
messages, getMessage, listMessages with every page, deleteMessage, deleteThread), replayable with ``--seed``;
each step is addressed through the overlay's OpenAPI links and sent through the run's transport, and after it
the answer and every read path it can affect are compared with the model (``modmsg.sequences``). The sequences
are drawn once per run, in lanes of their own threads, ``--concurrency`` lanes at once; each requirement's test
reports the first sequence that failed it (the first failing lane's, in lane order: as at ``--concurrency 1``),
shrunk by Hypothesis to a minimal list of steps, each with its exchange and a curl.
"""

from __future__ import annotations

import shlex
from typing import Any

import pytest

from modmsg.config import Settings
from modmsg.profiles import Profile
from modmsg.sequences.judge import SEQ_REQS
from modmsg.sequences.run import SequenceRun, Sequences
from modmsg.target import Target
from modmsg.transport import Transport

ON_SEQUENCES = pytest.mark.xdist_group("modmsg-sequences")


def replay(settings: Settings) -> str:
    target = ("--base-url", settings.base_url) if settings.base_url else ()
    options = ("--profile", settings.profile, "--max-sequences", str(settings.max_sequences))
    options += ("--max-steps", str(settings.max_steps), "--seed", str(settings.seed))
    command = shlex.join(("pytest", "suites", "--req", "MM-SEQ", *target, *options))
    return command if settings.base_url else f"{command} (bundled reference server)"


@pytest.fixture(scope="module")
def sequences(
    request: pytest.FixtureRequest,
    settings: Settings,
    profile: Profile,
    target: Target,
    transport: Transport,
    threads: Any,
) -> Sequences:
    """The run's sequences, judged for every MM-SEQ requirement a selected test asks for."""
    selected = frozenset(
        str(req)
        for item in request.session.items
        if "sequences" in getattr(item, "fixturenames", ())
        for mark in item.iter_markers("req")
        for req in mark.args
        if req in SEQ_REQS
    )
    return Sequences(
        lambda: SequenceRun(
            transport=transport,
            base_url=target.base_url,
            create_thread=threads.create,
            profile=profile,
            seed=settings.seed,  # always set: the plugin draws one per run when --seed is not given
            max_sequences=settings.max_sequences,
            max_steps=settings.max_steps,
            replay=replay(settings),
            reqs=selected,
            concurrency=settings.concurrency,
        )
    )


def verdict(request: pytest.FixtureRequest, settings: Settings, sequences: Sequences, req: str) -> None:
    if settings.max_sequences == 0:
        pytest.skip("--max-sequences 0: no sequences drawn")
    run = sequences.drawn()
    stats = f"lanes={run.lanes} rounds={run.rounds} sent={run.sent} seed={run.seed}"
    request.node.user_properties.append(("sequences", stats))
    run.verdict(req, run.transport.recorder.add)  # the test's recorder while it runs: its evidence


@pytest.mark.req("MM-SEQ-01")
@ON_SEQUENCES
def test_every_read_after_a_sequence_agrees_with_the_model(request, settings, sequences):
    verdict(request, settings, sequences, "MM-SEQ-01")


@pytest.mark.req("MM-SEQ-02")
@ON_SEQUENCES
def test_a_rejected_step_changes_nothing_anywhere(request, settings, sequences):
    verdict(request, settings, sequences, "MM-SEQ-02")


@pytest.mark.req("MM-SEQ-03")
@ON_SEQUENCES
def test_deleted_objects_stay_deleted_on_every_path(request, settings, sequences):
    verdict(request, settings, sequences, "MM-SEQ-03")


@pytest.mark.req("MM-SEQ-04")
@ON_SEQUENCES
def test_listing_order_and_cursors_are_stable_under_modifies(request, settings, sequences):
    verdict(request, settings, sequences, "MM-SEQ-04")
