"""Register the images of kops' pinned channel in the sandbox's moto server.

kops picks each instance group's image from its channel (``spec.images`` of
``channels/stable``: for Kubernetes ≥ 1.32 Canonical's
``099720109477/ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-<arch>-server-<date>``)
and ``kops update cluster`` refuses an image EC2 cannot find. moto ships no
Ubuntu 24.04 image, and its ``RegisterImage`` cannot set another account as
owner, so the only way in is moto's ``MOTO_AMIS_PATH``: the AMI list a moto
server loads when it starts. :func:`amis_file` writes moto's own default list
plus every AWS image of the channel (owner, name, architecture, creation date
from the name) and :func:`moto_env` hands it to the moto server process.

A sandbox started before kops was built has no channel file yet: then nothing
is added (and ``kops update`` says which image it cannot find).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from pathlib import Path
from typing import Any

import yaml

from opsbook.kops.toolchain import KOPS_VERSION, channel_file

log = logging.getLogger(__name__)

ARCHITECTURES = {"amd64": "x86_64", "arm64": "arm64"}
_OWNER = re.compile(r"^(\d{12})/(.+)$")
_DATE = re.compile(r"-(\d{4})(\d{2})(\d{2})(?:\.\d+)?$")


def channel_images(text: str) -> list[dict[str, Any]]:
    """The AWS images of a kops channel file, as moto AMI records (owner given by account number only).

    Returns:
        One dict per image with moto's AMI fields: ``ami_id`` (stable: derived from the name),
        ``name``, ``owner_id``, ``architecture``, ``creation_date`` and the EBS/HVM defaults.
    """
    doc = yaml.safe_load(text) or {}
    out = []
    for img in (doc.get("spec") or {}).get("images") or []:
        m = _OWNER.match(str(img.get("name", "")))
        if img.get("providerID") != "aws" or not m:
            continue  # kope.io/... images predate Kubernetes 1.18; no current kops selects them
        owner, name = m.groups()
        arch = ARCHITECTURES.get(str(img.get("architectureID", "amd64")), "x86_64")
        d = _DATE.search(name)
        created = f"{d.group(1)}-{d.group(2)}-{d.group(3)}T00:00:00.000Z" if d else "2025-01-01T00:00:00.000Z"
        out.append({
            "ami_id": "ami-" + hashlib.sha256(f"{owner}/{name}".encode()).hexdigest()[:17],
            "name": name, "owner_id": owner, "architecture": arch, "creation_date": created,
            "description": f"kops channel image {owner}/{name} (registered by the opsbook sandbox)",
            "state": "available", "public": True, "image_type": "machine", "platform": None,
            "virtualization_type": "hvm", "hypervisor": "xen", "root_device_type": "ebs",
            "root_device_name": "/dev/sda1", "sriov": "simple",
        })
    return out


def moto_default_amis() -> list[dict[str, Any]]:
    """The AMI list moto ships (what it loads when ``MOTO_AMIS_PATH`` is not set)."""
    from moto.utilities.utils import load_resource

    amis: list[dict[str, Any]] = load_resource("ec2/resources/amis.json")
    return amis


def amis_file(state_dir: Path, version: str = KOPS_VERSION) -> Path | None:
    """Write moto's default AMIs plus the channel's images to ``state_dir/moto-amis.json``.

    Returns:
        The file, or None when the pinned channel file is not there yet (kops not built).
    """
    channel = channel_file(version)
    if not channel.exists():
        log.info("kops channel %s not found: moto gets no kops images (run `opsbook toolchain --kops`, then "
                 "recreate the sandbox)", channel)
        return None
    images = channel_images(channel.read_text())
    path = state_dir / "moto-amis.json"
    path.write_text(json.dumps(moto_default_amis() + images, indent=1))
    log.info("registering %d kops channel image(s) in moto: %s", len(images), ", ".join(i["name"] for i in images))
    return path


def moto_env(state_dir: Path, version: str = KOPS_VERSION) -> dict[str, str]:
    """Extra environment for the moto server: ``MOTO_AMIS_PATH`` when the channel's images are known."""
    path = amis_file(state_dir, version)
    return {"MOTO_AMIS_PATH": str(path)} if path else {}
