"""Apply the plan with kops on AWS (the sandbox provider is :mod:`opsbook.runbooks.create_cluster`'s).

Nothing changes unless ``apply=True``. With the ``kops`` provider, apply saves
the spec ``kops create cluster ... --dry-run -o yaml`` prints (the one the plan
showed), stores exactly that with ``kops create -f`` and then runs ``kops update
cluster --yes`` (or ``--target=terraform --out DIR``), streaming kops' output
line by line. (Plain ``kops create cluster`` would do the same plus a preview of
the cloud changes in between.)

"Exists" means the cloud resources exist, not the spec. When the cluster is
already in the state store, apply reads the stored spec back (``kops get
cluster/ig -o yaml``) and compares it with the desired one (``--dry-run -o
yaml``): a different spec is shown as a diff and left alone. The same spec is
followed by ``kops update cluster`` without ``--yes``: when kops would still
create, modify or delete anything (a previous update failed half-way: a quota, a
permission, an image), apply runs the update and says ``resumed``; only when
nothing is pending does it say ``unchanged``. Every result lists the phases the
run reached: spec stored, cloud resources created, validated (the last one is
validate-cluster's job; apply never claims it).
"""

from __future__ import annotations

import difflib
import logging
import shlex
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from opsbook.aws.asg import asg_name, existing_asg_names
from opsbook.aws.s3url import split_s3
from opsbook.aws.session import boundary
from opsbook.aws.session import client as aws_client
from opsbook.errors import AwsError, RunbookFailed, SandboxError
from opsbook.kops.params import CreateParams
from opsbook.kops.plan import (
    BASTION_SIZE,
    Preview,
    channel_images_missing,
    commands,
    create_args,
    create_from_file_args,
    dry_run_yaml,
    is_noise,
    kops_env,
    last_error,
    parse_documents,
    resolve_channel,
    run_kops,
    sandbox_fit,
    spec_file,
    update_args,
    update_preview,
)
from opsbook.kops.toolchain import ensure_kops, ensure_kops_assets, find_kops, plan_architectures

log = logging.getLogger(__name__)

Stream = Callable[[str], None]
VOLATILE_METADATA = ("creationTimestamp", "generation", "resourceVersion", "uid")
PHASES = ("spec stored", "cloud resources created", "validated")
NOT_VALIDATED = "not checked by apply: validate-cluster with wait is the next step"


def phases(spec: str = "", cloud: str = "", validated: str = "") -> list[dict[str, Any]]:
    """The phases of a kops cluster's creation, each ``reached`` when its detail is given.

    Returns:
        One dict per phase of :data:`PHASES`: ``phase, reached, detail``.
    """
    details = (spec, cloud, validated)
    return [{"phase": name, "reached": bool(detail), "detail": detail or ("not reached" if name != "validated"
                                                                          else NOT_VALIDATED)}
            for name, detail in zip(PHASES, details, strict=True)]


@dataclass
class ApplyResult:
    """What apply did.

    Attributes:
        provider: ``kops`` or ``sandbox``.
        action: ``dry-run`` (apply=False), ``created``, ``resumed`` (same spec stored, but
            ``kops update`` still had work: it was run), ``unchanged`` (same spec, nothing pending),
            ``differs`` (exists, spec differs; nothing changed), ``reshaped`` (sandbox).
        changed: whether anything was created or modified.
        message: one line for the report.
        commands: command lines that were run (or would run, for a dry run).
        diff: unified diff stored → desired spec (empty when equal or not applicable).
        output: kops' output lines (noise removed).
        next_step: what to run next (validate-cluster with wait).
        phases: kops only: :func:`phases` this run reached (empty for a dry run and the sandbox).
        pending: kops only: what ``kops update`` still had to do when this run started (``resumed``).
        notes: kops only: how the run was adapted to the sandbox (see :func:`opsbook.kops.plan.sandbox_fit`).
    """

    provider: str
    action: str
    changed: bool
    message: str
    commands: list[str] = field(default_factory=list)
    diff: str = ""
    output: list[str] = field(default_factory=list)
    next_step: str = ""
    phases: list[dict[str, Any]] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def phase(self) -> str:
        """The last phase this run reached (``""`` when none, e.g. a dry run)."""
        reached = [p["phase"] for p in self.phases if p["reached"]]
        return reached[-1] if reached else ""

    def phases_table(self) -> pd.DataFrame:
        """The phases as a table (columns ``phase, reached, detail``; empty for a dry run or the sandbox)."""
        return pd.DataFrame(self.phases, columns=["phase", "reached", "detail"])

    def summary(self) -> dict[str, Any]:
        """A JSON-able summary for :func:`opsbook.report.record`."""
        return {"provider": self.provider, "action": self.action, "changed": self.changed,
                "message": self.message, "commands": self.commands, "diff_lines": len(self.diff.splitlines()),
                "phase": self.phase, "phases": self.phases, "pending": self.pending, "notes": self.notes}


