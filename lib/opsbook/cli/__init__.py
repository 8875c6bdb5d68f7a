"""The ``opsbook`` command line (the console script ``opsbook = "opsbook.cli:main"``; ``python -m opsbook.cli``).

Exit codes (documented in ``opsbook --help`` and README):
  0 success · 1 findings at/above --fail-on · 2 bad input · 3 execution error ·
  4 environment problem (sandbox/toolchain/cluster unreachable)

:mod:`opsbook.cli.main` holds the app and the commands that are not a group; ``events``
(:mod:`opsbook.cli.events`), ``reports`` (:mod:`opsbook.cli.reports`) and ``sandbox kops-validate``
(:mod:`opsbook.cli.kops`) are imported when they run.
"""

from opsbook.cli.main import EXIT_BAD_INPUT, EXIT_ENVIRONMENT, EXIT_EXECUTION, EXIT_FINDINGS, EXIT_OK, app, main

__all__ = ["EXIT_BAD_INPUT", "EXIT_ENVIRONMENT", "EXIT_EXECUTION", "EXIT_FINDINGS", "EXIT_OK", "app", "main"]
