variable "name" {
  description = "Name prefix of the functions, topics and roles (e.g. prescient-prod)."
  type        = string
}

variable "scaler_zip" {
  description = "Path of the scaler's arm64 bootstrap.zip (cargo lambda build --release --arm64 -p prescient-scaler --output-format zip)."
  type        = string

  validation {
    condition     = endswith(var.scaler_zip, ".zip")
    error_message = "scaler_zip must be the path of a .zip built by cargo lambda."
  }
}

variable "notifier_zip" {
  description = "Path of the notifier's arm64 bootstrap.zip."
  type        = string

  validation {
    condition     = endswith(var.notifier_zip, ".zip")
    error_message = "notifier_zip must be the path of a .zip built by cargo lambda."
  }
}

variable "vpc_id" {
  description = "VPC the functions run in (they reach the private EKS endpoint and MSK)."
  type        = string
}

variable "vpc_cidr" {
  description = "CIDR of the VPC (Kafka and the Kubernetes API are inside it)."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets of the functions."
  type        = list(string)
}

variable "msk_cluster_arn" {
  description = "MSK cluster whose scaling-decisions topic drives the scaler."
  type        = string
}

variable "msk_cluster_name" {
  description = "Name of the MSK cluster (part of topic and group ARNs)."
  type        = string
}

variable "msk_cluster_uuid" {
  description = "UUID of the MSK cluster (part of topic and group ARNs)."
  type        = string
}

variable "eks_cluster_name" {
  description = "EKS cluster the scaler resizes (name)."
  type        = string
}

variable "node_group_arns" {
  description = "ARNs of the node groups the scaler may resize (nothing else)."
  type        = list(string)
}

variable "force_dry_run" {
  description = "Kill switch: the scaler handles every decision as dry-run (records, never applies)."
  type        = bool
  default     = true
}

variable "alert_emails" {
  description = "E-mail addresses subscribed to the alerts topic (each must confirm)."
  type        = list(string)
  default     = []
}

variable "kms_key_arn" {
  description = "KMS key for the topics, the webhook secret, the log groups and the functions' environment."
  type        = string
}

variable "log_retention_days" {
  description = "Days to keep the functions' logs."
  type        = number
  default     = 365
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
