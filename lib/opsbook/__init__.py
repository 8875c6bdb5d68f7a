"""opsbook: runbook notebooks for a kops-on-AWS Kubernetes cluster."""

from opsbook.errors import BadInput, OpsbookError

__all__ = ["BadInput", "OpsbookError", "__version__"]
__version__ = "0.1.0"
