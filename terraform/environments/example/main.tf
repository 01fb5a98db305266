# One `terraform apply` for Prescient on AWS: network, KMS, MSK, RDS,
# EKS with IRSA roles, ECR, and the two Lambda functions with their topics.
# Then: docs/deploy.md (push the image, create topics, kubectl apply -k).

provider "aws" {
  region = var.region

  default_tags {
    tags = merge(var.tags, {
      Project     = "prescient"
      Environment = var.environment
    })
  }
}

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  name      = "prescient-${var.environment}"
  namespace = "prescient"
  account   = data.aws_caller_identity.current.account_id
  partition = data.aws_partition.current.partition
  kafka_arn = "arn:${local.partition}:kafka:${var.region}:${local.account}"
  msk_path  = "${module.msk.cluster_name}/${module.msk.cluster_uuid}"
}

# One customer-managed key for everything Prescient stores.
data "aws_iam_policy_document" "kms" {
  #checkov:skip=CKV_AWS_111:Key policy: "*" is this key; the account-root statement is AWS's default key policy, so IAM policies decide who uses it.
  #checkov:skip=CKV_AWS_356:Key policy: resource "*" means the key the policy is attached to.
  #checkov:skip=CKV_AWS_109:Key policy: the account root administers its own key (AWS default), nothing is exposed outside the account.
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account}:root"]
    }
  }
  statement {
    sid       = "ServicesUseTheKey"
    actions   = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${var.region}.amazonaws.com", "cloudwatch.amazonaws.com", "sns.amazonaws.com"]
    }
  }
}

resource "aws_kms_key" "this" {
  description             = "Prescient ${var.environment}: data at rest"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms.json
}

resource "aws_kms_alias" "this" {
  name          = "alias/${local.name}"
  target_key_id = aws_kms_key.this.key_id
}

module "network" {
  source      = "../../modules/network"
  name        = local.name
  cidr        = var.vpc_cidr
  azs         = var.azs
  kms_key_arn = aws_kms_key.this.arn
}

module "msk" {
  source               = "../../modules/msk"
  name                 = local.name
  vpc_id               = module.network.vpc_id
  subnet_ids           = module.network.private_subnet_ids
  client_cidrs         = [module.network.vpc_cidr]
  broker_count         = length(var.azs)
  broker_instance_type = var.msk_broker_instance_type
  kms_key_arn          = aws_kms_key.this.arn
}

module "rds" {
  source              = "../../modules/rds"
  name                = local.name
  vpc_id              = module.network.vpc_id
  subnet_ids          = module.network.private_subnet_ids
  client_cidrs        = [module.network.vpc_cidr]
  instance_class      = var.db_instance_class
  deletion_protection = var.db_deletion_protection
  kms_key_arn         = aws_kms_key.this.arn
}

module "ecr" {
  source       = "../../modules/ecr"
  repositories = ["prescient"]
  kms_key_arn  = aws_kms_key.this.arn
}

# What each component may do on MSK (IAM auth): the dataflow reads
# user-events and writes dead letters; the forecaster writes decisions and
# reads the scaler's outcomes (scaling-actions) into PostgreSQL.
data "aws_iam_policy_document" "dataflow" {
  statement {
    actions   = ["kafka-cluster:Connect", "kafka-cluster:DescribeCluster"]
    resources = [module.msk.cluster_arn]
  }
  statement {
    actions   = ["kafka-cluster:DescribeTopic", "kafka-cluster:ReadData"]
    resources = ["${local.kafka_arn}:topic/${local.msk_path}/user-events"]
  }
  statement {
    actions   = ["kafka-cluster:DescribeTopic", "kafka-cluster:WriteData"]
    resources = ["${local.kafka_arn}:topic/${local.msk_path}/user-events-dlq"]
  }
  statement {
    actions   = ["kafka-cluster:DescribeGroup", "kafka-cluster:AlterGroup"]
    resources = ["${local.kafka_arn}:group/${local.msk_path}/prescient-*"]
  }
}

data "aws_iam_policy_document" "forecaster" {
  statement {
    actions   = ["kafka-cluster:Connect", "kafka-cluster:DescribeCluster"]
    resources = [module.msk.cluster_arn]
  }
  statement {
    actions   = ["kafka-cluster:DescribeTopic", "kafka-cluster:WriteData"]
    resources = ["${local.kafka_arn}:topic/${local.msk_path}/scaling-decisions"]
  }
  statement {
    # Reads the scaler's outcomes; writes its own alerts (docs/forecaster.md).
    actions   = ["kafka-cluster:DescribeTopic", "kafka-cluster:ReadData", "kafka-cluster:WriteData"]
    resources = ["${local.kafka_arn}:topic/${local.msk_path}/scaling-actions"]
  }
  statement {
    actions   = ["kafka-cluster:DescribeGroup", "kafka-cluster:AlterGroup"]
    resources = ["${local.kafka_arn}:group/${local.msk_path}/prescient-forecaster-actions"]
  }
}

module "eks" {
  source                       = "../../modules/eks"
  name                         = local.name
  kubernetes_version           = var.kubernetes_version
  vpc_id                       = module.network.vpc_id
  subnet_ids                   = module.network.private_subnet_ids
  endpoint_public_access_cidrs = var.api_allowed_cidrs
  kms_key_arn                  = aws_kms_key.this.arn
  scaler_role_arn              = module.functions.scaler_role_arn
  node_groups = { for k, g in var.node_groups : k => {
    instance_types = g.instance_types
    min_size       = g.min_size
    max_size       = g.max_size
    desired_size   = g.desired_size
  } }
  service_accounts = {
    dataflow   = { namespace = local.namespace, name = "prescient-dataflow", policy_json = data.aws_iam_policy_document.dataflow.json }
    forecaster = { namespace = local.namespace, name = "prescient-forecaster", policy_json = data.aws_iam_policy_document.forecaster.json }
    dashboard  = { namespace = local.namespace, name = "prescient-dashboard" }
  }
}

module "functions" {
  source           = "../../modules/functions"
  name             = local.name
  scaler_zip       = "${var.lambda_artifacts_dir}/prescient-scaler/bootstrap.zip"
  notifier_zip     = "${var.lambda_artifacts_dir}/prescient-notifier/bootstrap.zip"
  vpc_id           = module.network.vpc_id
  vpc_cidr         = module.network.vpc_cidr
  subnet_ids       = module.network.private_subnet_ids
  msk_cluster_arn  = module.msk.cluster_arn
  msk_cluster_name = module.msk.cluster_name
  msk_cluster_uuid = module.msk.cluster_uuid
  eks_cluster_name = local.name
  node_group_arns  = values(module.eks.node_group_arns)
  force_dry_run    = var.scaler_force_dry_run
  alert_emails     = var.alert_emails
  kms_key_arn      = aws_kms_key.this.arn
}
