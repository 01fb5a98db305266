output "scaler_function_arn" {
  description = "ARN of the scaler function."
  value       = aws_lambda_function.scaler.arn
}

output "notifier_function_arn" {
  description = "ARN of the notifier function."
  value       = aws_lambda_function.notifier.arn
}

output "scaler_role_arn" {
  description = "IAM role of the scaler (its EKS access entry and RBAC group prescient-scaler)."
  value       = aws_iam_role.function["scaler"].arn
}

output "actions_topic_arn" {
  description = "SNS topic of scaling outcomes."
  value       = aws_sns_topic.actions.arn
}

output "alerts_topic_arn" {
  description = "SNS topic of human-facing alerts (e-mail subscriptions, alarms)."
  value       = aws_sns_topic.alerts.arn
}

output "webhook_secret_arn" {
  description = "Secrets Manager secret to put the webhook URL into."
  value       = aws_secretsmanager_secret.webhook.arn
}
