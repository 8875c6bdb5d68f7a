"""Pure parts of the resumable create-cluster apply: kops' update preview, moto's launch gap, channel images."""

from __future__ import annotations

from opsbook.kops.apply import ApplyResult, phases
from opsbook.kops.params import CreateParams
from opsbook.kops.plan import SANDBOX_STAND_IN, SandboxFit, moto_launch_problem, parse_preview
from opsbook.sandbox.kops_images import channel_images

# The shape kops v1.33 prints for `kops update cluster` without --yes (upup/pkg/fi/dryrun_target.go).
PREVIEW = """\
I1201 02:50:01.000000   123 executor.go:113] Tasks: 0 done / 98 total; 46 can run
*********************************************************************************

Will create resources:
  AutoscalingGroup/nodes-eu-central-1a.k1.k8s.local
  \tGranularity         \t1Minute
  \tMinSize             \t2

  LaunchTemplate/nodes-eu-central-1a.k1.k8s.local
  \tImageID             \t099720109477/ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20250610

Will modify resources:
  Subnet/eu-central-1a.k1.k8s.local
  \tTags                \t{Name: eu-central-1a.k1.k8s.local} -> {Name: eu-central-1a.k1.k8s.local, x: y}
  \tResourceBasedNaming \ttrue -> false

  SSHKey/kubernetes.k1.k8s.local-aa:bb
  \tPublicKey           \t <nil> -> <resource>
  \tKeyFingerprint      \t SHA256:20:f3:42 -> SHA256:/3+J8mibfOUUW
  \t                    \tline two

  SSHKey/kubernetes.k2.k8s.local-cc:dd
  \tKeyFingerprint      \t SHA256:20:f3:42 -> SHA256:/3+J8mibfOUUW
  \tTags                \t {} -> {Name: k2.k8s.local}

Items will be deleted only when the --prune flag is specified:
  ManagedFile          k1.k8s.local-addons-old

Items will be deleted during update:
  LaunchTemplate       old.k1.k8s.local

Must specify --yes to apply changes
"""

CHANNEL = """\
spec:
  images:
    - name: kope.io/k8s-1.17-debian-stretch-amd64-hvm-ebs-2021-02-05
      providerID: aws
      architectureID: amd64
      kubernetesVersion: ">=1.17.0 <1.18.0"
    - name: 099720109477/ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20250610
      providerID: aws
      architectureID: amd64
      kubernetesVersion: ">=1.32.0"
    - name: 099720109477/ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-arm64-server-20250610
      providerID: aws
      architectureID: arm64
      kubernetesVersion: ">=1.32.0"
    - providerID: gce
      name: "cos-cloud/cos-stable-77-12371-114-0"
"""


def test_preview_sections_are_parsed_and_prune_only_items_are_not_pending() -> None:
    p = parse_preview(PREVIEW)
    assert p.create == ["AutoscalingGroup/nodes-eu-central-1a.k1.k8s.local",
                        "LaunchTemplate/nodes-eu-central-1a.k1.k8s.local"]
    assert p.modify == {"Subnet/eu-central-1a.k1.k8s.local": ["Tags", "ResourceBasedNaming"],
                        "SSHKey/kubernetes.k1.k8s.local-aa:bb": ["PublicKey", "KeyFingerprint"],
                        "SSHKey/kubernetes.k2.k8s.local-cc:dd": ["KeyFingerprint", "Tags"]}
    assert p.delete == ["LaunchTemplate old.k1.k8s.local"]
    assert p.pending == ["create AutoscalingGroup/nodes-eu-central-1a.k1.k8s.local",
                         "create LaunchTemplate/nodes-eu-central-1a.k1.k8s.local",
                         "modify Subnet/eu-central-1a.k1.k8s.local (Tags, ResourceBasedNaming)",
                         "modify SSHKey/kubernetes.k1.k8s.local-aa:bb (PublicKey, KeyFingerprint)",
                         "modify SSHKey/kubernetes.k2.k8s.local-cc:dd (KeyFingerprint, Tags)",
                         "delete LaunchTemplate old.k1.k8s.local"]


def test_nothing_to_do_is_no_pending_work() -> None:
    assert parse_preview("No changes need to be applied\n").pending == []
    assert parse_preview("").pending == []


