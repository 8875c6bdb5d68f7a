"""A notebook run by papermill in its own kernel reaches the sandbox's moto server and cluster."""

from __future__ import annotations

import uuid
from pathlib import Path

import boto3
import nbformat
import papermill as pm
import pytest

from opsbook.sandbox import Sandbox

pytestmark = [pytest.mark.sandbox, pytest.mark.notebook]
NB = Path(__file__).parent / "notebooks" / "reach_sandbox.ipynb"


def test_papermill_kernel_reaches_moto_and_cluster(sandbox: Sandbox, tmp_path: Path) -> None:
    bucket = f"nb-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=bucket)
    out = tmp_path / "out.ipynb"
    pm.execute_notebook(
        str(NB), str(out), parameters={"bucket": bucket}, kernel_name="python3", progress_bar=False
    )
    nb = nbformat.read(out, as_version=4)
    last = nb.cells[-1].outputs[-1]["data"]["text/plain"]
    assert "'bucket_seen': True" in last
    nodes = int(last.split("'nodes': ")[1].rstrip("}"))
    assert nodes >= 4
