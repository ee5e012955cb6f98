variable "region" {
  description = "AWS region of the bucket, the KMS key and the clusters that use them."
  type        = string
  default     = "us-east-1"
}

variable "bucket_name" {
  description = "Name of the run-data bucket (globally unique). The access-log bucket is named \"<bucket_name>-logs\"."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,56}[a-z0-9]$", var.bucket_name))
    error_message = "bucket_name must be 3-58 lowercase letters, digits, dots or hyphens (58, so that \"-logs\" still fits S3's 63)."
  }
}

variable "prefixes" {
  description = "Key prefixes, without slashes at either end. runs: the clusters read and write run directories there (a job's storage.run_dir is s3://<bucket>/<runs> or a folder below it). code: the repository zips jobs use as working_dir (the clusters may only read them)."
  type = object({
    runs = string
    code = string
  })
  default = {
    runs = "runs"
    code = "code"
  }

  validation {
    condition     = alltrue([for prefix in values(var.prefixes) : can(regex("^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$", prefix))])
    error_message = "Each prefix must look like \"runs\" or \"team/runs\": no leading or trailing slash."
  }
}

variable "tmp_expiration_days" {
  description = "Objects under tmp/ (scratch uploads, ad-hoc exports) are deleted this many days after creation."
  type        = number
  default     = 7
}

variable "noncurrent_version_expiration_days" {
  description = "Overwritten or deleted object versions are kept this many days (undo window), then deleted."
  type        = number
  default     = 30
}

variable "log_retention_days" {
  description = "S3 server access logs are kept this many days."
  type        = number
  default     = 365
}

variable "oidc_provider_arn" {
  description = "ARN of the EKS cluster's IAM OIDC provider (aws_iam_openid_connect_provider). Empty: no IRSA role is created."
  type        = string
  default     = ""
}

variable "oidc_provider_url" {
  description = "Issuer URL of the EKS cluster's OIDC provider (https://oidc.eks.<region>.amazonaws.com/id/<id>), as `aws eks describe-cluster` prints it."
  type        = string
  default     = ""
}

variable "k8s_namespace" {
  description = "Kubernetes namespace of the Ray pods (cluster/kuberay uses \"promptcot\")."
  type        = string
  default     = "promptcot"
}

variable "k8s_service_account" {
  description = "Kubernetes service account of the Ray pods, the only one allowed to assume the IRSA role."
  type        = string
  default     = "promptcot-ray"
}

variable "create_instance_profiles" {
  description = "Create the head and worker instance profiles for the VM cluster launcher (cluster/aws/cluster.yaml)."
  type        = bool
  default     = false
}

variable "vm_cluster_name" {
  description = "cluster_name in cluster/aws/cluster.yaml: the head may only start, tag and terminate instances tagged with it."
  type        = string
  default     = "promptcot-ray"
}

variable "tags" {
  description = "Tags applied to every resource."
  type        = map(string)
  default = {
    project = "promptcot-ray"
  }
}
