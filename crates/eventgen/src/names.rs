//! Names of the simulated estate's resources: functions, tables, buckets, stacks… Data, kept one list per line
//! group so it reads as a table.

pub const FUNCTIONS: &[&str] = &[
    "orders-processor", "image-resizer", "audit-forwarder", "nightly-report", "auth-token-validator",
    "payments-webhook", "email-sender", "thumbnail-generator", "search-indexer", "cost-anomaly-notifier",
    "slack-alerts", "cognito-post-confirmation", "kinesis-consumer", "s3-virus-scan", "ddb-stream-replicator",
];
pub const LOG_GROUPS: &[&str] = &[
    "/ecs/orders-api", "/aws/eks/prod-main/cluster", "/aws/rds/instance/orders-db/postgresql", "/var/log/messages",
    "/aws/apigateway/partner-webhooks", "/aws/codebuild/build-orders-api", "vpc-flow-logs", "/ecs/payments-service",
];
pub const TABLES: &[&str] = &[
    "orders", "customers", "sessions", "inventory", "payments", "feature-flags", "idempotency-keys",
    "terraform-locks", "user-preferences", "audit-events",
];
pub const DBS: &[&str] = &[
    "orders-db", "orders-db-replica-1", "analytics-warehouse", "keycloak-db", "legacy-mysql-01", "grafana-db",
];
pub const DB_CLUSTERS: &[&str] = &["orders-aurora", "payments-aurora-pg", "reporting-cluster"];
pub const STACKS: &[&str] = &[
    "orders-api-prod", "network-baseline", "eks-prod-main", "datadog-integration", "CDKToolkit", "payments-service",
    "data-lake-glue", "sso-permission-sets", "observability", "StackSet-guardduty-org-3f1e",
];
pub const PARAMS: &[&str] = &[
    "/prod/orders/db-url", "/prod/orders/api-key", "/shared/datadog/api-key", "/dev/feature-flags/checkout-v2",
    "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64", "/prod/payments/stripe-secret",
    "/cicd/github/token", "/eks/prod-main/cluster-endpoint",
];
pub const PARAM_PATHS: &[&str] = &["/prod/orders/", "/prod/payments/", "/shared/", "/dev/"];
pub const SECRETS: &[(&str, &str)] = &[
    ("prod/orders/db-credentials", "a1B2c3"), ("prod/payments/stripe", "Xy9Zq1"),
    ("shared/datadog-api-key", "Qw3Er5"), ("rds!db-3c4e8f1a-8b2d-4c1e-9f0a-1e2d3c4b5a69", "Tg7Hj2"),
    ("dev/orders/db-credentials", "Lk8Mn4"), ("cicd/dockerhub", "Pz0Ox6"),
];
pub const TOPICS: &[&str] = &[
    "orders-events", "alerts-critical", "alerts-warning", "s3-upload-notifications", "budget-alerts",
    "guardduty-findings",
];
pub const QUEUES: &[&str] = &[
    "orders-queue", "orders-dlq", "email-outbox", "image-resize-jobs", "audit-ingest", "search-index-updates",
];
pub const REPOS: &[&str] = &[
    "orders-api", "payments-service", "web-frontend", "base-images/python", "base-images/node", "datadog-agent",
    "search-indexer",
];
pub const ECS_CLUSTERS: &[&str] = &["prod-services", "staging-services", "batch-jobs"];
pub const ECS_SERVICES: &[&str] = &[
    "orders-api", "payments-service", "web-frontend", "search-indexer", "notification-worker",
];
pub const EKS_CLUSTERS: &[&str] = &["prod-main", "staging-main", "data-platform"];
pub const NODEGROUPS: &[&str] = &["general-2026-01", "spot-batch", "system-ng"];
pub const LBS: &[(&str, &str)] = &[
    ("orders-api-alb", "5f2c9a0e7d1b3c48"), ("web-frontend-alb", "8a7d6c5b4e3f2a19"),
    ("internal-grpc-nlb", "0c1d2e3f4a5b6c7d"), ("k8s-ingress-prodmain", "9e8d7c6b5a4f3e2d"),
];
pub const ASGS: &[&str] = &["eks-general-2026-01-3ac6b1d2", "web-frontend-asg", "bastion-asg", "batch-spot-asg"];
pub const DNS_NAMES: &[&str] = &["acme.example.", "internal.acme.example.", "api.acme.example."];
pub const RECORD_NAMES: &[&str] = &[
    "api.acme.example.", "www.acme.example.", "grafana.internal.acme.example.", "_acme-challenge.acme.example.",
];
pub const TRAILS: &[&str] = &["org-trail", "management-events", "s3-data-events"];
pub const CONFIG_RULES: &[&str] = &[
    "s3-bucket-public-read-prohibited", "encrypted-volumes", "iam-password-policy", "root-account-mfa-enabled",
    "restricted-ssh", "rds-storage-encrypted", "cloudtrail-enabled",
];
pub const OUS: &[&str] = &["ou-7k2m-3vx8q1ab", "ou-7k2m-9fj2kd0c", "r-7k2m"];
pub const ORG_POLICIES: &[&str] = &["p-FullAWSAccess", "p-9x8c7v6b", "p-4k3j2h1g"];
pub const GLUE_DBS: &[&str] = &["raw", "curated", "analytics", "cloudtrail_logs", "default"];
pub const GLUE_TABLES: &[&str] = &["orders", "events", "sessions", "clickstream", "cloudtrail", "cost_and_usage"];
pub const GLUE_JOBS: &[&str] = &["orders-etl", "clickstream-compaction", "cur-ingest"];
pub const CRAWLERS: &[&str] = &["raw-orders-crawler", "cloudtrail-crawler", "cur-crawler"];
pub const WORKGROUPS: &[&str] = &["primary", "analysts", "etl"];
pub const ALARMS: &[&str] = &[
    "orders-api-5xx-high", "orders-db-cpu-high", "sqs-orders-dlq-not-empty", "lambda-errors-orders-processor",
    "billing-estimated-charges", "eks-node-not-ready",
];
pub const DASHBOARDS: &[&str] = &["orders-overview", "platform-health", "cost"];
pub const DOCUMENTS: &[&str] = &[
    "AWS-RunShellScript", "AWS-RunPatchBaseline", "AWS-StartInteractiveCommand", "SSM-SessionManagerRunShell",
    "AWS-UpdateSSMAgent",
];
pub const KEY_PAIRS: &[&str] = &["ops-2024", "bastion", "legacy-deploy"];
pub const GROUPS: &[&str] = &["Admins", "Developers", "ReadOnly", "Billing", "SecurityAudit", "DataEngineers"];
pub const INLINE_POLICIES: &[&str] = &[
    "AllowS3ReadOrders", "KmsDecryptOrders", "AssumeDeployRole", "DenyOutsideRegions", "CloudWatchPutMetrics",
];
pub const MANAGED_POLICIES: &[&str] = &[
    "arn:aws:iam::aws:policy/ReadOnlyAccess", "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore",
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
    "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess", "arn:aws:iam::aws:policy/CloudWatchAgentServerPolicy",
    "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy", "arn:aws:iam::aws:policy/AdministratorAccess",
    "arn:aws:iam::aws:policy/SecurityAudit",
];
pub const CUSTOMER_POLICIES: &[&str] = &["orders-api-access", "ci-deploy", "data-lake-read", "boundary-developers"];
pub const BUCKET_SUFFIXES: &[&str] = &[
    "data-lake-raw", "artifacts", "static-assets", "uploads", "logs", "terraform-state", "data-lake-curated",
    "backups", "cloudtrail", "athena-results",
];
pub const OBJECT_KEYS: &[(&str, &str)] = &[
    ("uploads/2026/01/", ".jpg"), ("raw/orders/dt=2026-01-01/part-", ".snappy.parquet"), ("images/original/", ".png"),
    ("builds/orders-api/", ".zip"), ("exports/daily/", ".csv.gz"), ("athena/results/", ".csv"),
    ("env/prod/", ".tfstate"),
];
pub const INSTANCE_TYPES: &[&str] = &["m6i.large", "t3.medium", "c6g.xlarge", "r6i.2xlarge", "t3.micro", "m7g.large"];
pub const AZ_SUFFIXES: &[&str] = &["a", "b", "c"];
