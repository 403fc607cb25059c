"""The suite's data inside an installed wheel: ``spec/``, ``suites/`` and ``docs/results.schema.json`` of the repo,
mapped here by ``[tool.setuptools.package-dir]`` in pyproject.toml. Empty in a checkout (``modmsg.paths`` then
reads the repo's own directories)."""
