//! The simulated organisation behind the traffic: accounts, IAM users, roles and their sessions, source
//! IPs, resource ids, and the weighted samplers over them. Built once per run from a fixed seed, so the
//! same users and resources appear whatever the event seed is.

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::catalog::{APIS, Api};
use crate::json;

/// Hard-coded: the population is the same for every run; only the event stream depends on the seed.
const WORLD_SEED: u64 = 0x6f70_656e_7472_6169;

pub struct Account {
    pub id: &'static str,
    pub alias: &'static str,
}

pub const ACCOUNTS: &[Account] = &[
    Account { id: "418295730164", alias: "acme-prod" },
    Account { id: "730512884926", alias: "acme-staging" },
    Account { id: "259614077385", alias: "acme-dev" },
    Account { id: "135790246811", alias: "acme-shared" },
    Account { id: "802311965440", alias: "acme-security" },
];
/// Relative share of activity per account, in the order of [`ACCOUNTS`].
const ACCOUNT_WEIGHTS: &[f64] = &[45.0, 15.0, 22.0, 12.0, 6.0];

/// Regions and their share of regional traffic.
pub const REGIONS: &[(&str, f64)] = &[
    ("us-east-1", 44.0),
    ("us-west-2", 18.0),
    ("eu-west-1", 12.0),
    ("us-east-2", 8.0),
    ("eu-central-1", 7.0),
    ("ap-southeast-2", 4.0),
    ("ap-northeast-1", 4.0),
    ("ap-south-1", 3.0),
];

/// How a principal calls AWS, which decides its user agent and a few record details.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Agent {
    Console,
    CliV2,
    CliV1,
    Boto3,
    Terraform,
    JavaSdk,
    GoSdk,
    /// A service acting through a service-linked or service role: `invokedBy`, no TLS details.
    Service(&'static str),
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    IamUser,
    AssumedRole,
    Root,
}

/// One caller: an IAM user, a role session, or an account root. Its `userIdentity` JSON is pre-rendered
/// in pieces around the parts that vary per event (the access key and the session creation date).
pub struct Principal {
    pub kind: Kind,
    pub account: usize,
    pub arn: String,
    /// `userIdentity` up to the opening quote of `accessKeyId`'s value.
    pub ident_head: String,
    pub keys: Vec<String>,
    /// After the access key: for role sessions, up to the opening quote of `creationDate`'s value.
    pub ident_mid: String,
    /// After the creation date; empty for principals without a session context.
    pub ident_tail: String,
    pub agent: Agent,
    pub home_ips: Vec<u32>,
    pub private_ips: bool,
    pub region: usize,
    /// Index into [`Principal`]s' role list, for role sessions: the role they assumed.
    pub role: Option<usize>,
    /// Session name, for role sessions.
    pub session: String,
    /// APIs this principal is restricted to (service roles), as indexes into [`APIS`].
    pub apis: Option<Vec<usize>>,
    pub session_max_secs: u32,
}

pub struct Role {
    pub name: String,
    pub arn: String,
    pub role_id: String,
}

/// A cumulative-weight sampler: O(log n) draws from any discrete distribution.
pub struct Cdf(Vec<u64>);

impl Cdf {
    pub fn new(weights: impl IntoIterator<Item = f64>) -> Cdf {
        let weights: Vec<f64> = weights.into_iter().collect();
        let total: f64 = weights.iter().sum();
        let mut acc = 0.0;
        let scale = (1u64 << 40) as f64 / total;
        Cdf(weights
            .iter()
            .map(|w| {
                acc += w;
                (acc * scale) as u64
            })
            .collect())
    }

    /// Zipf weights `1 / (rank + 1)^s` over `n` items.
    pub fn zipf(n: usize, s: f64) -> Cdf {
        Cdf::new((0..n).map(|i| 1.0 / ((i + 1) as f64).powf(s)))
    }

    pub fn sample(&self, rng: &mut impl RngCore) -> usize {
        let total = *self.0.last().unwrap_or(&1);
        let r = rng.next_u64() % total.max(1);
        self.0.partition_point(|&c| c <= r).min(self.0.len().saturating_sub(1))
    }
}

/// Uniform index below `n` (`n` > 0).
pub fn below(rng: &mut impl RngCore, n: usize) -> usize {
    ((rng.next_u32() as u64 * n as u64) >> 32) as usize
}

