"""create-cluster: parameter validation, plan and advice as pure functions (no servers)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from opsbook.errors import BadInput
from opsbook.kops import plan
from opsbook.kops.apply import spec_diff
from opsbook.kops.params import CreateParams, cidr_problem, cluster_name_problem, split_list, validate
from opsbook.kops.preflight import advice, burstable_advice, modernize_flags

DATA = Path(__file__).parent / "data"
KEY = str(DATA / "create_devtest.pub")

# The team's original command, as parameters (private CIDR: see test_team_cidr_is_public_space).
ORIGINAL: dict[str, Any] = dict(
    cluster_name="opsbook.k8s.local", region="eu-central-1",
    zones="eu-central-1a,eu-central-1b,eu-central-1c", node_size="t2.medium", node_count=5,
    control_plane_zones="eu-central-1a", control_plane_size="m3.medium", network_cidr="172.20.0.0/16",
    topology="private", networking="kopeio-vxlan", bastion=True, ssh_public_key=KEY,
    state_store="s3://opsbook-kops-state", kubernetes_version="1.33.1", kops_version="v1.33.1",
)


def params(**over: Any) -> CreateParams:
    return validate(**{**ORIGINAL, **over}, check_instance_types=False)


def problem_text(**over: Any) -> str:
    with pytest.raises(BadInput) as e:
        params(**over)
    return str(e.value)


def test_original_parameters_validate() -> None:
    p = params()
    assert p.zones == ("eu-central-1a", "eu-central-1b", "eu-central-1c")
    assert p.networking == "kopeio"  # canonical name of kopeio-vxlan
    assert p.gossip and p.state_bucket == "opsbook-kops-state"
    spec = p.spec()
    sizes = {ig.name: ig.min_size for ig in spec.instance_groups()}
    assert sizes == {"master-eu-central-1a": 1, "nodes-eu-central-1a": 2, "nodes-eu-central-1b": 2,
                     "nodes-eu-central-1c": 1}


@pytest.mark.parametrize(("name", "fragment"), [
    ("", "is empty"),
    ("Prod.example.com", "capitals"),
    ("cluster", "not fully qualified"),
    ("bad_name.example.com", "label 'bad_name'"),
    ("-x.example.com", "label '-x'"),
    ("a" * 64 + ".example.com", "not a valid DNS name"),
])
def test_cluster_name_problems(name: str, fragment: str) -> None:
    msg = cluster_name_problem(name)
    assert msg is not None and fragment in msg


def test_good_cluster_names() -> None:
    assert cluster_name_problem("k8s.example.com") is None
    assert cluster_name_problem("dev.k8s.local") is None


def test_team_cidr_is_public_space() -> None:
    # 172.10.0.0/16 is outside 172.16.0.0/12: not RFC 1918.
    problem, note = cidr_problem("172.10.0.0/16")
    assert problem is not None and "public address space" in problem and "172.20.0.0/16" in problem
    problem, note = cidr_problem("172.10.0.0/16", provider="sandbox")
    assert problem is None and note is not None and "accepted for the sandbox" in note
    assert cidr_problem("172.20.0.0/16") == (None, None)
    assert cidr_problem("100.80.0.0/16") == (None, None)  # RFC 6598
    assert "well-formed" in (cidr_problem("10.0.0.1/16")[0] or "")  # host bits set
    assert "/12" in (cidr_problem("10.0.0.0/12")[0] or "")


def test_every_problem_in_one_paragraph() -> None:
    text = problem_text(cluster_name="Bad", zones="eu-west-1a,eu-central-1b",
                        control_plane_zones="eu-central-1a,eu-central-1b", network_cidr="8.8.0.0/16",
                        networking="weave", ssh_public_key="/nope.pub", state_store="opsbook-kops-state")
    assert "\n" not in text
    assert text.startswith("The create-cluster parameters need fixing before anything is called")
    for fragment in ("capitals", "eu-west-1a not in region eu-central-1", "etcd needs an odd number",
                     "control_plane_zones eu-central-1a are not in zones",
                     "8.8.0.0/16 is public", "'weave' is not a kops networking option",
                     "/nope.pub does not exist",
                     "is not an S3 URL", "Nothing was called or created."):
        assert fragment in text, fragment


def test_bastion_needs_private_topology() -> None:
    assert "bastion needs topology private" in problem_text(topology="public")
    assert params(topology="public", bastion=False).topology == "public"


def test_ssh_keys(tmp_path: Path) -> None:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    (tmp_path / "weak.pub").write_bytes(weak.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH))
    assert "1024-bit RSA key" in problem_text(ssh_public_key=str(tmp_path / "weak.pub"))
    (tmp_path / "priv").write_bytes(weak.private_bytes(serialization.Encoding.PEM,
                                                       serialization.PrivateFormat.OpenSSH,
                                                       serialization.NoEncryption()))
    assert "PRIVATE key" in problem_text(ssh_public_key=str(tmp_path / "priv"))
    (tmp_path / "junk.pub").write_text("ssh-rsa not-base64\n")
    assert "not an OpenSSH public key" in problem_text(ssh_public_key=str(tmp_path / "junk.pub"))
    assert params(ssh_public_key="").ssh_public_key == ""


def test_counts_and_versions() -> None:
    assert "node_count 0 is out of range" in problem_text(node_count=0)
    assert "not a version such as 1.33.1" in problem_text(kubernetes_version="latest")
    assert params(kubernetes_version="v1.33.1").kubernetes_version == "1.33.1"
    assert "is not an EC2 instance type" in problem_text(node_size="big")
    assert split_list(" a, ,b ") == ("a", "b") and split_list(["a", "b"]) == ("a", "b")


def test_create_command_uses_control_plane_flags() -> None:
    p = params()
    lines = plan.commands(p, channel="stable")
    assert lines[0] == ("kops create cluster --cloud aws --name opsbook.k8s.local --zones "
                        "eu-central-1a,eu-central-1b,eu-central-1c --node-size t2.medium --node-count 5 "
                        "--control-plane-zones eu-central-1a --control-plane-size m3.medium --network-cidr "
                        "172.20.0.0/16 --topology private --networking kopeio-vxlan --bastion "
                        f"--ssh-public-key {KEY} --state s3://opsbook-kops-state --kubernetes-version 1.33.1 "
                        "--channel stable --dry-run -o yaml > opsbook.k8s.local.yaml")
    assert lines[1] == "kops create -f opsbook.k8s.local.yaml --state s3://opsbook-kops-state"
    assert lines[2] == "kops update cluster --name opsbook.k8s.local --state s3://opsbook-kops-state --yes"
    assert lines[3].startswith("kops validate cluster --name opsbook.k8s.local") and "--wait 15m" in lines[3]
    assert not any("--master-" in line for line in lines)
    tf = plan.commands(p, target="terraform", out_dir="out/tf")
    assert tf[1] == "kops create -f out/tf/opsbook.k8s.local.yaml --state s3://opsbook-kops-state"
    assert "--target=terraform --out out/tf --yes" in tf[2] and tf[3].startswith("(cd out/tf && terraform")
    with pytest.raises(BadInput, match="needs out_dir"):
        plan.update_args(p, target="terraform")


def test_expected_instance_groups_and_resources() -> None:
    igs = plan.expected_instance_groups(params())
    assert igs[["name", "min_size", "machine_type"]].values.tolist() == [
        ["control-plane-eu-central-1a", 1, "m3.medium"], ["nodes-eu-central-1a", 2, "t2.medium"],
        ["nodes-eu-central-1b", 2, "t2.medium"], ["nodes-eu-central-1c", 1, "t2.medium"],
        ["bastions", 1, "t3.micro"]]
    res = plan.aws_resources(params()).set_index("resource")["count"]
    assert res["Subnets"] == 6 and res["NAT gateways + Elastic IPs"] == 3
    assert res["EC2 instances"] == 7 and res["Auto Scaling groups + launch templates"] == 5
    assert res["EBS volumes (etcd)"] == 2 and "Route53 records" not in res  # gossip
    public = plan.aws_resources(params(topology="public", bastion=False, cluster_name="k8s.example.com"))
    pub = public.set_index("resource")["count"]
    assert pub["Subnets"] == 3 and "NAT gateways + Elastic IPs" not in pub and pub["Route53 records"] == 3


def test_modernize_flags() -> None:
    cmd, used = modernize_flags("kops create cluster --master-zones=a --master-size m3.medium "
                                "--name $CLUSTER_NAME")
    assert cmd == ("kops create cluster --control-plane-zones=a --control-plane-size m3.medium "
                   "--name $CLUSTER_NAME")
    assert used == {"--master-zones": "--control-plane-zones", "--master-size": "--control-plane-size"}


def test_burstable_advice_costs() -> None:
    row = burstable_advice("t2.medium", 5, "eu-central-1", "", "node")
    assert row is not None
    # us-east-1 reference: t2.medium 0.0464 $/h, m6i.large 0.096 $/h; 730 h/month, 5 nodes.
    # 0.0464*730*5 = 169.36; 0.096*730*5 = 350.4; diff 181.04.
    # unlimited worst case: baseline 24/2/60 = 20 %; 0.8 * 2 vCPU * 0.05 $ * 730 h * 5 = 292.
    msg = row["message"]
    assert "throttled to the 20 % baseline" in msg
    assert "$169/month" in msg and "$350/month (+$181)" in msg and "at most $292/month" in msg
    assert "a lower bound for eu-central-1" in msg
    assert burstable_advice("t2.medium", 5, "eu-central-1", "unlimited", "node") is None
    assert burstable_advice("t3.medium", 5, "eu-central-1", "", "node") is None  # T3 defaults to unlimited
    assert burstable_advice("m5.large", 5, "eu-central-1", "", "node") is None


def test_advice_rows() -> None:
    rows = advice(params(ssh_public_key=""), check_generation=False).set_index("check")
    assert "advice.single-control-plane" in rows.index
    assert "--control-plane-zones eu-central-1a,eu-central-1b,eu-central-1c" in rows.loc[
        "advice.single-control-plane", "message"]
    assert "--master-zones → --control-plane-zones" in rows.loc["advice.deprecated-flags", "message"]
    assert "advice.bastion-without-key" in rows.index
    three = advice(params(control_plane_zones="eu-central-1a,eu-central-1b,eu-central-1c",
                          node_size="m5.large"), check_generation=False)
    assert "advice.single-control-plane" not in set(three["check"])
    assert "advice.burstable-standard" not in set(three["check"])


def test_spec_diff_ignores_server_fields() -> None:
    stored = [{"kind": "Cluster", "metadata": {"name": "c", "creationTimestamp": "2026-01-01T00:00:00Z"},
               "spec": {"kubernetesVersion": "1.33.1"}},
              {"kind": "InstanceGroup", "metadata": {"name": "nodes-a", "generation": 1},
               "spec": {"minSize": 2}}]
    desired = [{"kind": "InstanceGroup", "metadata": {"name": "nodes-a", "creationTimestamp": None},
                "spec": {"minSize": 2}},
               {"kind": "Cluster", "metadata": {"name": "c", "creationTimestamp": None},
                "spec": {"kubernetesVersion": "1.33.1"}},
               {"kind": "SSHCredential", "metadata": {"name": "admin"}, "spec": {}}]
    assert spec_diff(stored, desired) == ""
    desired[0]["spec"]["minSize"] = 3
    diff = spec_diff(stored, desired)
    assert "-  minSize: 2\n+  minSize: 3\n" in diff


def test_plan_without_kops_is_derived(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPSBOOK_CACHE", str(tmp_path))  # no pinned kops built here
    monkeypatch.setenv("PATH", str(tmp_path))  # and none on PATH
    monkeypatch.delenv("OPSBOOK_SANDBOX", raising=False)  # and not the sandbox (it runs t3.medium masters)
    result = plan.dry_run(params(), channel="stable")
    assert result.source == "derived" and result.yaml == ""
    assert result.instance_groups.equals(plan.expected_instance_groups(params()))
    assert "opsbook toolchain --kops" in result.log[0]
    first = result.summary()["commands"][0]
    assert first.endswith("--channel stable --dry-run -o yaml > opsbook.k8s.local.yaml")


def test_next_step_command_is_accepted_by_opsbook_run() -> None:
    """The command create-cluster prints after apply parses against validate-cluster's parameters."""
    import shlex

    from opsbook.engine.catalog import find_runbook
    from opsbook.engine.params import parse_parameters
    from opsbook.kops.apply import next_step

    argv = shlex.split(next_step(params()).split("#", 1)[0])
    assert argv[:3] == ["opsbook", "run", "validate-cluster"]
    raw = dict(argv[i + 1].split("=", 1) for i, a in enumerate(argv) if a == "-p")
    parsed = parse_parameters(find_runbook("validate-cluster").parameters, raw, "validate-cluster")
    assert parsed == {"cluster_name": params().cluster_name, "wait": 900}
