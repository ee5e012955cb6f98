# Terraform and provider versions. `terraform init` writes .terraform.lock.hcl with the exact
# provider version and checksums it picked: commit that file so every apply uses the same one.
terraform {
  required_version = ">= 1.6.0, < 2.0.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.0"
    }
  }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = var.tags
  }
}
