"""Discover runbook notebooks and their declared parameters (papermill's inspection)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from opsbook.engine.params import Parameter, parameter_from_inspection
from opsbook.errors import BadInput

if TYPE_CHECKING:
    import nbformat


def notebooks_dir() -> Path:
    """Where runbook notebooks live: ``$OPSBOOK_NOTEBOOKS`` or ``notebooks/`` of this checkout."""
    env = os.environ.get("OPSBOOK_NOTEBOOKS")
    if env:
        return Path(env)
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "notebooks").is_dir() and (parent / "pyproject.toml").exists():
            return parent / "notebooks"
    return Path.cwd() / "notebooks"


@dataclass(frozen=True)
class Runbook:
    """One runbook notebook: name, purpose, whether it can change things, its parameters."""

    name: str
    path: Path
    purpose: str
    mutates: bool
    parameters: tuple[Parameter, ...]
    description: str
    needs: tuple[str, ...] = ()  # "kubernetes", "aws": checked before a kernel starts (engine.envcheck)
    precheck: str = ""  # "module:function" run with the parameters before the kernel starts

    def parameter(self, name: str) -> Parameter | None:
        """The declared parameter called ``name``."""
        return next((p for p in self.parameters if p.name == name), None)


def load_runbook(path: Path) -> Runbook:
    """Read one notebook's metadata and parameters cell."""
    import nbformat  # imported here: `opsbook run` starts its kernel before these load
    from papermill.inspection import inspect_notebook

    nb = nbformat.read(path, as_version=4)
    meta = nb.metadata.get("opsbook", {})
    first_md = next((c.source for c in nb.cells if c.cell_type == "markdown"), "")
    title_line = next((ln.lstrip("# ").strip() for ln in first_md.splitlines() if ln.strip()), path.stem)
    params = tuple(parameter_from_inspection(p) for p in inspect_notebook(str(path)).values())
    declared = _declared_names(nb)
    lost = [n for n in declared if n not in {p.name for p in params}]
    if lost:
        raise BadInput(
            f"notebook {path.name}: papermill cannot parse the parameter line(s) for {', '.join(lost)}. "
            "Write each as `name: type = literal  # help` on one line; the help text must not contain '='."
        )
    return Runbook(
        name=path.stem,
        path=path,
        purpose=str(meta.get("purpose") or title_line),
        mutates=bool(meta.get("mutates", False)),
        parameters=params,
        description=first_md,
        needs=tuple(str(n) for n in meta.get("needs", ())),
        precheck=str(meta.get("precheck") or ""),
    )


def _declared_names(nb: nbformat.NotebookNode) -> list[str]:
    cell = next((c for c in nb.cells if "parameters" in c.metadata.get("tags", [])), None)
    if cell is None:
        return []
    return [m.group(1) for ln in cell.source.splitlines() if (m := re.match(r"^([A-Za-z_]\w*)\s*[:=]", ln))]


def catalog(directory: Path | None = None) -> list[Runbook]:
    """Every runbook in ``directory`` (default :func:`notebooks_dir`), sorted by name."""
    d = directory or notebooks_dir()
    return [load_runbook(p) for p in sorted(d.glob("*.ipynb"))]


def find_runbook(name: str, directory: Path | None = None) -> Runbook:
    """The runbook called ``name`` (file stem, or a path to a notebook)."""
    p = Path(name)
    if p.suffix == ".ipynb" and p.exists():
        return load_runbook(p)
    d = directory or notebooks_dir()
    path = d / f"{name}.ipynb"
    if not path.exists():
        known = ", ".join(sorted(x.stem for x in d.glob("*.ipynb"))) or "none"
        raise BadInput(f"no runbook called {name!r} in {d}. Known runbooks: {known}. See `opsbook list`.")
    return load_runbook(path)
