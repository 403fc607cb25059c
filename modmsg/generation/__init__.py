"""Schemathesis glue for ``suites/test_generated.py`` (MM-GEN-01, MM-GEN-02, MM-GEN-03, MM-ERR-08), one job per module:

* ``builtin_checks``: the Schemathesis configuration, its built-in check table (``BUILTIN_CHECKS``: which check is
  on, off or tuned, for which requirement, and why), the schema narrowed to ``modifyMessage``, and the translation
  of Schemathesis findings into the suite's typed failures;
* ``cases``: the cases sent (``Sent``) and how the run's seed draws them;
* ``judges``: what each requirement demands of every case (``ALL_JUDGES``, ``STREAM_JUDGES``);
* ``streams``: one fuzzing stream per generation mode, drawn once per module, every case judged for every
  requirement of its mode (``Streams``);
* ``shrink``: a stream's failing case made smaller for its requirement within ``SHRINK_BUDGET`` (``shrink_finding``);
* ``run``: ``GeneratedRun``, the cases against a live message of the run;
* ``coverage``: the examples and coverage phases as a Hypothesis test built when it runs, not at collection.

Imports go one way, ``run`` → ``shrink`` → ``streams``/``judges`` → ``cases``/``builtin_checks``: a judge sees the
run through a protocol (``judges.Judging``), and so do a stream's cache and a shrink.
"""
