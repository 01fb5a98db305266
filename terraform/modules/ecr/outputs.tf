output "repository_urls" {
  description = "Repository URLs (registry/name) by name, for docker push and the eks overlay."
  value       = { for k, r in aws_ecr_repository.this : k => r.repository_url }
}
