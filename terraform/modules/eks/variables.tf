variable "name" {
  description = "Name of the EKS cluster (and prefix of its resources)."
  type        = string
}

variable "kubernetes_version" {
  description = "Kubernetes version of the cluster (the manifests in infra/k8s are validated against it)."
  type        = string
  default     = "1.33"

  validation {
    condition     = can(regex("^1\\.(2[89]|3[0-9])$", var.kubernetes_version))
    error_message = "kubernetes_version must be 1.28 or later (the dataflow reads the pod-index label), e.g. \"1.33\"."
  }
}

variable "vpc_id" {
  description = "VPC of the cluster."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets for the control plane's network interfaces and the nodes."
  type        = list(string)
}

variable "endpoint_public_access_cidrs" {
  description = "CIDR blocks allowed to reach the public Kubernetes API endpoint; empty: private endpoint only."
  type        = list(string)
  default     = []
}

variable "kms_key_arn" {
  description = "KMS key that encrypts Kubernetes Secrets and the control plane log group."
  type        = string
}

variable "node_groups" {
  description = <<-EOT
    Managed node groups. min_size and max_size are the bounds the capacity
    planner uses for a `nodegroup` target (policy min_replicas/max_replicas
    divided by pods_per_node); desired_size is only the initial size, the
    scaler owns it afterwards. Labels are added to the nodes.
  EOT
  type = map(object({
    instance_types = list(string)
    ami_type       = optional(string, "AL2023_ARM_64_STANDARD")
    capacity_type  = optional(string, "ON_DEMAND")
    min_size       = number
    max_size       = number
    desired_size   = number
    disk_gib       = optional(number, 50)
    labels         = optional(map(string), {})
  }))

  validation {
    condition = alltrue([for g in values(var.node_groups) :
    g.min_size >= 0 && g.min_size <= g.desired_size && g.desired_size <= g.max_size])
    error_message = "Every node group needs 0 <= min_size <= desired_size <= max_size."
  }
}

variable "service_accounts" {
  description = "Kubernetes service accounts (namespace/name) that get an IAM role through IRSA, keyed by component; the policy JSON is attached to that role."
  type = map(object({
    namespace   = string
    name        = string
    policy_json = optional(string)
  }))
}

variable "scaler_role_arn" {
  description = "IAM role of the scaler function: gets an access entry in the Kubernetes group prescient-scaler (RBAC: get/patch deployments/scale, infra/k8s/overlays/eks)."
  type        = string
}

variable "log_retention_days" {
  description = "Days to keep control plane logs."
  type        = number
  default     = 365
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
