"""The tools that prove the suite, beside the product: the mutation score (``proving.mutation``), the soak test
(``proving.soak``), the loopback fault proxy (``proving.faultproxy``) and the document generators
(``proving.docs``). They run from a checkout (``make mutation``, ``make soak``, ``make docs``, the project's own
tests) and never ship in the wheel."""
