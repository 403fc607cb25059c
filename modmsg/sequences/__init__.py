"""Generated sequences of the sibling calls, judged against a model (requirement area MM-SEQ).

One job per module, imports going one way: ``model`` (what the target must hold), ``links`` (the operations and
the overlay's OpenAPI links as Schemathesis resolves them), ``judge`` (answers and read paths against the model,
as typed failures), ``machine`` (Schemathesis' state machine subclassed with the rules that keep the model) and
``run`` (``SequenceRun``: the rounds, the shrink budget, one finding per requirement).
"""
