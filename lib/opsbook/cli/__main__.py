"""``python -m opsbook.cli``: the same as the ``opsbook`` console script."""

from opsbook.cli.main import main

main()
