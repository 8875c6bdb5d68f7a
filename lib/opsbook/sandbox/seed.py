"""Seed the sandbox so the cluster and "AWS" agree, shaped like a kops cluster.

For a :class:`~opsbook.kops.spec.ClusterSpec` this creates, in moto: a VPC with
the spec's CIDR, one subnet per zone, a launch template and an Auto Scaling group
per instance group (kops names and tags), and a versioned, encrypted state-store
bucket. Then, in Kubernetes, one Node per ASG instance, named after the
instance's private DNS name, with ``spec.providerID`` pointing at it and the
labels kops/kubelet set, plus the control-plane and kube-system pods that
``kops validate cluster`` looks for.
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass
from typing import Any

from kubernetes import client as k8s

from opsbook.aws.asg import IG_TAG, LIVE_STATES, cluster_instance_records
from opsbook.aws.session import client as aws_client
from opsbook.kops.spec import ClusterSpec, InstanceGroup
from opsbook.sandbox.cluster import MANAGED_ANNOTATION, MANAGED_VALUE

log = logging.getLogger(__name__)

STATE_BUCKET = "opsbook-kops-state"
CONTROL_PLANE_COMPONENTS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")


@dataclass(frozen=True)
class SeededInstance:
    """One EC2 instance of an ASG and the node that stands for it."""

    instance_id: str
    instance_group: str
    instance_type: str
    zone: str
    private_dns: str
    private_ip: str


def cluster_tags(spec: ClusterSpec, ig: InstanceGroup) -> dict[str, str]:
    """The tags kops puts on an instance group's ASG and instances."""
    role = "master" if ig.is_control_plane else "node"
    tags = {
        "KubernetesCluster": spec.name,
        f"kubernetes.io/cluster/{spec.name}": "owned",
        "Name": f"{ig.name}.{spec.name}",
        "kops.k8s.io/instancegroup": ig.name,
        f"k8s.io/role/{role}": "1",
        "k8s.io/cluster-autoscaler/node-template/label/kops.k8s.io/instancegroup": ig.name,
    }
    if ig.is_control_plane:
        tags["k8s.io/role/control-plane"] = "1"
    return tags


