output "endpoint" {
  description = "host:port of the database."
  value       = aws_db_instance.this.endpoint
}

output "address" {
  description = "Host name of the database."
  value       = aws_db_instance.this.address
}

output "database_name" {
  description = "Name of Prescient's database."
  value       = aws_db_instance.this.db_name
}

output "master_user_secret_arn" {
  description = "Secrets Manager secret with the master user's credentials (JSON: username, password)."
  value       = aws_db_instance.this.master_user_secret[0].secret_arn
}