/// A skewed index below `n`: low indexes are much likelier (density ∝ 1/√i), so pools have hot items
/// and a long tail.
pub fn skewed(rng: &mut impl RngCore, n: usize) -> usize {
    let u = rng.next_u32() as u64;
    ((((u * u) >> 32) * n as u64) >> 32) as usize
}

/// True with probability `per_million / 1e6`.
pub fn chance(rng: &mut impl RngCore, per_million: u32) -> bool {
    below(rng, 1_000_000) < per_million as usize
}

pub struct World {
    pub users: Vec<Principal>,
    pub sessions: Vec<Principal>,
    pub roots: Vec<Principal>,
    pub roles: Vec<Role>,
    pub user_pick: Cdf,
    pub session_pick: Cdf,
    pub region_pick: Cdf,
    pub account_pick: Cdf,
    pub api_pick: Cdf,
    /// Per API (parallel to [`APIS`]): the `command/` part of an aws-cli v2 user agent.
    pub cli_commands: Vec<String>,
    pub read_only: Vec<bool>,
    pub root_apis: Vec<usize>,
    pub service_calls: Vec<(usize, &'static str)>,
    pub service_call_pick: Cdf,
    pub public_ips: Vec<String>,
    pub private_ips: Vec<String>,
    pub instances: Vec<String>,
    pub volumes: Vec<String>,
    pub security_groups: Vec<String>,
    pub vpcs: Vec<String>,
    pub subnets: Vec<String>,
    pub amis: Vec<String>,
    pub snapshots: Vec<String>,
    pub enis: Vec<String>,
    pub kms_keys: Vec<String>,
    pub vpc_endpoints: Vec<String>,
    pub zones: Vec<String>,
    pub detectors: Vec<String>,
    pub file_systems: Vec<String>,
    pub rest_apis: Vec<String>,
}

const FIRST_NAMES: &[&str] = &[
    "alice", "bob", "carlos", "diana", "ethan", "fatima", "george", "hana", "ivan", "julia", "kenji", "laura",
    "mohammed", "nina", "oliver", "priya", "quentin", "rosa", "samuel", "tara", "umar", "valeria", "wei", "xavier",
    "yuki", "zoe", "ahmed", "bianca", "chen", "dmitri", "elena", "felix", "grace", "hugo", "ines", "jamal", "kate",
    "liam", "maria", "noah", "olga", "pedro", "rahul", "sofia", "tomas", "uma", "victor", "william", "ximena", "yusuf",
    "amelia", "ben", "chloe", "daniel", "emma", "finn", "gabriel", "isla", "jack", "lucas",
];
const LAST_NAMES: &[&str] = &[
    "smith", "garcia", "nguyen", "mueller", "rossi", "kowalski", "tanaka", "okafor", "silva", "ivanova", "patel",
    "johnson", "brown", "martin", "dubois", "jensen", "novak", "haddad", "kim", "park", "lopez", "wilson", "moore",
    "taylor", "anderson", "thomas", "lee", "walker", "young", "hall", "allen", "wright", "scott", "green", "baker",
    "adams", "nelson", "hill", "campbell", "mitchell",
];
const SERVICE_USERS: &[(&str, Agent)] = &[
    ("svc-backup", Agent::GoSdk),
    ("svc-monitoring", Agent::GoSdk),
    ("ci-deploy", Agent::CliV2),
    ("jenkins", Agent::CliV1),
    ("terraform", Agent::Terraform),
    ("github-actions", Agent::CliV2),
    ("datadog", Agent::GoSdk),
    ("gitlab-runner", Agent::CliV2),
    ("s3-sync", Agent::CliV1),
    ("etl-loader", Agent::Boto3),
    ("reporting", Agent::Boto3),
    ("airflow", Agent::Boto3),
    ("vault-aws", Agent::GoSdk),
    ("splunk-reader", Agent::JavaSdk),
    ("cloud-custodian", Agent::Boto3),
    ("packer", Agent::GoSdk),
    ("ansible", Agent::Boto3),
    ("log-shipper", Agent::JavaSdk),
    ("prowler", Agent::Boto3),
    ("argo-cd", Agent::GoSdk),
    ("spinnaker", Agent::JavaSdk),
    ("buildkite-agent", Agent::CliV2),
    ("grafana-cloudwatch", Agent::GoSdk),
    ("elastic-agent", Agent::GoSdk),
    ("fluent-bit", Agent::GoSdk),
    ("kafka-connect-s3", Agent::JavaSdk),
    ("snowflake-stage", Agent::JavaSdk),
    ("metabase", Agent::JavaSdk),
    ("legacy-app", Agent::JavaSdk),
    ("sre-breakglass", Agent::Console),
];

/// How a role's sessions are named.
#[derive(Clone, Copy)]
enum SessionNames {
    /// People: SSO e-mail addresses or user names.
    Human,
    Fixed(&'static str),
    /// EC2 instance ids (instance-profile roles).
    Instance,
    /// 32 hex digits (ECS task ids).
    Task,
    /// `botocore-session-<epoch>`.
    Botocore,
}

struct RoleTemplate {
    name: &'static str,
    sessions: SessionNames,
    count: usize,
    agent: Agent,
    ec2: bool,
    apis: &'static [&'static str],
}

const fn role(name: &'static str, sessions: SessionNames, count: usize, agent: Agent) -> RoleTemplate {
    RoleTemplate { name, sessions, count, agent, ec2: false, apis: &[] }
}

const ROLE_TEMPLATES: &[RoleTemplate] = &[
    role("AWSReservedSSO_AdministratorAccess_", SessionNames::Human, 10, Agent::Console),
    role("AWSReservedSSO_PowerUserAccess_", SessionNames::Human, 12, Agent::CliV2),
    role("AWSReservedSSO_ReadOnlyAccess_", SessionNames::Human, 8, Agent::Console),
    role("OrganizationAccountAccessRole", SessionNames::Human, 3, Agent::Console),
    role("GitHubActionsDeployRole", SessionNames::Fixed("GitHubActions"), 1, Agent::Terraform),
    role("terraform-ci", SessionNames::Botocore, 2, Agent::Terraform),
    RoleTemplate { ec2: true, ..role("eks-nodegroup-NodeInstanceRole", SessionNames::Instance, 8, Agent::GoSdk) },
    RoleTemplate { ec2: true, ..role("AmazonSSMRoleForInstances", SessionNames::Instance, 6, Agent::GoSdk) },
    role("ecsTaskExecutionRole", SessionNames::Task, 6, Agent::GoSdk),
    role("orders-api-task-role", SessionNames::Task, 4, Agent::JavaSdk),
    role("lambda-orders-processor-role", SessionNames::Fixed("orders-processor"), 1, Agent::Boto3),
    role("lambda-image-resizer-role", SessionNames::Fixed("image-resizer"), 1, Agent::Boto3),
    role("lambda-audit-forwarder-role", SessionNames::Fixed("audit-forwarder"), 1, Agent::GoSdk),
    role("lambda-nightly-report-role", SessionNames::Fixed("nightly-report"), 1, Agent::Boto3),
    role("DatadogIntegrationRole", SessionNames::Fixed("DatadogAWSIntegration"), 1, Agent::GoSdk),
    role("data-pipeline-role", SessionNames::Botocore, 3, Agent::Boto3),
    RoleTemplate {
        apis: &[
            "ec2:RunInstances",
            "ec2:TerminateInstances",
            "ec2:DescribeInstances",
            "ec2:CreateTags",
            "ec2:DescribeImages",
            "ec2:DescribeLaunchTemplateVersions",
        ],
        ..role(
            "AWSServiceRoleForAutoScaling",
            SessionNames::Fixed("AutoScaling"),
            1,
            Agent::Service("autoscaling.amazonaws.com"),
        )
    },
    RoleTemplate {
        apis: &[
            "ec2:DescribeInstances",
            "ec2:DescribeSecurityGroups",
            "iam:GetRole",
            "iam:ListAttachedRolePolicies",
            "s3:GetBucketPolicy",
            "s3:GetBucketAcl",
            "s3:GetBucketVersioning",
            "s3:GetBucketEncryption",
            "lambda:ListFunctions20150331",
            "rds:DescribeDBInstances",
            "kms:DescribeKey",
            "kms:GetKeyRotationStatus",
            "config:PutEvaluations",
        ],
        ..role(
            "AWSServiceRoleForConfig",
            SessionNames::Fixed("AWSConfig-Describe"),
            1,
            Agent::Service("config.amazonaws.com"),
        )
    },
    role(
        "cloudformation-exec-role",
        SessionNames::Fixed("AWSCloudFormation"),
        1,
        Agent::Service("cloudformation.amazonaws.com"),
    ),
    RoleTemplate {
        apis: &[
            "ec2:DescribeInstances",
            "ec2:DescribeSecurityGroups",
            "ec2:DescribeVpcs",
            "ec2:DescribeSubnets",
            "iam:ListRoles",
            "s3:GetBucketPolicy",
            "s3:GetBucketAcl",
            "s3:ListBuckets",
        ],
        ..role(
            "AWSServiceRoleForAmazonGuardDuty",
            SessionNames::Fixed("GuardDuty"),
            1,
            Agent::Service("guardduty.amazonaws.com"),
        )
    },
    RoleTemplate {
        apis: &[
            "ec2:CreateNetworkInterface",
            "ec2:DeleteNetworkInterface",
            "ec2:DescribeNetworkInterfaces",
            "ec2:AttachNetworkInterface",
            "elasticloadbalancing:RegisterTargets",
            "elasticloadbalancing:DeregisterTargets",
        ],
        ..role("AWSServiceRoleForECS", SessionNames::Fixed("ECS"), 1, Agent::Service("ecs.amazonaws.com"))
    },
    RoleTemplate {
        apis: &["ec2:DescribeInstances", "ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets", "ec2:DescribeVpcs"],
        ..role(
            "AWSServiceRoleForElasticLoadBalancing",
            SessionNames::Fixed("ElasticLoadBalancing"),
            1,
            Agent::Service("elasticloadbalancing.amazonaws.com"),
        )
    },
];

/// Calls made by AWS services in their own name (`userIdentity.type` `AWSService`), with weights.
const SERVICE_CALLS: &[(&str, &str, f64)] = &[
    ("sts:AssumeRole", "lambda.amazonaws.com", 30.0),
    ("sts:AssumeRole", "ecs-tasks.amazonaws.com", 16.0),
    ("sts:AssumeRole", "ec2.amazonaws.com", 12.0),
    ("sts:AssumeRole", "eks.amazonaws.com", 4.0),
    ("sts:AssumeRole", "config.amazonaws.com", 3.0),
    ("sts:AssumeRole", "cloudformation.amazonaws.com", 3.0),
    ("sts:AssumeRole", "glue.amazonaws.com", 2.0),
    ("sts:AssumeRole", "states.amazonaws.com", 2.0),
    ("sts:AssumeRole", "ssm.amazonaws.com", 2.0),
    ("kms:Decrypt", "secretsmanager.amazonaws.com", 3.0),
    ("kms:GenerateDataKey", "s3.amazonaws.com", 3.0),
    ("kms:RotateKey", "kms.amazonaws.com", 0.3),
    ("secretsmanager:RotationSucceeded", "secretsmanager.amazonaws.com", 0.3),
    ("ec2:SharedSnapshotVolumeCreated", "ec2.amazonaws.com", 0.1),
];

/// APIs the account root user calls (rarely, and mostly from the console).
const ROOT_APIS: &[&str] = &[
    "signin:ConsoleLogin",
    "iam:GetAccountSummary",
    "iam:ListUsers",
    "iam:GetAccountPasswordPolicy",
    "iam:ListMFADevices",
    "iam:CreateAccessKey",
    "s3:ListBuckets",
    "ec2:DescribeInstances",
    "organizations:DescribeOrganization",
    "cloudtrail:DescribeTrails",
];

/// Zipf exponent of the API mix: the top API is ~15 % of traffic, the 300th ~0.03 %.
const API_ZIPF_S: f64 = 1.0;

/// `Describe*`, `List*`, `Get*`… and the few calls CloudTrail also marks read-only (KMS crypto, STS).
pub fn is_read_only(api: &Api) -> bool {
    const READ_PREFIXES: &[&str] = &[
        "Describe",
        "List",
        "Get",
        "Head",
        "Lookup",
        "Search",
        "BatchGet",
        "BatchCheck",
        "Query",
        "Scan",
        "Select",
        "Filter",
        "Validate",
        "Check",
        "Decrypt",
        "Encrypt",
        "GenerateDataKey",
        "GenerateRandom",
        "GenerateMac",
        "Verify",
        "Sign",
        "ReEncrypt",
        "AssumeRole",
        "DecodeAuthorizationMessage",
    ];
    READ_PREFIXES.iter().any(|p| api.name.starts_with(p)) && api.name != "GetSigninToken"
}

fn find_api(key: &str) -> usize {
    let (src, name) = key.split_once(':').unwrap_or(("", key));
    APIS.iter()
        .position(|a| a.name == name && a.svc.source.split('.').next() == Some(src))
        .unwrap_or_else(|| panic!("API {key} is not in the catalog"))
}

fn cli_command(api: &Api) -> String {
    let base = api.name.split(|c: char| c.is_ascii_digit()).next().unwrap_or(api.name);
    let mut s = String::with_capacity(base.len() + 16);
    s.push_str(api.svc.cli);
    s.push('.');
    for (i, c) in base.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                s.push('-');
            }
            s.push(c.to_ascii_lowercase());
        } else {
            s.push(c);
        }
    }
    s
}

