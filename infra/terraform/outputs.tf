output "bucket_name" {
  description = "The run-data bucket."
  value       = aws_s3_bucket.data.id
}

output "log_bucket_name" {
  description = "The bucket that receives the run-data bucket's access logs."
  value       = aws_s3_bucket.logs.id
}

output "kms_key_arn" {
  description = "The customer-managed key encrypting the run-data bucket."
  value       = aws_kms_key.data.arn
}

output "run_dir" {
  description = "Where the clusters may write: a job's storage.run_dir is this URI or a folder below it (cluster/kuberay/values.yaml run_dir)."
  value       = "s3://${aws_s3_bucket.data.id}/${var.prefixes.runs}"
}

output "code_uri_prefix" {
  description = "Upload the repository zips here; a job's runtime_env working_dir names one of them (cluster/kuberay/values.yaml code_uri)."
  value       = "s3://${aws_s3_bucket.data.id}/${var.prefixes.code}/"
}

output "cluster_role_arn" {
  description = "IAM role for the KubeRay pods: the eks.amazonaws.com/role-arn annotation in cluster/kuberay/serviceaccount.yaml. Null without oidc_provider_arn."
  value       = local.create_irsa ? aws_iam_role.cluster[0].arn : null
}

output "head_instance_profile_arn" {
  description = "Instance profile of the launcher's head node (cluster/aws/cluster.yaml). Null unless create_instance_profiles."
  value       = var.create_instance_profiles ? aws_iam_instance_profile.vm["head"].arn : null
}

output "worker_instance_profile_arn" {
  description = "Instance profile of the launcher's worker nodes (cluster/aws/cluster.yaml). Null unless create_instance_profiles."
  value       = var.create_instance_profiles ? aws_iam_instance_profile.vm["worker"].arn : null
}
