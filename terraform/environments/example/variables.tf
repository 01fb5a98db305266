variable "region" {
  description = "AWS region to deploy into."
  type        = string
  default     = "eu-west-1"
}

variable "environment" {
  description = "Environment name; resources are named prescient-<environment>."
  type        = string
  default     = "example"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.environment))
    error_message = "environment: 2-21 lowercase letters, digits and dashes, starting with a letter."
  }
}

variable "azs" {
  description = "Availability zones (two or three of the region)."
  type        = list(string)
  default     = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
}

variable "vpc_cidr" {
  description = "CIDR block of the VPC."
  type        = string
  default     = "10.40.0.0/16"
}

variable "kubernetes_version" {
  description = "EKS Kubernetes version (infra/k8s is validated against 1.33)."
  type        = string
  default     = "1.33"
}

variable "api_allowed_cidrs" {
  description = "CIDR blocks that may reach the Kubernetes API from outside the VPC; empty keeps the endpoint private."
  type        = list(string)
  default     = []
}

variable "node_groups" {
  description = "Managed node groups. min_size/max_size are the bounds the capacity planner uses for a nodegroup target; `prescient` runs Prescient itself."
  type = map(object({
    instance_types = list(string)
    min_size       = number
    max_size       = number
    desired_size   = number
  }))
  default = {
    prescient = { instance_types = ["m7g.xlarge"], min_size = 2, max_size = 4, desired_size = 3 }
    web       = { instance_types = ["m7g.large"], min_size = 2, max_size = 20, desired_size = 2 }
  }
}

variable "msk_broker_instance_type" {
  description = "MSK broker instance type."
  type        = string
  default     = "kafka.m7g.large"
}

variable "db_instance_class" {
  description = "RDS instance class."
  type        = string
  default     = "db.m7g.large"
}

variable "db_deletion_protection" {
  description = "Protect the database from deletion (set false only to destroy the environment)."
  type        = bool
  default     = true
}

variable "lambda_artifacts_dir" {
  description = "Directory holding scaler/bootstrap.zip and notifier/bootstrap.zip (cargo lambda's target/lambda)."
  type        = string
  default     = "../../../target/lambda"
}

variable "scaler_force_dry_run" {
  description = "Start with the scaler in dry-run (records decisions, applies nothing); set false to let it scale."
  type        = bool
  default     = true
}

variable "alert_emails" {
  description = "E-mail addresses that receive alerts and notifications."
  type        = list(string)
  default     = []
}

variable "image_tag" {
  description = "Tag of the prescient image pushed to ECR (infra/docker/Dockerfile)."
  type        = string
  default     = "0.1.0"
}

variable "dashboard_hostname" {
  description = "Host name the dashboard is served on (the eks overlay's Ingress; point DNS at its load balancer)."
  type        = string
  default     = "prescient.example.com"
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