fn id_of(rng: &mut ChaCha8Rng, prefix: &str, f: fn(&mut String, &mut ChaCha8Rng, usize), n: usize) -> String {
    let mut s = String::with_capacity(prefix.len() + n);
    s.push_str(prefix);
    f(&mut s, rng, n);
    s
}

fn pool(rng: &mut ChaCha8Rng, n: usize, prefix: &str, digits: usize) -> Vec<String> {
    (0..n).map(|_| id_of(rng, prefix, json::hex, digits)).collect()
}

impl World {
    pub fn build() -> World {
        let mut rng = ChaCha8Rng::seed_from_u64(WORLD_SEED);
        let rng = &mut rng;
        let account_pick = Cdf::new(ACCOUNT_WEIGHTS.iter().copied());
        let region_pick = Cdf::new(REGIONS.iter().map(|r| r.1));

        let public_ips: Vec<String> = (0..3000)
            .map(|_| {
                // Hard-coded: first octets of big ISP and cloud ranges, avoiding private and reserved space.
                const FIRST: &[u8] = &[
                    3, 13, 18, 24, 34, 35, 44, 52, 54, 63, 73, 76, 81, 86, 91, 98, 104, 108, 136, 141, 147, 151, 162,
                    176, 185, 188, 195, 203, 212, 213,
                ];
                let b = rng.next_u32().to_le_bytes();
                format!("{}.{}.{}.{}", FIRST[below(rng, FIRST.len())], b[0], b[1], b[2].max(1))
            })
            .collect();
        let private_ips: Vec<String> = (0..600)
            .map(|_| {
                let b = rng.next_u32().to_le_bytes();
                format!("10.{}.{}.{}", b[0] % 4, b[1], b[2].clamp(4, 254))
            })
            .collect();

        let mut users = Vec::new();
        let mut used = Vec::new();
        while users.len() < 170 {
            let f = FIRST_NAMES[below(rng, FIRST_NAMES.len())];
            let l = LAST_NAMES[below(rng, LAST_NAMES.len())];
            let name = match below(rng, 10) {
                0..=5 => format!("{f}.{l}"),
                6 | 7 => format!("{f}{}", &l[..1]),
                8 => f.to_string(),
                _ => format!("{}{l}", &f[..1]),
            };
            if used.contains(&name) {
                continue;
            }
            used.push(name.clone());
            let agent = match below(rng, 20) {
                0..=8 => Agent::Console,
                9..=13 => Agent::CliV2,
                14 | 15 => Agent::CliV1,
                16 | 17 => Agent::Boto3,
                _ => Agent::Terraform,
            };
            let account = account_pick.sample(rng);
            users.push(iam_user(rng, &name, account, agent, &public_ips, &region_pick));
        }
        for &(name, agent) in SERVICE_USERS {
            let account = account_pick.sample(rng);
            users.push(iam_user(rng, name, account, agent, &public_ips, &region_pick));
        }
        shuffle(rng, &mut users);

        let sso_suffixes: Vec<String> = (0..3).map(|_| id_of(rng, "", json::hex, 16)).collect();
        let mut roles = Vec::new();
        let mut sessions = Vec::new();
        for (account, acct) in ACCOUNTS.iter().enumerate() {
            for (t, tpl) in ROLE_TEMPLATES.iter().enumerate() {
                let name = if tpl.name.starts_with("AWSReservedSSO_") {
                    format!("{}{}", tpl.name, sso_suffixes[t % 3])
                } else if tpl.name.starts_with("eks-nodegroup-") {
                    format!("{}-{}", tpl.name, id_of(rng, "", json::base32, 12))
                } else {
                    tpl.name.to_string()
                };
                let path = if tpl.name.starts_with("AWSReservedSSO_") {
                    "aws-reserved/sso.amazonaws.com/"
                } else if tpl.name.starts_with("AWSServiceRoleFor") {
                    "aws-service-role/"
                } else {
                    ""
                };
                let role_id = id_of(rng, "AROA", json::base32, 17);
                let arn = format!("arn:aws:iam::{}:role/{path}{name}", acct.id);
                let role_idx = roles.len();
                roles.push(Role { name: name.clone(), arn: arn.clone(), role_id: role_id.clone() });
                let apis = (!tpl.apis.is_empty()).then(|| tpl.apis.iter().map(|k| find_api(k)).collect::<Vec<_>>());
                let count = if account == 4 { tpl.count.div_ceil(2) } else { tpl.count };
                for _ in 0..count {
                    let session = match tpl.sessions {
                        SessionNames::Human => {
                            let f = FIRST_NAMES[below(rng, FIRST_NAMES.len())];
                            let l = LAST_NAMES[below(rng, LAST_NAMES.len())];
                            if below(rng, 3) == 0 { format!("{f}.{l}") } else { format!("{f}.{l}@acme.example") }
                        }
                        SessionNames::Fixed(s) => s.to_string(),
                        SessionNames::Instance => id_of(rng, "i-0", json::hex, 16),
                        SessionNames::Task => id_of(rng, "", json::hex, 32),
                        SessionNames::Botocore => format!("botocore-session-{}", 1_767_000_000 + below(rng, 900_000)),
                    };
                    let agent = match (tpl.agent, below(rng, 10)) {
                        (Agent::Console, 0..=2) => Agent::CliV2,
                        (Agent::CliV2, 0 | 1) => Agent::Boto3,
                        (Agent::CliV2, 2 | 3) => Agent::Console,
                        (a, _) => a,
                    };
                    let mfa = matches!(tpl.sessions, SessionNames::Human) && below(rng, 3) == 0;
                    let key_count = 1 + below(rng, 3);
                    let keys = (0..key_count).map(|_| id_of(rng, "ASIA", json::base32, 16)).collect();
                    let ident_head = format!(
                        r#"{{"type":"AssumedRole","principalId":"{role_id}:{session}","arn":"arn:aws:sts::{id}:assumed-role/{name}/{session}","accountId":"{id}","accessKeyId":""#,
                        id = acct.id
                    );
                    let ident_mid = format!(
                        r#"","sessionContext":{{"sessionIssuer":{{"type":"Role","principalId":"{role_id}","arn":"{arn}","accountId":"{id}","userName":"{name}"}},"webIdFederationData":{{}},"attributes":{{"creationDate":""#,
                        id = acct.id
                    );
                    let mut ident_tail = format!(r#"","mfaAuthenticated":"{mfa}"}}"#);
                    if tpl.ec2 {
                        ident_tail.push_str(r#","ec2RoleDelivery":"2.0""#);
                    }
                    ident_tail.push('}');
                    if let Agent::Service(host) = tpl.agent {
                        ident_tail.push_str(r#","invokedBy":""#);
                        ident_tail.push_str(host);
                        ident_tail.push('"');
                    }
                    ident_tail.push('}');
                    let private_ips = tpl.ec2 || matches!(tpl.sessions, SessionNames::Task);
                    let home_ips = home_ips(rng, if private_ips { private_ips_len() } else { public_ips.len() });
                    sessions.push(Principal {
                        kind: Kind::AssumedRole,
                        account,
                        arn: format!("arn:aws:sts::{}:assumed-role/{name}/{session}", acct.id),
                        ident_head,
                        keys,
                        ident_mid,
                        ident_tail,
                        agent,
                        home_ips,
                        private_ips,
                        region: region_pick.sample(rng),
                        role: Some(role_idx),
                        session,
                        apis: apis.clone(),
                        session_max_secs: if tpl.ec2 { 6 * 3600 } else { 3600 },
                    });
                }
            }
        }
        // Spread the hot ranks of the Zipf pick over accounts and roles rather than in table order.
        shuffle(rng, &mut sessions);

        let roots = ACCOUNTS
            .iter()
            .enumerate()
            .map(|(account, acct)| Principal {
                kind: Kind::Root,
                account,
                arn: format!("arn:aws:iam::{}:root", acct.id),
                ident_head: format!(
                    r#"{{"type":"Root","principalId":"{id}","arn":"arn:aws:iam::{id}:root","accountId":"{id}","accessKeyId":""#,
                    id = acct.id
                ),
                keys: vec![id_of(rng, "ASIA", json::base32, 16)],
                ident_mid: "\"}".to_string(),
                ident_tail: String::new(),
                agent: Agent::Console,
                home_ips: home_ips(rng, public_ips.len()),
                private_ips: false,
                region: 0,
                role: None,
                session: String::new(),
                apis: None,
                session_max_secs: 0,
            })
            .collect();

        // Order APIs by tier (stable: table order breaks ties), then give them Zipf weights by that rank.
        let mut order: Vec<usize> = (0..APIS.len()).filter(|&i| APIS[i].tier > 0).collect();
        order.sort_by_key(|&i| APIS[i].tier);
        let mut weights = vec![0.0; APIS.len()];
        for (rank, &i) in order.iter().enumerate() {
            weights[i] = 1.0 / ((rank + 1) as f64).powf(API_ZIPF_S);
        }
        let api_pick = Cdf::new(weights);

        let service_calls: Vec<(usize, &'static str)> = SERVICE_CALLS.iter().map(|c| (find_api(c.0), c.1)).collect();
        let service_call_pick = Cdf::new(SERVICE_CALLS.iter().map(|c| c.2));

        World {
            user_pick: Cdf::zipf(users.len(), 0.9),
            session_pick: Cdf::zipf(sessions.len(), 0.9),
            users,
            sessions,
            roots,
            roles,
            region_pick,
            account_pick,
            api_pick,
            cli_commands: APIS.iter().map(cli_command).collect(),
            read_only: APIS.iter().map(is_read_only).collect(),
            root_apis: ROOT_APIS.iter().map(|k| find_api(k)).collect(),
            service_calls,
            service_call_pick,
            public_ips,
            private_ips,
            instances: pool(rng, 400, "i-0", 16),
            volumes: pool(rng, 300, "vol-0", 16),
            security_groups: pool(rng, 120, "sg-0", 16),
            vpcs: pool(rng, 12, "vpc-0", 16),
            subnets: pool(rng, 60, "subnet-0", 16),
            amis: pool(rng, 25, "ami-0", 16),
            snapshots: pool(rng, 150, "snap-0", 16),
            enis: pool(rng, 250, "eni-0", 16),
            kms_keys: (0..40)
                .map(|_| {
                    let mut s = String::new();
                    json::uuid(&mut s, rng);
                    s
                })
                .collect(),
            vpc_endpoints: pool(rng, 8, "vpce-0", 16),
            zones: (0..12).map(|_| id_of(rng, "Z0", json::base32, 19)).collect(),
            detectors: pool(rng, 5, "", 32),
            file_systems: pool(rng, 10, "fs-0", 16),
            rest_apis: (0..10).map(|_| id_of(rng, "", json::base32, 10).to_ascii_lowercase()).collect(),
        }
    }
}

fn private_ips_len() -> usize {
    600
}

fn home_ips(rng: &mut ChaCha8Rng, pool_len: usize) -> Vec<u32> {
    (0..1 + below(rng, 3)).map(|_| skewed(rng, pool_len) as u32).collect()
}

fn iam_user(
    rng: &mut ChaCha8Rng,
    name: &str,
    account: usize,
    agent: Agent,
    public_ips: &[String],
    region_pick: &Cdf,
) -> Principal {
    let id = ACCOUNTS[account].id;
    let user_id = id_of(rng, "AIDA", json::base32, 17);
    let arn = format!("arn:aws:iam::{id}:user/{name}");
    let keys = (0..1 + below(rng, 2)).map(|_| id_of(rng, "AKIA", json::base32, 16)).collect();
    Principal {
        kind: Kind::IamUser,
        account,
        ident_head: format!(
            r#"{{"type":"IAMUser","principalId":"{user_id}","arn":"{arn}","accountId":"{id}","accessKeyId":""#
        ),
        arn,
        keys,
        ident_mid: format!(r#"","userName":"{name}"}}"#),
        ident_tail: String::new(),
        agent,
        home_ips: home_ips(rng, public_ips.len()),
        private_ips: false,
        region: region_pick.sample(rng),
        role: None,
        session: name.to_string(),
        apis: None,
        session_max_secs: 0,
    }
}

fn shuffle<T>(rng: &mut ChaCha8Rng, v: &mut [T]) {
    for i in (1..v.len()).rev() {
        let j = below(rng, i + 1);
        v.swap(i, j);
    }
}
