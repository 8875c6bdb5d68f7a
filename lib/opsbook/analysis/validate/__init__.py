"""Validate a cluster: ``kops validate cluster`` parity plus opsbook's own checks (beyond kops).

Every check turns a snapshot (:class:`opsbook.k8s.objects.Snapshot`) into
*evaluations*: one row per object it looked at, with an empty severity when the
object passed. Findings are the evaluations with a severity. The same frame
gives the score, so exclusions cannot distort it: an excluded row leaves the
numerator *and* the denominator, and is listed.

Two families of checks:

* **kops** (group ``kops``): exactly what kops v1.33.1 validates, rule for rule
  (:mod:`opsbook.analysis.kops_parity`); its failures are listed as kops lists them
  (``Validation.kops``: ``type, name, message, instanceGroup``; ``nodes``) and
  ``Validation.kops_passed`` is what kops would answer. Differential tests compare
  them with the real kops binary on the sandbox.
* **beyond kops** (every other group): opsbook's own checks and policies, which
  kops does not have: node pressure/cordon/burstable, workloads, config,
  certificates, and the policies ``max_unready_nodes`` (tolerate some NotReady
  workers kops would fail) and ``exclude`` (known noise). kops has neither flag.

Checks (id, group, severity):

===================================  =============  =========================================
``kops.instancegroup.size``          kops           high (critical for a control-plane group)
``kops.instancegroup.missing``       kops           high (critical for a control-plane group)
``kops.instance.joined``             kops           high (critical for a control-plane group)
``kops.node.ready``                  kops           high (critical for a control-plane node)
``kops.controlplane.components``     kops           critical
``kops.pod.system_critical``         kops           high
``kops.dns.apiserver``               kops           high
``nodes.pressure``                   nodes          high
``nodes.unschedulable``              nodes          low
``nodes.burstable``                  nodes          info (for the CPU-credit review)
``workloads.pending``                workloads      medium
``workloads.crashloop``              workloads      high
``workloads.image_pull``             workloads      high
``workloads.restarts``               workloads      medium
``workloads.oomkilled``              workloads      medium
``workloads.deployment_available``   workloads      medium (high when none is available)
``workloads.single_replica``         workloads      low
``workloads.pdb_blocks_drain``       workloads      medium
``config.resources``                 config         low
``config.image_tag``                 config         low
``config.service_endpoints``         config         medium
``certs.expiry``                     certificates   medium / high (≤7 d) / critical (expired)
``certs.apiserver``                  certificates   medium / high (≤7 d) / critical (expired)
===================================  =============  =========================================

opsbook's verdict (``passed``) holds when no kops failure is left after opsbook's
policies and no beyond-kops finding reaches ``fail_on``. :func:`validate_until`
repeats validation like kops' ``--wait``/``--count``/``--interval``.
"""


from opsbook.analysis.validate.catalog import (
    CHECKS,
    CONTROL_PLANE_COMPONENTS,
    CRITICAL_PRIORITY,
    EVAL_COLUMNS,
    EXCLUDE_KINDS,
    NEEDS,
    WAITING_IMAGE,
)
from opsbook.analysis.validate.config import (
    check_certs,
    check_image_tags,
    check_resources,
    check_service_endpoints,
    image_tag_problem,
)
from opsbook.analysis.validate.evaluate import evaluate, kops_verdict, notes_frame
from opsbook.analysis.validate.kops import kops_evaluations, tolerate_unready
from opsbook.analysis.validate.loop import ValidationRun, validate_findings, validate_until
from opsbook.analysis.validate.model import Inputs, Options, Validation
from opsbook.analysis.validate.nodes import (
    burstable,
    check_node_burstable,
    check_node_pressure,
    check_node_unschedulable,
)
from opsbook.analysis.validate.score import apply_exclude, parse_exclude, score
from opsbook.analysis.validate.workloads import (
    check_crashloop,
    check_deployments,
    check_image_pull,
    check_oomkilled,
    check_pdbs,
    check_pending,
    check_restarts,
    check_single_replica,
)

__all__ = [
    "CHECKS",
    "CONTROL_PLANE_COMPONENTS",
    "CRITICAL_PRIORITY",
    "EVAL_COLUMNS",
    "EXCLUDE_KINDS",
    "NEEDS",
    "WAITING_IMAGE",
    "Inputs",
    "Options",
    "Validation",
    "ValidationRun",
    "apply_exclude",
    "burstable",
    "check_certs",
    "check_crashloop",
    "check_deployments",
    "check_image_pull",
    "check_image_tags",
    "check_node_burstable",
    "check_node_pressure",
    "check_node_unschedulable",
    "check_oomkilled",
    "check_pdbs",
    "check_pending",
    "check_resources",
    "check_restarts",
    "check_service_endpoints",
    "check_single_replica",
    "evaluate",
    "image_tag_problem",
    "kops_evaluations",
    "kops_verdict",
    "notes_frame",
    "parse_exclude",
    "score",
    "tolerate_unready",
    "validate_findings",
    "validate_until",
]
