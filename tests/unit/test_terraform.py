"""infra/terraform as a reviewer would check it, offline: the run-data bucket is versioned,
KMS-encrypted, private and TLS-only with lifecycle rules, and the clusters' IAM policy stays
inside the bucket's run and code prefixes. (checkov scans these files too: see
test_cluster_manifests.py.)"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import hcl2

TERRAFORM = Path(__file__).resolve().parents[2] / "infra" / "terraform"


@cache
def terraform() -> dict[str, list[Any]]:
    """Every .tf file merged: plain strings, blocks as lists of dicts."""
    options = hcl2.SerializationOptions(
        with_comments=False, explicit_blocks=False, strip_string_quotes=True
    )
    merged: dict[str, list[Any]] = {}
    for path in sorted(TERRAFORM.glob("*.tf")):
        with path.open() as f:
            for key, found in hcl2.load(f, serialization_options=options).items():
                merged.setdefault(key, []).extend(found)
    return merged


def blocks(kind: str, type_: str) -> dict[str, dict[str, Any]]:
    """Resources (kind "resource") or data sources ("data") of one type, by name."""
    return {
        name: body
        for block in terraform().get(kind, [])
        for name, body in block.get(type_, {}).items()
    }


def test_bucket_is_versioned_encrypted_private_and_tls_only():
    assert set(blocks("resource", "aws_s3_bucket")) == {"data", "logs"}
    [versioning] = blocks("resource", "aws_s3_bucket_versioning").values()
    assert versioning["versioning_configuration"][0]["status"] == "Enabled"
    sse = blocks("resource", "aws_s3_bucket_server_side_encryption_configuration")["data"]
    default = sse["rule"][0]["apply_server_side_encryption_by_default"][0]
    assert default["sse_algorithm"] == "aws:kms"
    assert default["kms_master_key_id"] == "${aws_kms_key.data.arn}"
    assert blocks("resource", "aws_kms_key")["data"]["enable_key_rotation"] is True
    [public] = blocks("resource", "aws_s3_bucket_public_access_block").values()
    flags = ("block_public_acls", "block_public_policy", "ignore_public_acls")
    assert all(public[flag] is True for flag in (*flags, "restrict_public_buckets"))
    [statement] = blocks("data", "aws_iam_policy_document")["tls_only"]["statement"]
    assert statement["effect"] == "Deny" and statement["actions"] == ["s3:*"]
    [condition] = statement["condition"]
    assert (condition["variable"], condition["values"]) == ("aws:SecureTransport", ["false"])


def test_lifecycle_expires_tmp_and_noncurrent_versions():
    rules = blocks("resource", "aws_s3_bucket_lifecycle_configuration")["data"]["rule"]
    by_id = {rule["id"]: rule for rule in rules}
    tmp = by_id["expire-tmp"]
    assert tmp["filter"][0]["prefix"] == "tmp/" and tmp["expiration"][0]["days"]
    assert any("noncurrent_version_expiration" in rule for rule in rules)
    assert all("abort_incomplete_multipart_upload" in rule for rule in rules)


def test_cluster_policy_stays_inside_the_bucket_prefixes():
    policy = blocks("data", "aws_iam_policy_document")["cluster_s3"]
    for statement in policy["statement"]:
        actions, resources = statement["actions"], statement["resources"]
        assert "*" not in resources and not {"*", "s3:*"} & set(actions), statement["sid"]
        if "s3:ListBucket" in actions:
            assert statement["condition"][0]["variable"] == "s3:prefix", statement["sid"]
        elif any(action.startswith("s3:") for action in actions):
            allowed = {"${local.run_objects}", "${local.code_objects}"}
            assert set(resources) <= allowed, statement["sid"]
    locals_ = {key: value for block in terraform()["locals"] for key, value in block.items()}
    assert locals_["run_objects"] == "${aws_s3_bucket.data.arn}/${var.prefixes.runs}/*"
    assert locals_["code_objects"] == "${aws_s3_bucket.data.arn}/${var.prefixes.code}/*"
    writes = {"s3:PutObject", "s3:DeleteObject"}
    for statement in policy["statement"]:
        if writes & set(statement["actions"]):
            assert statement["resources"] == ["${local.run_objects}"], "writes outside runs"


def test_irsa_trust_is_limited_to_one_service_account():
    [trust] = blocks("data", "aws_iam_policy_document")["irsa_trust"]["statement"]
    conditions = {c["variable"]: c["values"] for c in trust["condition"]}
    assert conditions["${local.oidc_issuer}:sub"] == [
        "system:serviceaccount:${var.k8s_namespace}:${var.k8s_service_account}"
    ]
    assert conditions["${local.oidc_issuer}:aud"] == ["sts.amazonaws.com"]
