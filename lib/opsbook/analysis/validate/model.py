"""A validation's options, its inputs (the snapshot and its side data) and its result."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd

from opsbook.analysis import kops_parity as kp
from opsbook.analysis.validate.score import parse_exclude
from opsbook.aws import kops_model
from opsbook.errors import BadInput
from opsbook.k8s.objects import Snapshot
from opsbook.report import SEVERITY_RANK


@dataclass(frozen=True)
class Options:
    """How strict the validation is.

    ``max_unready_nodes`` and ``exclude`` are opsbook policies (beyond kops): kops validate has
    no such flags and still fails what they tolerate; the kops verdict is reported unchanged.

    Attributes:
        max_unready_nodes: worker nodes whose kops ``Node`` failure opsbook tolerates (control-plane
            nodes never are).
        cert_days: certificates expiring within this many days are reported.
        restart_threshold: a pod restarted at least this often is reported.
        pending_grace_s: a pod Pending for less than this is not (yet) reported.
        fail_on: the lowest severity (outside the kops checks) that fails the validation.
        exclude: known noise, ``namespace:<glob>``, ``check:<glob>`` or ``object:<glob>``.
    """

    max_unready_nodes: int = 0
    cert_days: int = 30
    restart_threshold: int = 5
    pending_grace_s: int = 120
    fail_on: str = "high"
    exclude: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.fail_on not in SEVERITY_RANK or self.fail_on == "info":
            raise BadInput(f"fail_on {self.fail_on!r} is not one of low, medium, high, critical")
        if self.max_unready_nodes < 0 or self.cert_days < 0 or self.restart_threshold < 1:
            raise BadInput("max_unready_nodes and cert_days must be >= 0, restart_threshold >= 1")
        parse_exclude(self.exclude)


@dataclass
class Inputs:
    """Everything one validation looks at: the snapshot plus the AWS side.

    Attributes:
        snapshot: the cluster snapshot.
        targets: target size per instance group (see :mod:`opsbook.aws.asg`).
        instances: the cluster's cloud instances, or None when AWS could not be read.
        apiserver_certs: the API server's serving certificate (``Snapshot.certs`` columns).
        notes: check or source -> why it is degraded.
        aws_calls: AWS API calls made.
        igs: the instance groups kops validates (:func:`opsbook.aws.asg.state_store_instance_groups`;
            from the ASGs' tags when no state store was read); None without AWS.
        cloud: the ASGs, members and instances as kops reads them; None without AWS.
        api_addresses: what the API server's name resolves to (non-gossip clusters), for kops'
            ``dns/apiserver`` check; None when not checked.
    """

    snapshot: Snapshot
    targets: pd.DataFrame
    instances: pd.DataFrame | None
    apiserver_certs: pd.DataFrame
    notes: dict[str, str] = field(default_factory=dict)
    aws_calls: int = 0
    igs: pd.DataFrame | None = None
    cloud: kops_model.KopsCloud | None = None
    api_addresses: list[str] | None = None


@dataclass
class Validation:
    """The result of one validation.

    Attributes:
        evaluations: every evaluation that counts (``check, group, object, namespace, severity,
            message, evidence``; empty severity = passed).
        findings: the evaluations with a severity, most severe first.
        excluded: evaluations removed by ``exclude``, with the ``rule`` that removed them.
        notes: degraded checks: ``check, note``.
        score: percentage of counted evaluations without a finding above ``info``.
        passed: opsbook's verdict: no kops failure left after opsbook's policies (``max_unready_nodes``,
            ``exclude``) and no beyond-kops finding at ``fail_on`` or above.
        kops_failures: number of failures real ``kops validate cluster`` would list.
        inputs: what was looked at.
        at: when (UTC).
        kops: the kops verdict (``failures``/``nodes`` as ``kops validate cluster -o json``).
        tolerated: worker nodes whose kops failure opsbook's ``max_unready_nodes`` tolerated.
    """

    evaluations: pd.DataFrame
    findings: pd.DataFrame
    excluded: pd.DataFrame
    notes: pd.DataFrame
    score: float
    passed: bool
    kops_failures: int
    inputs: Inputs
    at: datetime
    kops: kp.KopsVerdict = field(default_factory=lambda: kp.KopsVerdict(
        pd.DataFrame(columns=kp.FAILURE_COLUMNS), pd.DataFrame(columns=kp.NODE_COLUMNS),
        pd.DataFrame(columns=kp.GROUP_COLUMNS), pd.DataFrame(columns=kp.MEMBER_COLUMNS)))
    tolerated: list[str] = field(default_factory=list)

    @property
    def kops_passed(self) -> bool:
        """What ``kops validate cluster`` would say (exit 0): no kops failure."""
        return self.kops.passed

    def exclusions(self) -> pd.DataFrame:
        """Per exclude rule, the evaluations and findings it removed: ``rule, evaluations, findings``."""
        if self.excluded.empty:
            return pd.DataFrame(columns=["rule", "evaluations", "findings"])
        g = self.excluded.assign(finding=self.excluded["severity"] != "").groupby("rule")
        return pd.DataFrame({"evaluations": g.size(), "findings": g["finding"].sum()}).reset_index()
