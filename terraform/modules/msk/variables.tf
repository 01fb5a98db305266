variable "name" {
  description = "Name of the MSK cluster (and prefix of its resources)."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the cluster."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets, one per broker zone; the broker count must be a multiple of their number."
  type        = list(string)
}

variable "client_cidrs" {
  description = "CIDR blocks allowed to reach the brokers on the IAM-authenticated TLS port 9098."
  type        = list(string)
}

variable "kafka_version" {
  description = "Apache Kafka version of the cluster."
  type        = string
  default     = "3.8.x"
}

variable "broker_count" {
  description = "Number of brokers (a multiple of the number of subnets)."
  type        = number
  default     = 3

  validation {
    condition     = var.broker_count >= 2
    error_message = "At least two brokers: topics are replicated."
  }
}

variable "broker_instance_type" {
  description = "Broker instance type."
  type        = string
  default     = "kafka.m7g.large"

  validation {
    condition     = startswith(var.broker_instance_type, "kafka.")
    error_message = "MSK broker types start with \"kafka.\" (e.g. kafka.m7g.large)."
  }
}

variable "broker_volume_gib" {
  description = "EBS storage per broker, GiB."
  type        = number
  default     = 100
}

variable "kms_key_arn" {
  description = "KMS key for encryption at rest and of the broker log group."
  type        = string
}

variable "log_retention_days" {
  description = "Days to keep broker logs in CloudWatch Logs."
  type        = number
  default     = 365
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
