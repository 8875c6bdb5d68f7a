"""opsbook: runbook notebooks for a kops-on-AWS Kubernetes cluster."""

import sys

from opsbook.errors import BadInput, OpsbookError

__all__ = ["BadInput", "OpsbookError", "__version__"]
__version__ = "0.1.0"

if "IPython" in sys.modules:  # in a kernel: tables without index, times in UTC (opsbook.display)
    from opsbook.display import install as _install_display

    _install_display()
