"""`opsbook sandbox kops-validate`: real kops validate on the sandbox, beside opsbook's kops group.

On the CLI floor: it joins the sandbox (kops oracle) and analysis (opsbook's verdict).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from opsbook.analysis import validate
from opsbook.errors import SandboxError, ToolchainError
from opsbook.k8s.client import api_client
from opsbook.kops.toolchain import kops_path
from opsbook.runbooks import validate_cluster
from opsbook.sandbox import Sandbox
from opsbook.sandbox import kops_validate as kv


def compare(sb: Sandbox) -> tuple[kv.KopsRun, validate.Validation]:
    """Run kops and opsbook on the same sandbox (state published first); return both."""
    kops = kops_path()
    if not kops.exists():
        raise ToolchainError(f"kops is not built ({kops}): run `opsbook toolchain --kops` (it builds kops v1.33.1)")
    st = sb.state()
    assert st is not None
    store = kv.publish(sb, kops)
    theirs = kv.run(sb, kops)
    api = api_client(st.kubeconfig)
    try:
        src = validate_cluster.Sources(api=api, cluster=st.cluster_name, region=st.region, state_store=store)
        ours = validate.evaluate(validate_cluster.collect(src))
    finally:
        api.close()
    return theirs, ours


def kops_validate_command(name: str, with_opsbook: bool, emit: Callable[[str], Any]) -> int:
    """Print kops' JSON (and opsbook's kops group beside it); return kops' exit code."""
    sb = Sandbox(name)
    if not with_opsbook:
        kops = kops_path()
        if sb.state() is None:
            raise SandboxError(f"sandbox {name!r} is not up")
        kv.publish(sb, kops)
        r = kv.run(sb, kops)
        emit(json.dumps({"exit_code": r.exit_code, "failures": r.failures, "nodes": r.nodes}))
        return r.exit_code
    theirs, ours = compare(sb)
    emit(json.dumps({
        "kops": {"exit_code": theirs.exit_code, "seconds": theirs.seconds, "failures": theirs.failures,
                 "nodes": theirs.nodes},
        "opsbook": {"passed": ours.kops_passed, **ours.kops.as_json()},
        "same": theirs.passed == ours.kops_passed and theirs.keys() == ours.kops.keys(),
    }))
    return theirs.exit_code
