"""Keep the written procedures in runbooks/ honest: every ``opsbook`` command in them must still work.

Each fenced code block line that starts with ``opsbook run``, ``opsbook drill`` or
``opsbook describe`` is parsed as the CLI would: the runbook must exist and every
``-p NAME=VALUE`` must be a declared parameter with a valid value.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from opsbook.engine.catalog import find_runbook
from opsbook.engine.params import parse_parameters
from opsbook.errors import BadInput

FENCE = re.compile(r"```[a-z]*\n(.*?)```", re.S)


@dataclass(frozen=True)
class Command:
    """One ``opsbook`` command found in a procedure."""

    file: str
    line: int
    text: str


def commands(directory: Path) -> list[Command]:
    """Every ``opsbook ...`` command inside fenced code blocks of ``directory/*.md``."""
    found = []
    for md in sorted(directory.glob("*.md")):
        text = md.read_text()
        for block in FENCE.finditer(text):
            start_line = text[: block.start()].count("\n") + 2
            for i, line in enumerate(block.group(1).splitlines()):
                stripped = line.strip().removeprefix("$ ")
                if stripped.startswith("opsbook "):
                    found.append(Command(md.name, start_line + i, stripped.split(" #")[0].strip()))
    return found


def check(cmd: Command, notebooks: Path | None = None, drills: Collection[str] | None = None) -> str | None:
    """Return a problem description, or None if the command is valid.

    Args:
        cmd: the command.
        notebooks: where the runbooks are (default: the tracked ones).
        drills: the drill names ``opsbook drill`` knows (``opsbook.sandbox.drills.DRILLS``); None: not checked.
    """
    try:
        argv = shlex.split(cmd.text)[1:]
    except ValueError as e:
        return f"{cmd.file}:{cmd.line}: cannot parse `{cmd.text}`: {e}"
    if not argv:
        return f"{cmd.file}:{cmd.line}: bare `opsbook`"
    verb = argv[0]
    try:
        if verb in ("run", "describe", "schedule"):
            args = argv[2:] if verb == "schedule" else argv[1:]
            if not args:
                return f"{cmd.file}:{cmd.line}: `{cmd.text}` names no runbook"
            rb = find_runbook(args[0], notebooks)
            raw: dict[str, str] = {}
            it = iter(args[1:])
            for a in it:
                if a in ("-p", "--param"):
                    pair = next(it, "")
                    if "=" not in pair:
                        return f"{cmd.file}:{cmd.line}: `-p {pair}` is not NAME=VALUE"
                    k, v = pair.split("=", 1)
                    raw[k] = v
            parse_parameters(rb.parameters, raw, rb.name)
        elif verb == "drill":
            names = [a for a in argv[1:] if not a.startswith("-")]
            if names and drills is not None and names[0] not in drills:
                return f"{cmd.file}:{cmd.line}: no drill called {names[0]!r}"
    except BadInput as e:
        return f"{cmd.file}:{cmd.line}: `{cmd.text}`: {e}"
    return None


def check_all(
    directory: Path, notebooks: Path | None = None, drills: Collection[str] | None = None
) -> tuple[int, list[str]]:
    """Check every command (as :func:`check`); return how many were checked and the problems found."""
    cmds = commands(directory)
    problems = [p for c in cmds if (p := check(c, notebooks, drills))]
    return len(cmds), problems
