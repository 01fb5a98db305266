output "kafka_bootstrap_brokers" {
  description = "MSK bootstrap brokers (TLS + IAM, port 9098)."
  value       = module.msk.bootstrap_brokers_iam
}

output "database_endpoint" {
  description = "PostgreSQL host:port."
  value       = module.rds.endpoint
}

output "database_secret_arn" {
  description = "Secrets Manager secret with the database credentials (JSON username/password), managed by RDS."
  value       = module.rds.master_user_secret_arn
}

output "cluster_name" {
  description = "EKS cluster name (aws eks update-kubeconfig --name …)."
  value       = module.eks.cluster_name
}

output "dashboard_url" {
  description = "Where the dashboard is served once the eks overlay's Ingress has a load balancer and DNS points at it."
  value       = "https://${var.dashboard_hostname}"
}

output "ecr_repository_url" {
  description = "Push the prescient image here."
  value       = module.ecr.repository_urls["prescient"]
}

output "scaler_function_arn" {
  description = "ARN of the scaler function."
  value       = module.functions.scaler_function_arn
}

output "notifier_function_arn" {
  description = "ARN of the notifier function."
  value       = module.functions.notifier_function_arn
}

output "alerts_topic_arn" {
  description = "SNS topic for alerts (subscribe more endpoints here)."
  value       = module.functions.alerts_topic_arn
}

output "webhook_secret_arn" {
  description = "Put the chat webhook URL into this secret."
  value       = module.functions.webhook_secret_arn
}

output "kustomize_env" {
  description = "Contents of infra/k8s/overlays/eks/aws.env: terraform output -raw kustomize_env > infra/k8s/overlays/eks/aws.env"
  value = join("\n", [
    "IMAGE=${module.ecr.repository_urls["prescient"]}:${var.image_tag}",
    "DATAFLOW_ROLE_ARN=${module.eks.irsa_role_arns["dataflow"]}",
    "FORECASTER_ROLE_ARN=${module.eks.irsa_role_arns["forecaster"]}",
    "DASHBOARD_ROLE_ARN=${module.eks.irsa_role_arns["dashboard"]}",
    "KAFKA_BROKERS=${module.msk.bootstrap_brokers_iam}",
    "AWS_REGION=${var.region}",
    "VPC_CIDR=${module.network.vpc_cidr}",
    "DASHBOARD_HOST=${var.dashboard_hostname}",
    "",
  ])
}
