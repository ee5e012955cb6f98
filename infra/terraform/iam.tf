# What the Ray clusters may do: read and write the run prefix, read the code zips, use the
# bucket's KMS key through S3. Nothing else in the bucket, no other bucket.
# Two ways to hold it: an IAM role for the KubeRay pods' service account (IRSA), and
# instance profiles for VMs started by the Ray cluster launcher.

locals {
  oidc_issuer   = trimprefix(var.oidc_provider_url, "https://")
  create_irsa   = var.oidc_provider_arn != ""
  run_objects   = "${aws_s3_bucket.data.arn}/${var.prefixes.runs}/*"
  code_objects  = "${aws_s3_bucket.data.arn}/${var.prefixes.code}/*"
  ec2_arn       = "arn:${local.partition}:ec2:${var.region}:${local.account_id}"
  vm_role_count = var.create_instance_profiles ? 1 : 0
}

data "aws_iam_policy_document" "cluster_s3" {
  # Listing is limited to the run prefix. IfExists also admits requests that carry no prefix
  # at all, which is how IAM sees HeadBucket: pyarrow's create_dir (Ray Data writes, Ray Train
  # checkpoints) checks that the bucket exists first. The cost: an unprefixed list request
  # would show key names (never contents) outside the prefix, so keep the bucket to this
  # project.
  statement {
    sid       = "ListRunPrefix"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.data.arn]

    condition {
      test     = "StringLikeIfExists"
      variable = "s3:prefix"
      values   = [var.prefixes.runs, "${var.prefixes.runs}/*"]
    }
  }

  # Multipart uploads (every pyarrow write) need PutObject for their parts and
  # AbortMultipartUpload when a writer is interrupted.
  statement {
    sid = "ReadWriteRuns"
    actions = [
      "s3:GetObject",
      "s3:PutObject",
      "s3:DeleteObject",
      "s3:AbortMultipartUpload",
      "s3:ListMultipartUploadParts",
    ]
    resources = [local.run_objects]
  }

  statement {
    sid       = "ReadCode"
    actions   = ["s3:GetObject"]
    resources = [local.code_objects]
  }

  statement {
    sid       = "UseBucketKeyThroughS3"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.data.arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${var.region}.amazonaws.com"]
    }
  }
}

resource "aws_iam_policy" "cluster_s3" {
  name        = "${var.bucket_name}-cluster-s3"
  description = "promptcot-ray clusters: read/write s3://${var.bucket_name}/${var.prefixes.runs}, read s3://${var.bucket_name}/${var.prefixes.code}"
  policy      = data.aws_iam_policy_document.cluster_s3.json
}

# --- IRSA: the KubeRay pods' service account ------------------------------------------------

data "aws_iam_policy_document" "irsa_trust" {
  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]

    principals {
      type        = "Federated"
      identifiers = [var.oidc_provider_arn]
    }
    condition {
      test     = "StringEquals"
      variable = "${local.oidc_issuer}:sub"
      values   = ["system:serviceaccount:${var.k8s_namespace}:${var.k8s_service_account}"]
    }
    condition {
      test     = "StringEquals"
      variable = "${local.oidc_issuer}:aud"
      values   = ["sts.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "cluster" {
  count              = local.create_irsa ? 1 : 0
  name               = "${var.bucket_name}-cluster"
  description        = "promptcot-ray KubeRay pods (service account ${var.k8s_namespace}/${var.k8s_service_account})"
  assume_role_policy = data.aws_iam_policy_document.irsa_trust.json

  lifecycle {
    precondition {
      condition     = startswith(var.oidc_provider_url, "https://")
      error_message = "oidc_provider_url must be the cluster's OIDC issuer URL (https://oidc.eks...) when oidc_provider_arn is set."
    }
  }
}

resource "aws_iam_role_policy_attachment" "cluster" {
  count      = local.create_irsa ? 1 : 0
  role       = aws_iam_role.cluster[0].name
  policy_arn = aws_iam_policy.cluster_s3.arn
}

# --- instance profiles for the Ray cluster launcher (cluster/aws/cluster.yaml) --------------

data "aws_iam_policy_document" "ec2_trust" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "vm" {
  for_each           = var.create_instance_profiles ? toset(["head", "worker"]) : toset([])
  name               = "${var.bucket_name}-vm-${each.key}"
  description        = "promptcot-ray ${each.key} nodes started by the Ray cluster launcher"
  assume_role_policy = data.aws_iam_policy_document.ec2_trust.json
}

resource "aws_iam_role_policy_attachment" "vm_s3" {
  for_each   = aws_iam_role.vm
  role       = each.value.name
  policy_arn = aws_iam_policy.cluster_s3.arn
}

resource "aws_iam_instance_profile" "vm" {
  for_each = aws_iam_role.vm
  name     = each.value.name
  role     = each.value.name
}

# The head runs Ray's autoscaler, which starts and stops the worker VMs. It may touch only
# instances tagged with this cluster's name, and hand out only the worker role.
data "aws_iam_policy_document" "vm_autoscaler" {
  count = local.vm_role_count

  statement {
    #checkov:skip=CKV_AWS_356:EC2 Describe* calls support no resource-level permissions
    sid = "Describe"
    actions = [
      "ec2:DescribeImages",
      "ec2:DescribeInstances",
      "ec2:DescribeInstanceTypes",
      "ec2:DescribeSecurityGroups",
      "ec2:DescribeSubnets",
    ]
    resources = ["*"]
  }

  statement {
    sid       = "LaunchTaggedInstances"
    actions   = ["ec2:RunInstances"]
    resources = ["${local.ec2_arn}:instance/*"]

    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/ray-cluster-name"
      values   = [var.vm_cluster_name]
    }
  }

  statement {
    sid     = "LaunchWithNetworkAndImage"
    actions = ["ec2:RunInstances"]
    resources = [
      "${local.ec2_arn}:subnet/*",
      "${local.ec2_arn}:security-group/*",
      "${local.ec2_arn}:network-interface/*",
      "${local.ec2_arn}:volume/*",
      "${local.ec2_arn}:key-pair/*",
      "arn:${local.partition}:ec2:${var.region}::image/*",
    ]
  }

  statement {
    sid       = "TagAtLaunch"
    actions   = ["ec2:CreateTags"]
    resources = ["${local.ec2_arn}:instance/*"]

    condition {
      test     = "StringEquals"
      variable = "ec2:CreateAction"
      values   = ["RunInstances"]
    }
  }

  statement {
    sid       = "ManageClusterInstances"
    actions   = ["ec2:CreateTags", "ec2:TerminateInstances"]
    resources = ["${local.ec2_arn}:instance/*"]

    condition {
      test     = "StringEquals"
      variable = "ec2:ResourceTag/ray-cluster-name"
      values   = [var.vm_cluster_name]
    }
  }

  statement {
    sid       = "PassWorkerRole"
    actions   = ["iam:PassRole"]
    resources = [aws_iam_role.vm["worker"].arn]

    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "vm_autoscaler" {
  count  = local.vm_role_count
  name   = "ray-autoscaler"
  role   = aws_iam_role.vm["head"].id
  policy = data.aws_iam_policy_document.vm_autoscaler[0].json
}
