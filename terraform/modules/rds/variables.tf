variable "name" {
  description = "Identifier of the database instance (and prefix of its resources)."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the database."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets (at least two zones) for the DB subnet group."
  type        = list(string)
}

variable "client_cidrs" {
  description = "CIDR blocks allowed to reach PostgreSQL on 5432."
  type        = list(string)
}

variable "engine_version" {
  description = "PostgreSQL major version."
  type        = string
  default     = "16"
}

variable "instance_class" {
  description = "Instance class of the database."
  type        = string
  default     = "db.m7g.large"

  validation {
    condition     = startswith(var.instance_class, "db.")
    error_message = "RDS instance classes start with \"db.\" (e.g. db.m7g.large)."
  }
}

variable "allocated_storage_gib" {
  description = "Initial storage, GiB (grows automatically up to max_allocated_storage_gib)."
  type        = number
  default     = 100
}

variable "max_allocated_storage_gib" {
  description = "Upper bound of storage autoscaling, GiB."
  type        = number
  default     = 1000
}

variable "multi_az" {
  description = "Standby in a second zone."
  type        = bool
  default     = true
}

variable "backup_retention_days" {
  description = "Days of automated backups (point-in-time recovery window)."
  type        = number
  default     = 14

  validation {
    condition     = var.backup_retention_days >= 1 && var.backup_retention_days <= 35
    error_message = "backup_retention_days must be between 1 and 35."
  }
}

variable "deletion_protection" {
  description = "Refuse to delete the database (turn off only to tear an environment down)."
  type        = bool
  default     = true
}

variable "kms_key_arn" {
  description = "KMS key for storage, Performance Insights and the credentials secret."
  type        = string
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
