"""Generated sequences of the sibling calls, judged against a model (requirement area MM-SEQ).

One job per module, imports going one way: ``model`` (what the target must hold), ``links`` (the operations and
the overlay's OpenAPI links as Schemathesis resolves them), ``judge`` (answers and read paths against the model,
as typed failures), ``steps`` (what a step may send, a step as a failure lists it, the run's shared ``Context``),
``reads`` (the wire and the reads that judge a step), ``machine`` (Schemathesis' state machine subclassed with the
rules that keep the model) and ``run`` (``SequenceRun``: the rounds, the shrink budget, one finding per
requirement).
"""