def next_step(params: CreateParams) -> str:
    """The command that checks the cluster after apply (validate-cluster with wait)."""
    return ("opsbook run validate-cluster -p " + shlex.quote(f"cluster_name={params.cluster_name}")
            + " -p wait=900   # kops validate cluster --wait 15m")


# -- kops ------------------------------------------------------------------------------------------
def stream_kops(kops: Path, args: Sequence[str], env: Mapping[str, str], stream: Stream,
                timeout: float = 1800) -> tuple[int, list[str]]:
    """Run kops and pass each output line (stdout and stderr, noise dropped) to ``stream``.

    Returns:
        The exit code and the lines streamed.
    """
    cmd = [str(kops), *args]
    stream(f"$ kops {shlex.join(args)}")
    lines: list[str] = []
    hidden = 0
    t0 = time.monotonic()
    with subprocess.Popen(cmd, env=dict(env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          bufsize=1) as proc:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.rstrip("\n")
            if is_noise(line):
                hidden += 1
                continue
            lines.append(line)
            stream(line)
            if time.monotonic() - t0 > timeout:
                proc.kill()
                raise RunbookFailed(f"`kops {shlex.join(args)}` took longer than {timeout:.0f}s and was "
                                    "stopped")
        rc = proc.wait()
    if hidden:
        stream(f"({hidden} lines of offline/SDK noise hidden)")
    return rc, lines


def _normalise(docs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Cluster and InstanceGroup documents without the fields the API server fills in, sorted."""
    out = []
    for d in docs:
        if d.get("kind") not in ("Cluster", "InstanceGroup"):
            continue
        d2 = yaml.safe_load(yaml.safe_dump(dict(d)))
        meta = d2.get("metadata", {})
        for k in VOLATILE_METADATA:
            meta.pop(k, None)
        out.append(d2)
    return sorted(out, key=lambda d: (d["kind"] != "Cluster", d["metadata"]["name"]))


def spec_diff(stored: Sequence[Mapping[str, Any]], desired: Sequence[Mapping[str, Any]]) -> str:
    """Unified diff of the stored and the desired Cluster/InstanceGroup specs (empty when equal)."""
    def dump(docs: Sequence[Mapping[str, Any]]) -> list[str]:
        return yaml.safe_dump_all(_normalise(docs), sort_keys=True).splitlines(keepends=True)

    return "".join(difflib.unified_diff(dump(stored), dump(desired), "stored (state store)",
                                        "desired (parameters)"))


def stored_documents(params: CreateParams, kops: Path, env: Mapping[str, str]) -> list[dict[str, Any]] | None:
    """The cluster's Cluster + InstanceGroup documents from the state store, or None if it has none."""
    state = ["--state", params.state_store, "-o", "yaml"]
    cluster = run_kops(kops, ["get", "cluster", params.cluster_name, *state], env, check=False)
    if cluster.returncode != 0:
        if "not found" in cluster.stderr:
            return None
        raise RunbookFailed(f"`kops get cluster {params.cluster_name}` failed: {last_error(cluster.stderr)}")
    igs = run_kops(kops, ["get", "ig", "--name", params.cluster_name, *state], env)
    return parse_documents(cluster.stdout) + parse_documents(igs.stdout)


def desired_documents(params: CreateParams, kops: Path, env: Mapping[str, str],
                      dry_args: Sequence[str]) -> list[dict[str, Any]]:
    """The spec kops would create now, even though the cluster exists already (see ``dry_run_yaml``)."""
    return parse_documents(dry_run_yaml(params, kops, dry_args, env).stdout)


def update_started(params: CreateParams) -> bool:
    """Whether a ``kops update --yes`` ever issued the cluster CA (``pki/private/kubernetes-ca`` in the state store).

    Before that nothing was created, so a cluster without it has everything pending (and kops' own
    preview would not finish on moto: see :func:`missing_groups`).
    """
    bucket, prefix = split_s3(params.state_store, f"state_store {params.state_store!r}")
    key = "/".join(x for x in (prefix, params.cluster_name, "pki/private/kubernetes-ca/keyset.yaml") if x)
    s3 = aws_client("s3", params.region)
    try:
        with boundary(f"s3 head-object s3://{bucket}/{key}"):
            s3.head_object(Bucket=bucket, Key=key)
    except AwsError:
        return False
    return True


def missing_groups(params: CreateParams, stored: Sequence[Mapping[str, Any]]) -> list[str]:
    """The Auto Scaling groups kops would create for the stored instance groups that do not exist yet.

    kops names them ``<ig>.masters.<cluster>`` (control plane) or ``<ig>.<cluster>``. When one is
    missing an update is certainly pending, and kops' own preview is not needed to say so; on moto it
    could not even say it: moto's DescribeWarmPool answers 500 for a group that does not exist, and
    kops retries its WarmPool task until its 10-minute task deadline.
    """
    names = (asg_name(d["metadata"]["name"], str(d.get("spec", {}).get("role", "")), params.cluster_name)
             for d in stored if d.get("kind") == "InstanceGroup")
    want = [n for n in names if n]
    found = existing_asg_names(want, params.region)
    return [w for w in want if w not in found]


def _update_failed(params: CreateParams, rc: int, lines: Sequence[str], stored: str) -> RunbookFailed:
    return RunbookFailed(
        f"`kops update cluster` exited {rc}: {last_error(chr(10).join(lines))}. Phase reached: spec stored "
        f"({stored}); cloud resources NOT (all) created; not validated. Fix the cause, then run apply again: "
        f"it finds the pending work and resumes (or `kops update cluster --name {params.cluster_name} --yes`)")


def apply_kops(params: CreateParams, *, apply: bool = False, target: str = "direct", out_dir: str = "",
               channel: str = "pinned", extra_args: Sequence[str] = (), kops: Path | None = None,
               env: Mapping[str, str] | None = None, stream: Stream = print,
               update_timeout: float = 1800) -> ApplyResult:
    """Create the cluster with kops (only when ``apply``), resume a half-done one, or show why nothing changes.

    Args:
        params: checked parameters (run the preflight first).
        apply: False = dry run (say what would run; change nothing).
        target: ``direct`` (AWS API) or ``terraform`` (write ``kubernetes.tf`` into ``out_dir``).
        out_dir: terraform output folder.
        channel: see :func:`opsbook.kops.plan.resolve_channel`.
        extra_args: more ``kops create cluster`` flags (e.g. ``--image``).
        kops: the kops binary (default: the pinned one, else one on PATH).
        env: environment for kops (default: this process's).
        stream: called with each output line.
        update_timeout: seconds ``kops update cluster`` may take before it is stopped.

    Raises:
        RunbookFailed: kops failed (the message has its error line and the phase reached).
        BadInput: bad target/channel.
        ToolchainError: kops (built when missing) or, on the sandbox, its node binaries could not be built.
        SandboxError: the sandbox's moto does not know kops' channel images (started before kops was built).
    """
    ch = resolve_channel(channel, params.kops_version)
    sandbox = sandbox_fit(params, env)
    params = sandbox.fit(params)
    extra_args = [*sandbox.create_args, *extra_args]
    dry = create_args(params, channel=ch, dry_run=True, extra_args=extra_args)
    update = update_args(params, target=target, out_dir=out_dir, extra_args=sandbox.update_args)
    planned = commands(params, channel=ch, target=target, out_dir=out_dir, extra_args=extra_args,
                       update_extra=sandbox.update_args)
    notes = list(sandbox.notes)
    kops = kops or find_kops(params.kops_version)
    if not apply:
        return ApplyResult("kops", "dry-run", False, "dry run (apply=false): nothing was created; these "
                           "commands would run", planned, next_step=next_step(params), notes=notes)
    if kops is None:  # built the first time an apply needs it, with progress
        stream(f"kops {params.kops_version} is not built yet: building it now (`opsbook toolchain --kops` "
               "builds it ahead)")
        kops = ensure_kops(stream, params.kops_version)
    arches = plan_architectures([params.control_plane_size, params.node_size, BASTION_SIZE if params.bastion else ""])
    if sandbox.active and (gone := channel_images_missing(params, arches)):
        raise SandboxError(
            f"the sandbox's EC2 (moto) does not know kops' image {', '.join(gone)}: the sandbox was started "
            "before kops was built, so its images were never registered. Recreate it: `opsbook sandbox down` "
            "then `opsbook sandbox up` (with --name if it is not the default); nothing was created.")
    if sandbox.missing_assets:  # built the first time a plan needs them (arm64 only for arm64 instance types)
        stream(f"kops' node binaries for {params.kops_version} are not built yet ({', '.join(sandbox.missing_assets)})"
               ": building them now")
        ensure_kops_assets(stream, params.kops_version, arches)
    for n in notes:
        stream(n)
    kenv = kops_env(params, env)
    where = f"{params.state_store}/{params.cluster_name}"
    done = "terraform written to " + out_dir if target == "terraform" else "kops update cluster --yes"
    stored = stored_documents(params, kops, kenv)
    if stored is not None:
        diff = spec_diff(stored, desired_documents(params, kops, kenv, dry))
        if diff:
            msg = (f"cluster {params.cluster_name} already exists in {params.state_store}; nothing was "
                   "changed. Its stored spec differs from these parameters (diff below): change it "
                   f"deliberately with `kops edit cluster {params.cluster_name}` / `kops edit ig`, then "
                   "`kops update cluster --yes`")
            return ApplyResult("kops", "differs", False, msg, [], diff, next_step=next_step(params),
                               phases=phases(f"{where} (a different spec)"), notes=notes)
        missing = missing_groups(params, stored) if (started := update_started(params)) else []
        aside: list[str] = []
        if not started:
            preview = Preview(create=["(everything: no kops update got as far as issuing the cluster CA)"])
        elif missing:
            preview = Preview(create=[f"AutoscalingGroup/{g} (and what it needs)" for g in missing])
        else:
            preview, aside = sandbox.set_aside(_preview(params, kops, kenv, sandbox.update_args, where))
        notes += aside
        for n in aside:
            stream(n)
        if not preview.pending:
            return ApplyResult("kops", "unchanged", False,
                               f"cluster {params.cluster_name} already exists with exactly this spec and "
                               "`kops update cluster` has nothing left to do: nothing was changed", [], "",
                               next_step=next_step(params), notes=notes,
                               phases=phases(where, "all present (kops update: no changes pending)"))
        stream(f"spec of {params.cluster_name} is stored, but kops update still has {len(preview.pending)} "
               "change(s) pending (an earlier update did not finish): resuming")
        for line in preview.pending:
            stream(f"  pending: {line}")
        rc, lines = stream_kops(kops, update, kenv, stream, timeout=update_timeout)
        if rc != 0:
            raise _update_failed(params, rc, lines, where)
        return ApplyResult("kops", "resumed", True,
                           f"cluster {params.cluster_name}: spec was already stored; resumed the unfinished "
                           f"update ({len(preview.pending)} pending change(s) applied)",
                           [shlex.join(["kops", *update])], output=lines, next_step=next_step(params),
                           phases=phases(where, done), pending=preview.pending, notes=notes)
    if out_dir:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
    path = Path(spec_file(params, out_dir))
    path.write_text(run_kops(kops, dry, kenv, timeout=180).stdout)
    stream(f"saved the reviewed spec to {path}")
    output: list[str] = []
    rc, lines = stream_kops(kops, create_from_file_args(params, str(path)), kenv, stream)
    output += lines
    if rc != 0:
        raise RunbookFailed(f"`kops create -f {path}` exited {rc}: {last_error(chr(10).join(lines))}. "
                            "Phase reached: none (the spec was not stored)")
    stream(f"phase reached: spec stored in {where}")
    rc, lines = stream_kops(kops, update, kenv, stream, timeout=update_timeout)
    output += lines
    if rc != 0:
        raise _update_failed(params, rc, lines, where)
    what = f"terraform written to {out_dir}" if target == "terraform" else "cloud resources created"
    return ApplyResult("kops", "created", True, f"cluster {params.cluster_name}: spec stored, {what}",
                       planned, output=output, next_step=next_step(params), phases=phases(where, done),
                       notes=notes)


def _preview(params: CreateParams, kops: Path, env: Mapping[str, str], extra: Sequence[str],
             where: str) -> Preview:
    try:
        return update_preview(params, kops, env, extra)
    except RunbookFailed as e:
        raise RunbookFailed(f"{e}. Phase reached: spec stored ({where}); whether the cloud resources exist "
                            "is unknown until kops can plan the update: fix the cause, then run apply again"
                            ) from e


# -- sandbox ---------------------------------------------------------------------------------------