def test_instance_store_types_without_nvme_cannot_be_launched_by_moto() -> None:
    m3 = {"InstanceStorageSupported": True, "InstanceStorageInfo": {
        "Disks": [{"Count": 1, "SizeInGB": 4, "Type": "ssd"}], "NvmeSupport": "unsupported"}}
    c3 = {"InstanceStorageSupported": True, "InstanceStorageInfo": {
        "Disks": [{"Count": 2, "SizeInGB": 16, "Type": "ssd"}], "NvmeSupport": "unsupported"}}
    m5d = {"InstanceStorageSupported": True, "InstanceStorageInfo": {
        "Disks": [{"Count": 1, "SizeInGB": 75, "Type": "ssd"}], "NvmeSupport": "required"}}
    assert "1 instance-store disk(s)" in moto_launch_problem("m3.medium", m3)
    assert "2 instance-store disk(s)" in moto_launch_problem("c3.large", c3)
    assert moto_launch_problem("m5d.large", m5d) == ""  # NVMe: kops maps no ephemeral devices
    assert moto_launch_problem("t2.medium", {"InstanceStorageSupported": False}) == ""


def test_fit_swaps_only_the_types_moto_cannot_launch() -> None:
    p = CreateParams("k1.k8s.local", "eu-central-1", ("eu-central-1a",), "t2.medium", 1, ("eu-central-1a",),
                     "m3.medium", "10.1.0.0/16", "private", "kopeio", False, "", "s3://b", "1.33.1", "v1.33.1")
    fit = SandboxFit(True, "file:///repo", (), (("control plane", "m3.medium", SANDBOX_STAND_IN, "why"),), ())
    fitted = fit.fit(p)
    assert (fitted.control_plane_size, fitted.node_size) == (SANDBOX_STAND_IN, "t2.medium")
    assert fit.create_args == ["--set", "spec.assets.fileRepository=file:///repo"]
    assert fit.update_args == ["--create-kube-config=false"]
    off = SandboxFit()
    assert off.fit(p) == p and off.create_args == [] and off.update_args == []


def test_channel_images_become_moto_amis_owned_by_their_account() -> None:
    amis = channel_images(CHANNEL)
    assert [(a["owner_id"], a["name"], a["architecture"]) for a in amis] == [
        ("099720109477", "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20250610", "x86_64"),
        ("099720109477", "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-arm64-server-20250610", "arm64")]
    assert amis[0]["creation_date"] == "2025-06-10T00:00:00.000Z"
    assert amis[0]["ami_id"] == channel_images(CHANNEL)[0]["ami_id"] != amis[1]["ami_id"]  # stable, distinct
    assert all(a["ami_id"].startswith("ami-") and len(a["ami_id"]) == 21 for a in amis)


def test_phases_say_how_far_a_run_got() -> None:
    failed = ApplyResult("kops", "differs", False, "", phases=phases("s3://b/k1"))
    assert failed.phase == "spec stored"
    done = ApplyResult("kops", "resumed", True, "", phases=phases("s3://b/k1", "kops update cluster --yes"))
    assert done.phase == "cloud resources created"
    assert [p["reached"] for p in done.phases] == [True, True, False]
    assert done.phases_table()["phase"].tolist() == ["spec stored", "cloud resources created", "validated"]
    assert ApplyResult("kops", "dry-run", False, "").phase == ""


def test_sandbox_sets_aside_only_the_changes_moto_never_stores() -> None:
    p = parse_preview(PREVIEW)
    kept, notes = SandboxFit(active=True).set_aside(p)
    # real changes stay pending: a subnet's tags, a key pair's tags
    assert kept.modify == {"Subnet/eu-central-1a.k1.k8s.local": ["Tags"],
                           "SSHKey/kubernetes.k2.k8s.local-cc:dd": ["Tags"]}
    assert kept.create == p.create and kept.delete == p.delete
    assert len(notes) == 2 and "1 such change(s) (Subnet ResourceBasedNaming)" in notes[0]
    assert "2 such change(s) (SSHKey PublicKey, KeyFingerprint)" in notes[1] and "ed25519" in notes[1]
    only = parse_preview("Will modify resources:\n  Subnet/a.k1\n  \tResourceBasedNaming \t false -> true\n")
    assert SandboxFit(active=True).set_aside(only)[0].pending == []
    assert SandboxFit().set_aside(only) == (only, [])  # off the sandbox nothing is set aside
