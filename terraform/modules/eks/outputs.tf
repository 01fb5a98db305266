output "cluster_name" {
  description = "Name of the EKS cluster."
  value       = aws_eks_cluster.this.name
}

output "cluster_arn" {
  description = "ARN of the EKS cluster."
  value       = aws_eks_cluster.this.arn
}

output "cluster_endpoint" {
  description = "Kubernetes API endpoint."
  value       = aws_eks_cluster.this.endpoint
}

output "node_group_arns" {
  description = "ARNs of the managed node groups, by name."
  value       = { for k, g in aws_eks_node_group.this : k => g.arn }
}

output "irsa_role_arns" {
  description = "IAM role of each component's service account, by component."
  value       = { for k, r in aws_iam_role.irsa : k => r.arn }
}

output "oidc_provider_arn" {
  description = "IAM OIDC provider of the cluster (for more IRSA roles)."
  value       = aws_iam_openid_connect_provider.eks.arn
}
