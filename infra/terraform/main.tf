# Storage for promptcot-ray: the run-data bucket (run directories and the code zips jobs
# run from), encrypted with a customer-managed KMS key, and a bucket for its access logs.
# iam.tf holds the roles the clusters use to reach it.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  # Both buckets get the same baseline: versioning, no public access, no ACLs, TLS only.
  buckets = {
    data = aws_s3_bucket.data.id
    logs = aws_s3_bucket.logs.id
  }
}

# --- buckets --------------------------------------------------------------------------------

resource "aws_s3_bucket" "data" {
  #checkov:skip=CKV_AWS_144:cross-region replication doubles the storage of TB-scale runs; versioning covers mistakes and every output can be recomputed by re-running the jobs
  #checkov:skip=CKV2_AWS_62:no consumer subscribes to object events; jobs find their inputs by listing the run directory
  bucket = var.bucket_name
}

resource "aws_s3_bucket" "logs" {
  #checkov:skip=CKV_AWS_18:this is the access-log target; logging it into itself would loop
  #checkov:skip=CKV_AWS_145:S3 server access log delivery supports only SSE-S3 on the target bucket, not SSE-KMS
  #checkov:skip=CKV_AWS_144:access logs are an audit trail kept in-region for log_retention_days; no second copy is required
  #checkov:skip=CKV2_AWS_62:nothing consumes log-delivery events
  bucket = "${var.bucket_name}-logs"
}

resource "aws_s3_bucket_logging" "data" {
  bucket        = aws_s3_bucket.data.id
  target_bucket = aws_s3_bucket.logs.id
  target_prefix = "s3-access/${var.bucket_name}/"
}

# --- encryption -----------------------------------------------------------------------------

resource "aws_kms_key" "data" {
  description             = "promptcot-ray run data in s3://${var.bucket_name}"
  enable_key_rotation     = true
  rotation_period_in_days = 365
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms.json
}

resource "aws_kms_alias" "data" {
  name          = "alias/${var.bucket_name}"
  target_key_id = aws_kms_key.data.key_id
}

# AWS's default key policy, written out: the account administers the key through IAM, and
# iam.tf grants the cluster roles Decrypt/GenerateDataKey through S3 only.
data "aws_iam_policy_document" "kms" {
  #checkov:skip=CKV_AWS_109:in a key policy, resource "*" is this key only; the account root delegates to IAM (AWS's default key policy)
  #checkov:skip=CKV_AWS_111:in a key policy, resource "*" is this key only; the account root delegates to IAM (AWS's default key policy)
  #checkov:skip=CKV_AWS_356:in a key policy, resource "*" is this key only; the account root delegates to IAM (AWS's default key policy)
  statement {
    sid       = "AccountAdministersKeyThroughIAM"
    actions   = ["kms:*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "data" {
  bucket = aws_s3_bucket.data.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.data.arn
    }
    # One data key per bucket instead of per object: far fewer KMS calls for millions of
    # small Parquet parts.
    bucket_key_enabled = true
  }
}

# Log delivery writes only to SSE-S3 buckets (see the skip on aws_s3_bucket.logs).
resource "aws_s3_bucket_server_side_encryption_configuration" "logs" {
  bucket = aws_s3_bucket.logs.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

# --- baseline shared by both buckets --------------------------------------------------------

resource "aws_s3_bucket_versioning" "all" {
  for_each = local.buckets
  bucket   = each.value

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_public_access_block" "all" {
  for_each                = local.buckets
  bucket                  = each.value
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

# ACLs off: the bucket owner owns every object, access is decided by policies alone.
resource "aws_s3_bucket_ownership_controls" "all" {
  for_each = local.buckets
  bucket   = each.value

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

# --- bucket policies ------------------------------------------------------------------------

resource "aws_s3_bucket_policy" "all" {
  for_each = {
    data = data.aws_iam_policy_document.tls_only["data"].json
    logs = data.aws_iam_policy_document.logs_bucket.json
  }
  bucket = local.buckets[each.key]
  policy = each.value

  depends_on = [aws_s3_bucket_public_access_block.all]
}

# Refuse plain-HTTP requests from anyone (AWS endpoints already require TLS 1.2 or newer).
data "aws_iam_policy_document" "tls_only" {
  for_each = local.buckets

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = ["arn:${local.partition}:s3:::${each.value}", "arn:${local.partition}:s3:::${each.value}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

# The S3 logging service writes here for the data bucket of this account only.
data "aws_iam_policy_document" "logs_bucket" {
  source_policy_documents = [data.aws_iam_policy_document.tls_only["logs"].json]

  statement {
    sid       = "S3ServerAccessLogDelivery"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.logs.arn}/s3-access/*"]

    principals {
      type        = "Service"
      identifiers = ["logging.s3.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = [aws_s3_bucket.data.arn]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

# --- lifecycle ------------------------------------------------------------------------------

resource "aws_s3_bucket_lifecycle_configuration" "data" {
  bucket = aws_s3_bucket.data.id

  rule {
    id     = "expire-tmp"
    status = "Enabled"

    filter {
      prefix = "tmp/"
    }
    expiration {
      days = var.tmp_expiration_days
    }
    noncurrent_version_expiration {
      noncurrent_days = 1
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }

  # Run directories are kept (jobs resume from them; checkpoints are needed to continue
  # training). What expires is history: overwritten versions, e.g. of rewritten ledgers and
  # markers, after the undo window, and the parts of uploads a killed job left behind.
  rule {
    id     = "expire-noncurrent-versions"
    status = "Enabled"

    filter {}
    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_expiration_days
    }
    expiration {
      expired_object_delete_marker = true
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "logs" {
  bucket = aws_s3_bucket.logs.id

  rule {
    id     = "expire-logs"
    status = "Enabled"

    filter {}
    expiration {
      days = var.log_retention_days
    }
    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_expiration_days
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }
}
