"""Outage detectors for the failure modes the team has lived through (pure: DataFrames in, findings out).

Each detector looks at the normalised events, the evidence rows (Kubernetes
state, AWS) and the metrics, and returns findings: a severity, the time the
cause began, the object, a message saying what happened and what to do, the
evidence to look at, and a score. :func:`run_detectors` ranks them with one rule
(:mod:`opsbook.analysis.outage.ranking`).

**The ranking rule** (likely cause, standing problem, noise; the order causes rank in) is written
once, in :mod:`opsbook.analysis.outage.ranking`.

Detectors:

- ``node.lost``: a node stopped heartbeating → NotReady → NoExecute taint → pods
  evicted → replacements, with the actual delays against the configured
  ``node-monitor-grace-period`` and toleration seconds. Pods are tied to the node
  by what outlives the window: the taint manager's ``TaintManagerEviction``
  "Marking for deletion Pod ns/name" events, the pods' ``spec.nodeName`` in the
  current state (an evicted pod stays ``Terminating`` on an unreachable node),
  ``Scheduled`` events from any time (archive). It reports the evicted pods and
  the workloads that lost capacity. Nodes that only flapped score low.
- ``zone.outage``: every node of one availability zone lost at once: one cause
  instead of N node losses (see :func:`opsbook.analysis.outage.merge.merge_zone_outage`).
- ``control-plane.restart``: the API server's process started in the window; the
  controller-manager/scheduler leader lease changed hands; control-plane pods restarted.
- ``cpu.credits``: CPUCreditBalance ≈ 0 with CPUUtilization flat at a baseline,
  scored higher when it precedes the growth of an extra metric (backlog, latency).
- ``consumer.stalled``: a queue's depth grows while its consumers' throughput is
  flat at zero, with no credit exhaustion to explain it.
- ``rollout.crashloop`` / ``rollout.unready``: pods crash-looping or never ready
  shortly after their ReplicaSet was rolled out, the rollout time taken from the
  Deployment's history (``ScalingReplicaSet`` events, the ReplicaSet reused by a
  rollback), not from the ReplicaSet's creation.
- ``certificate.expiry``: a certificate that expired inside the window (a cause), or
  long before it (standing), or x509 errors.
- ``asg.terminated``: an instance of the cluster was terminated (ASG activity or EC2
  state); merged into the ``node.lost`` of its node when both are seen (EC2 death).
"""


from opsbook.analysis.outage.asg import detect_asg_termination
from opsbook.analysis.outage.certificates import detect_certificate_expiry
from opsbook.analysis.outage.common import FINDING_COLUMNS, Config
from opsbook.analysis.outage.consumer import detect_consumer_stalled
from opsbook.analysis.outage.control_plane import detect_control_plane_restart
from opsbook.analysis.outage.cpu_credits import detect_cpu_credits
from opsbook.analysis.outage.findings import outage_findings, summary
from opsbook.analysis.outage.merge import ZONE_BEHAVIOUR, merge_ec2_death, merge_zone_outage
from opsbook.analysis.outage.metrics import MetricsCache, credit_exhaustion, growth, metric_milestones
from opsbook.analysis.outage.nodes import detect_node_lost, pod_nodes, workload_of
from opsbook.analysis.outage.ranking import rank
from opsbook.analysis.outage.rollout import detect_crashloop_after_rollout, detect_unready_after_rollout, rollout_times
from opsbook.analysis.outage.run import run_detectors

__all__ = [
    "FINDING_COLUMNS",
    "ZONE_BEHAVIOUR",
    "Config",
    "MetricsCache",
    "credit_exhaustion",
    "detect_asg_termination",
    "detect_certificate_expiry",
    "detect_consumer_stalled",
    "detect_control_plane_restart",
    "detect_cpu_credits",
    "detect_crashloop_after_rollout",
    "detect_node_lost",
    "detect_unready_after_rollout",
    "growth",
    "merge_ec2_death",
    "merge_zone_outage",
    "metric_milestones",
    "outage_findings",
    "pod_nodes",
    "rank",
    "rollout_times",
    "run_detectors",
    "summary",
    "workload_of",
]
