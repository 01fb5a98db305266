# The two Lambda functions and what connects them:
#
#   MSK scaling-decisions ──event source mapping──▶ scaler ──▶ EKS (node groups, Deployments)
#                                                     │ outcomes
#                                                     ▼
#                                             SNS <name>-actions ──▶ notifier ──▶ webhook / SNS <name>-alerts (e-mail)
#   CloudWatch alarms (function errors) ─────────────────────────────────────────▶ SNS <name>-alerts
#
# Least privilege: the scaler may describe/update only the named node groups
# and describe only the named cluster, read only scaling-decisions with its own
# consumer group, publish only to the actions topic (and the alerts topic for
# batches that fail for good); the notifier may read only the webhook secret
# and publish only to the alerts topic.

data "aws_region" "current" {}
data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  region        = data.aws_region.current.region
  account       = data.aws_caller_identity.current.account_id
  partition     = data.aws_partition.current.partition
  kafka_prefix  = "arn:${local.partition}:kafka:${local.region}:${local.account}"
  msk_path      = "${var.msk_cluster_name}/${var.msk_cluster_uuid}"
  consumer      = "prescient-scaler"
  cluster_arn   = "arn:${local.partition}:eks:${local.region}:${local.account}:cluster/${var.eks_cluster_name}"
  function_base = { scaler = var.scaler_zip, notifier = var.notifier_zip }
}

# Topics and the webhook secret.

resource "aws_sns_topic" "actions" {
  name              = "${var.name}-scaling-actions"
  kms_master_key_id = var.kms_key_arn
  tags              = var.tags
}

resource "aws_sns_topic" "alerts" {
  name              = "${var.name}-alerts"
  kms_master_key_id = var.kms_key_arn
  tags              = var.tags
}

resource "aws_sns_topic_subscription" "alert_email" {
  for_each  = toset(var.alert_emails)
  topic_arn = aws_sns_topic.alerts.arn
  protocol  = "email"
  endpoint  = each.value
}

# The Slack-compatible webhook URL. Terraform creates the secret, never its
# value: aws secretsmanager put-secret-value --secret-id <arn> --secret-string 'https://hooks…'
resource "aws_secretsmanager_secret" "webhook" {
  #checkov:skip=CKV2_AWS_57:A chat webhook URL is rotated by re-issuing it in the chat tool, not by a rotation Lambda.
  name        = "${var.name}/webhook"
  description = "Webhook URL the notifier posts to"
  kms_key_id  = var.kms_key_arn
  tags        = var.tags
}

# Network: the functions reach the AWS APIs (endpoints) and the private
# Kubernetes API on 443, nothing else.

resource "aws_security_group" "functions" {
  name        = "${var.name}-functions"
  description = "Prescient Lambda functions: HTTPS inside the VPC only"
  vpc_id      = var.vpc_id
  tags        = var.tags

  egress {
    description = "HTTPS to VPC endpoints and the EKS API"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = [var.vpc_cidr]
  }
}

# Roles.

data "aws_iam_policy_document" "lambda_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "function" {
  for_each           = local.function_base
  name               = "${var.name}-${each.key}"
  assume_role_policy = data.aws_iam_policy_document.lambda_assume.json
  tags               = var.tags
}

resource "aws_cloudwatch_log_group" "function" {
  for_each          = local.function_base
  name              = "/aws/lambda/${var.name}-${each.key}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

data "aws_iam_policy_document" "common" {
  #checkov:skip=CKV_AWS_111:Only the EC2 network-interface and X-Ray actions use "*": they support no resource-level permissions.
  #checkov:skip=CKV_AWS_356:Only the EC2 network-interface and X-Ray actions use "*": they support no resource-level permissions.
  for_each = local.function_base
  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.function[each.key].arn}:*"]
  }
  # Lambda in a VPC manages its network interfaces; these EC2 actions do not
  # support resource-level permissions.
  statement {
    sid = "VpcNetworkInterfaces"
    actions = [
      "ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces", "ec2:DeleteNetworkInterface",
      "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses",
      "ec2:DescribeSubnets", "ec2:DescribeSecurityGroups", "ec2:DescribeVpcs",
    ]
    resources = ["*"]
  }
  statement {
    sid       = "Tracing"
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    resources = ["*"]
  }
  statement {
    sid       = "UseTheKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.kms_key_arn]
  }
}

data "aws_iam_policy_document" "scaler" {
  source_policy_documents = [data.aws_iam_policy_document.common["scaler"].json]
  statement {
    sid       = "ResizeNodeGroups"
    actions   = ["eks:DescribeNodegroup", "eks:UpdateNodegroupConfig"]
    resources = var.node_group_arns
  }
  statement {
    sid       = "FindKubernetesApi"
    actions   = ["eks:DescribeCluster"]
    resources = [local.cluster_arn]
  }
  statement {
    sid       = "PublishOutcomes"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.actions.arn, aws_sns_topic.alerts.arn]
  }
  # The MSK event source mapping polls with the function's role.
  statement {
    sid       = "MskMetadata"
    actions   = ["kafka:DescribeCluster", "kafka:DescribeClusterV2", "kafka:GetBootstrapBrokers"]
    resources = [var.msk_cluster_arn]
  }
  statement {
    sid     = "ReadScalingDecisions"
    actions = ["kafka-cluster:Connect", "kafka-cluster:DescribeGroup", "kafka-cluster:AlterGroup", "kafka-cluster:DescribeTopic", "kafka-cluster:ReadData"]
    resources = [
      var.msk_cluster_arn,
      "${local.kafka_prefix}:topic/${local.msk_path}/scaling-decisions",
      "${local.kafka_prefix}:group/${local.msk_path}/${local.consumer}",
    ]
  }
}

