"""Plotting: every function returns a ``matplotlib.figure.Figure`` (no pyplot state, no global backend).

Importing this package registers a PNG formatter for Figure objects in IPython, so
a notebook cell whose value is a Figure shows the picture (in JupyterLab and in
the HTML report) without ``%matplotlib inline`` or pyplot.
"""

from __future__ import annotations

import io
from typing import Any

from matplotlib.figure import Figure


def figure_png(fig: Figure, dpi: int = 110) -> bytes:
    """Render a Figure to PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()


def register_ipython_formatter() -> bool:
    """Show Figures as PNG in IPython/Jupyter; return whether a shell was found."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover
        return False
    shell: Any = get_ipython()
    if shell is None:
        return False
    shell.display_formatter.formatters["image/png"].for_type(Figure, figure_png)
    return True


register_ipython_formatter()