def seed_aws(spec: ClusterSpec) -> list[SeededInstance]:
    """Create the cluster's AWS side in moto (idempotent) and return its instances."""
    ec2 = aws_client("ec2", spec.region)
    asg = aws_client("autoscaling", spec.region)
    s3 = aws_client("s3", spec.region)

    _ensure_state_bucket(s3, spec.region)
    vpc_id = _ensure_vpc(ec2, spec)
    subnets = _ensure_subnets(ec2, spec, vpc_id)

    existing = {g["AutoScalingGroupName"] for g in asg.describe_auto_scaling_groups()["AutoScalingGroups"]}
    for ig in spec.instance_groups():
        name = f"{ig.name}.{spec.name}"
        if name in existing:
            continue
        tags = cluster_tags(spec, ig)
        lt_data: dict[str, Any] = {
            "ImageId": "ami-12c6146b",  # moto's default Ubuntu image
            "InstanceType": ig.machine_type,
            "TagSpecifications": [
                {"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
            ],
        }
        if ig.cpu_credits:
            lt_data["CreditSpecification"] = {"CpuCredits": ig.cpu_credits}
        ec2.create_launch_template(LaunchTemplateName=name, LaunchTemplateData=lt_data)
        asg.create_auto_scaling_group(
            AutoScalingGroupName=name,
            LaunchTemplate={"LaunchTemplateName": name, "Version": "$Latest"},
            MinSize=ig.min_size,
            MaxSize=ig.max_size,
            DesiredCapacity=ig.min_size,
            VPCZoneIdentifier=subnets[ig.zone],
            Tags=[
                {
                    "Key": k,
                    "Value": v,
                    "PropagateAtLaunch": True,
                    "ResourceId": name,
                    "ResourceType": "auto-scaling-group",
                }
                for k, v in tags.items()
            ],
        )
        log.info("created ASG %s (%s x %s)", name, ig.min_size, ig.machine_type)
    return list_instances(spec)


def list_instances(spec: ClusterSpec) -> list[SeededInstance]:
    """The running instances of the cluster's ASGs."""
    out: list[SeededInstance] = []
    for inst in cluster_instance_records(spec.name, spec.region, states=LIVE_STATES):
        tags = {t["Key"]: t["Value"] for t in inst.get("Tags", [])}
        out.append(
            SeededInstance(
                instance_id=inst["InstanceId"],
                instance_group=tags.get(IG_TAG, "?"),
                instance_type=inst["InstanceType"],
                zone=inst["Placement"]["AvailabilityZone"],
                private_dns=inst["PrivateDnsName"],
                private_ip=inst["PrivateIpAddress"],
            )
        )
    return sorted(out, key=lambda i: (i.instance_group, i.instance_id))


def _ensure_state_bucket(s3: Any, region: str) -> None:
    names = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    if STATE_BUCKET in names:
        return
    kwargs: dict[str, Any] = {"Bucket": STATE_BUCKET}
    if region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    s3.create_bucket(**kwargs)
    s3.put_bucket_versioning(Bucket=STATE_BUCKET, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_encryption(
        Bucket=STATE_BUCKET,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    s3.put_public_access_block(
        Bucket=STATE_BUCKET,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )


def _ensure_vpc(ec2: Any, spec: ClusterSpec) -> str:
    found = ec2.describe_vpcs(Filters=[{"Name": "tag:KubernetesCluster", "Values": [spec.name]}])["Vpcs"]
    if found:
        return str(found[0]["VpcId"])
    vpc = ec2.create_vpc(
        CidrBlock=spec.network_cidr,
        TagSpecifications=[
            {
                "ResourceType": "vpc",
                "Tags": [
                    {"Key": "KubernetesCluster", "Value": spec.name},
                    {"Key": "Name", "Value": spec.name},
                ],
            }
        ],
    )["Vpc"]
    return str(vpc["VpcId"])


def _ensure_subnets(ec2: Any, spec: ClusterSpec, vpc_id: str) -> dict[str, str]:
    existing = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"]
    by_zone = {s["AvailabilityZone"]: s["SubnetId"] for s in existing}
    blocks = ipaddress.ip_network(spec.network_cidr).subnets(new_prefix=19)
    for zone, block in zip(spec.zones, blocks, strict=False):
        if zone not in by_zone:
            sub = ec2.create_subnet(
                VpcId=vpc_id,
                CidrBlock=str(block),
                AvailabilityZone=zone,
                TagSpecifications=[
                    {
                        "ResourceType": "subnet",
                        "Tags": [
                            {"Key": "KubernetesCluster", "Value": spec.name},
                            {"Key": "Name", "Value": f"{zone}.{spec.name}"},
                        ],
                    }
                ],
            )["Subnet"]
            by_zone[zone] = sub["SubnetId"]
    return by_zone


def _instance_resources(spec: ClusterSpec, instance_type: str) -> tuple[str, str]:
    info = aws_client("ec2", spec.region).describe_instance_types(InstanceTypes=[instance_type])[
        "InstanceTypes"
    ][0]
    return str(info["VCpuInfo"]["DefaultVCpus"]), f"{info['MemoryInfo']['SizeInMiB']}Mi"


def node_body(
    spec: ClusterSpec, inst: SeededInstance, ig: InstanceGroup, cpu: str, memory: str
) -> k8s.V1Node:
    """A Node as kubelet on a kops-built instance registers it."""
    labels = {
        "kubernetes.io/hostname": inst.private_dns,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "node.kubernetes.io/instance-type": inst.instance_type,
        "beta.kubernetes.io/instance-type": inst.instance_type,
        "topology.kubernetes.io/region": spec.region,
        "topology.kubernetes.io/zone": inst.zone,
        "kops.k8s.io/instancegroup": ig.name,
        "type": "kwok",
        **spec.extra_labels,
    }
    taints = []
    if ig.is_control_plane:
        labels["node-role.kubernetes.io/control-plane"] = ""
        labels["kubernetes.io/role"] = "master"
        labels["node.kubernetes.io/exclude-from-external-load-balancers"] = ""
        taints.append(k8s.V1Taint(key="node-role.kubernetes.io/control-plane", effect="NoSchedule"))
    else:
        labels["node-role.kubernetes.io/node"] = ""
        labels["kubernetes.io/role"] = "node"
    return k8s.V1Node(
        metadata=k8s.V1ObjectMeta(
            name=inst.private_dns,
            labels=labels,
            annotations={MANAGED_ANNOTATION: MANAGED_VALUE, "node.alpha.kubernetes.io/ttl": "0"},
        ),
        spec=k8s.V1NodeSpec(provider_id=f"aws:///{inst.zone}/{inst.instance_id}", taints=taints or None),
        status=k8s.V1NodeStatus(
            capacity={"cpu": cpu, "memory": memory, "pods": "110"},
            allocatable={"cpu": cpu, "memory": memory, "pods": "110"},
            addresses=[
                k8s.V1NodeAddress(type="InternalIP", address=inst.private_ip),
                k8s.V1NodeAddress(type="Hostname", address=inst.private_dns),
                k8s.V1NodeAddress(type="InternalDNS", address=inst.private_dns),
            ],
            node_info=k8s.V1NodeSystemInfo(
                architecture="amd64",
                boot_id="",
                container_runtime_version="containerd://1.7.x",
                kernel_version="6.1.0",
                kube_proxy_version="",
                kubelet_version=f"v{spec.kubernetes_version}",
                machine_id="",
                operating_system="linux",
                os_image="Ubuntu 22.04 LTS",
                system_uuid=inst.instance_id,
            ),
        ),
    )


def seed_nodes(api: k8s.ApiClient, spec: ClusterSpec, instances: list[SeededInstance]) -> list[str]:
    """Create a Node for every instance that has none (idempotent); return all node names."""
    core = k8s.CoreV1Api(api)
    have = {n.metadata.name for n in core.list_node().items}
    igs = {ig.name: ig for ig in spec.instance_groups()}
    sizes: dict[str, tuple[str, str]] = {}
    for inst in instances:
        if inst.private_dns in have or inst.instance_group not in igs:
            continue  # already registered, or an instance outside the spec (e.g. added by a test)
        if inst.instance_type not in sizes:
            sizes[inst.instance_type] = _instance_resources(spec, inst.instance_type)
        cpu, mem = sizes[inst.instance_type]
        core.create_node(node_body(spec, inst, igs[inst.instance_group], cpu, mem))
    return [i.private_dns for i in instances]


def _static_pod(component: str, node: str) -> k8s.V1Pod:
    return k8s.V1Pod(
        metadata=k8s.V1ObjectMeta(
            name=f"{component}-{node}",
            namespace="kube-system",
            labels={"k8s-app": component, "tier": "control-plane", "component": component},
            annotations={"kubernetes.io/config.source": "file", "kubernetes.io/config.mirror": "sandbox"},
        ),
        spec=k8s.V1PodSpec(
            node_name=node,
            priority_class_name="system-node-critical",
            host_network=True,
            tolerations=[k8s.V1Toleration(operator="Exists")],
            containers=[
                k8s.V1Container(
                    name=component,
                    image=f"registry.k8s.io/{component}:v1.34.4",
                    resources=k8s.V1ResourceRequirements(requests={"cpu": "100m", "memory": "128Mi"}),
                )
            ],
        ),
    )


def seed_system_workloads(api: k8s.ApiClient, spec: ClusterSpec, nodes_by_ig: dict[str, list[str]]) -> None:
    """Create the kube-system pods a kops cluster has (idempotent)."""
    core = k8s.CoreV1Api(api)
    apps = k8s.AppsV1Api(api)
    have = {p.metadata.name for p in core.list_namespaced_pod("kube-system").items}
    for ig in spec.instance_groups():
        if not ig.is_control_plane:
            continue
        for node in nodes_by_ig.get(ig.name, []):
            for comp in (*CONTROL_PLANE_COMPONENTS, "etcd-manager-main"):
                pod = _static_pod(comp, node)
                if pod.metadata.name not in have:
                    core.create_namespaced_pod("kube-system", pod)
    deployments = {d.metadata.name for d in apps.list_namespaced_deployment("kube-system").items}
    if "coredns" not in deployments:
        labels = {"k8s-app": "kube-dns"}
        apps.create_namespaced_deployment(
            "kube-system",
            k8s.V1Deployment(
                metadata=k8s.V1ObjectMeta(name="coredns", labels=labels),
                spec=k8s.V1DeploymentSpec(
                    replicas=2,
                    selector=k8s.V1LabelSelector(match_labels=labels),
                    template=k8s.V1PodTemplateSpec(
                        metadata=k8s.V1ObjectMeta(labels=labels),
                        spec=k8s.V1PodSpec(
                            priority_class_name="system-cluster-critical",
                            containers=[
                                k8s.V1Container(
                                    name="coredns",
                                    image="registry.k8s.io/coredns/coredns:v1.11.3",
                                    resources=k8s.V1ResourceRequirements(
                                        requests={"cpu": "100m", "memory": "70Mi"}, limits={"memory": "170Mi"}
                                    ),
                                )
                            ],
                        ),
                    ),
                ),
            ),
        )