data "aws_iam_policy_document" "notifier" {
  source_policy_documents = [data.aws_iam_policy_document.common["notifier"].json]
  statement {
    sid       = "ReadWebhookUrl"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [aws_secretsmanager_secret.webhook.arn]
  }
  statement {
    sid       = "SendEmail"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alerts.arn]
  }
}

resource "aws_iam_role_policy" "scaler" {
  name   = "scaler"
  role   = aws_iam_role.function["scaler"].id
  policy = data.aws_iam_policy_document.scaler.json
}

resource "aws_iam_role_policy" "notifier" {
  name   = "notifier"
  role   = aws_iam_role.function["notifier"].id
  policy = data.aws_iam_policy_document.notifier.json
}

# Functions.

resource "aws_lambda_function" "scaler" {
  #checkov:skip=CKV_AWS_116:Invoked by the MSK event source mapping, whose on_failure destination (the alerts topic) plays the dead-letter role.
  #checkov:skip=CKV_AWS_272:Artifacts are built from this repository by cargo lambda; code signing needs a signing profile the example does not assume.
  function_name                  = "${var.name}-scaler"
  description                    = "Applies Prescient scaling decisions to EKS"
  role                           = aws_iam_role.function["scaler"].arn
  runtime                        = "provided.al2023"
  handler                        = "bootstrap"
  architectures                  = ["arm64"]
  filename                       = var.scaler_zip
  source_code_hash               = filebase64sha256(var.scaler_zip)
  memory_size                    = 256
  timeout                        = 60
  reserved_concurrent_executions = 2
  kms_key_arn                    = var.kms_key_arn
  tags                           = var.tags

  environment {
    variables = {
      PRESCIENT_ACTIONS_TOPIC_ARN = aws_sns_topic.actions.arn
      PRESCIENT_FORCE_DRY_RUN     = tostring(var.force_dry_run)
      RUST_LOG                    = "info"
    }
  }

  vpc_config {
    subnet_ids         = var.subnet_ids
    security_group_ids = [aws_security_group.functions.id]
  }

  tracing_config {
    mode = "Active"
  }

  logging_config {
    log_format = "JSON"
    log_group  = aws_cloudwatch_log_group.function["scaler"].name
  }

  depends_on = [aws_iam_role_policy.scaler]
}

resource "aws_lambda_function" "notifier" {
  #checkov:skip=CKV_AWS_116:Invoked by SNS; undeliverable messages are retried by SNS and counted in the notifier-errors alarm.
  #checkov:skip=CKV_AWS_272:Artifacts are built from this repository by cargo lambda; code signing needs a signing profile the example does not assume.
  function_name                  = "${var.name}-notifier"
  description                    = "Turns Prescient outcomes into chat and e-mail messages"
  role                           = aws_iam_role.function["notifier"].arn
  runtime                        = "provided.al2023"
  handler                        = "bootstrap"
  architectures                  = ["arm64"]
  filename                       = var.notifier_zip
  source_code_hash               = filebase64sha256(var.notifier_zip)
  memory_size                    = 128
  timeout                        = 30
  reserved_concurrent_executions = 2
  kms_key_arn                    = var.kms_key_arn
  tags                           = var.tags

  environment {
    variables = {
      PRESCIENT_WEBHOOK_SECRET_ID = aws_secretsmanager_secret.webhook.arn
      PRESCIENT_EMAIL_TOPIC_ARN   = aws_sns_topic.alerts.arn
      RUST_LOG                    = "info"
    }
  }

  vpc_config {
    subnet_ids         = var.subnet_ids
    security_group_ids = [aws_security_group.functions.id]
  }

  tracing_config {
    mode = "Active"
  }

  logging_config {
    log_format = "JSON"
    log_group  = aws_cloudwatch_log_group.function["notifier"].name
  }

  depends_on = [aws_iam_role_policy.notifier]
}

# scaling-decisions → scaler, reporting per-record failures so that only
# those are retried.
resource "aws_lambda_event_source_mapping" "decisions" {
  event_source_arn        = var.msk_cluster_arn
  function_name           = aws_lambda_function.scaler.arn
  topics                  = ["scaling-decisions"]
  starting_position       = "LATEST"
  batch_size              = 100
  function_response_types = ["ReportBatchItemFailures"]

  amazon_managed_kafka_event_source_config {
    consumer_group_id = local.consumer
  }

  destination_config {
    on_failure {
      destination_arn = aws_sns_topic.alerts.arn
    }
  }
}

# actions → notifier.
resource "aws_sns_topic_subscription" "notifier" {
  topic_arn = aws_sns_topic.actions.arn
  protocol  = "lambda"
  endpoint  = aws_lambda_function.notifier.arn
}

resource "aws_lambda_permission" "notifier_from_sns" {
  statement_id  = "AllowActionsTopic"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.notifier.function_name
  principal     = "sns.amazonaws.com"
  source_arn    = aws_sns_topic.actions.arn
}

# Alarms on the functions themselves (the Prometheus alerts cover the rest).
resource "aws_cloudwatch_metric_alarm" "errors" {
  for_each            = { scaler = aws_lambda_function.scaler.function_name, notifier = aws_lambda_function.notifier.function_name }
  alarm_name          = "${var.name}-${each.key}-errors"
  alarm_description   = "Prescient ${each.key} function errors (docs/runbook.md#prescientscalingfailures)"
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = each.value }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alerts.arn]
  ok_actions          = [aws_sns_topic.alerts.arn]
  tags                = var.tags
}
