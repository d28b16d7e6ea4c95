//! `requestParameters` and `responseElements`: the shape vocabulary the catalog is written in, the
//! resource names they draw from, and how each shape is written. Shapes that CloudTrail pairs with a
//! `resources[]` entry (KMS keys, S3 buckets and objects, assumed roles, Lambda functions, DynamoDB
//! tables) record it on the generator while they write.

use crate::Gen;
use crate::json::{self, k, kv, q};
use crate::names::*;
use crate::world::{ACCOUNTS, REGIONS, below, skewed};

/// A value inside a request or response: a literal, or a resource drawn from the simulated estate.
#[derive(Clone, Copy, Debug)]
pub enum V {
    Lit(&'static str),
    Num(u32),
    Bool(bool),
    Uuid,
    Hex6,
    Hex32,
    Hex64,
    Region,
    Az,
    Ip,
    AccountId,
    Instance,
    Volume,
    Sg,
    Vpc,
    Subnet,
    Ami,
    Snapshot,
    Eni,
    EniAttach,
    Lt,
    KeyPair,
    User,
    Role,
    RoleArn,
    Group,
    PolicyArn,
    PolicyName,
    AccessKey,
    MfaArn,
    KmsArn,
    KmsAlias,
    Function,
    FunctionArn,
    LogGroup,
    LogGroupArn,
    LogStream,
    Table,
    TableArn,
    Db,
    DbArn,
    DbCluster,
    Stack,
    StackArn,
    ChangeSet,
    Param,
    ParamPath,
    Document,
    SessionId,
    Secret,
    SecretArn,
    Topic,
    TopicArn,
    SubscriptionArn,
    Queue,
    QueueUrl,
    QueueArn,
    Repo,
    Cluster,
    EcsService,
    TaskDef,
    TaskArn,
    EksCluster,
    Nodegroup,
    Lb,
    LbArn,
    TgArn,
    ListenerArn,
    Asg,
    Zone,
    ChangeId,
    DnsName,
    TrailArn,
    ConfigRule,
    Ou,
    OrgPolicy,
    Detector,
    FileSystem,
    RestApi,
    GlueDb,
    GlueTable,
    GlueJob,
    JobRun,
    Crawler,
    WorkGroup,
    Alarm,
    AlarmArn,
    Dashboard,
}

/// `requestParameters`.
#[derive(Clone, Copy, Debug)]
pub enum Req {
    /// `null`.
    N,
    /// `{}`.
    E,
    P1(&'static str, V),
    P2(&'static str, V, &'static str, V),
    P3(&'static str, V, &'static str, V, &'static str, V),
    /// EC2's item-set shape: `{"<set>":{"items":[{"<key>":…}]},"filterSet":{}}`, or a tag filter instead.
    Set(&'static str, &'static str, V),
    S(Sp),
}

/// Request shapes with more structure than a few keys.
#[derive(Clone, Copy, Debug)]
pub enum Sp {
    AssumeRole,
    KmsCrypto,
    KmsDataKey,
    KmsKey,
    CreateTags,
    RunInstances,
    SgRule,
    CreateSecurityGroup,
    S3Account,
    /// A bucket-level call; the string is the sub-resource query parameter (`policy`, `acl`…), if any.
    S3Bucket(&'static str),
    CreateBucket,
    S3Object,
    S3List,
    AttachRolePolicy,
    PutRolePolicy,
    CreateRole,
    TagRole,
    CreateUser,
    CreatePolicy,
    ConsoleLogin,
    UpdateFunctionCode,
    LambdaInvoke,
    GetMetricData,
    PutMetricAlarm,
    FilterLogEvents,
    LogsQuery,
    CreateTable,
    DdbItem,
    DdbQuery,
    CreateDbInstance,
    StackChange,
    SsmInstanceInfo,
    PutParameter,
    SendCommand,
    EcrImage,
    EcrLayer,
    RegisterTaskDefinition,
    UpdateService,
    Targets,
    ChangeRecordSets,
    LookupEvents,
    CreateTrail,
    PutEvaluations,
    AthenaQuery,
}

/// `responseElements` (always `null` for read-only calls and errors).
#[derive(Clone, Copy, Debug)]
pub enum Resp {
    RN,
    /// EC2's `{"requestId":…,"_return":true}`.
    Ret,
    R1(&'static str, V),
    RS(RSp),
}

#[derive(Clone, Copy, Debug)]
pub enum RSp {
    AssumeRole,
    SessionToken,
    CreateKey,
    KeyDeletion,
    RunInstances,
    CreateNetworkInterface,
    InstanceState,
    CreateSecurityGroup,
    S3Put,
    CreateRole,
    CreateUser,
    CreatePolicy,
    CreateAccessKey,
    LoginProfile,
    ConsoleLogin,
    FunctionConfig,
    TableDescription,
    DbInstance,
    ChangeSet,
    StartSession,
    SendCommand,
    SecretVersion,
    EksUpdate,
    Route53Change,
}

// ---- resource names --------------------------------------------------------------------------------

/// Where CloudTrail puts a resource in `resources[]`.
pub struct ResourceRef {
    pub kind: &'static str,
    pub arn: std::ops::Range<usize>,
    pub with_account: bool,
}

fn pick<'a>(g: &mut Gen, list: &'a [&'a str]) -> &'a str {
    list[skewed(&mut g.rng, list.len())]
}

impl Gen {
    fn acct(&self) -> &'static str {
        ACCOUNTS[self.account].id
    }

    /// Records a `resources[]` entry whose ARN is the text written between `start` and the buffer's end.
    fn resource_from(&mut self, kind: &'static str, start: usize, with_account: bool) {
        let from = self.res_buf.len();
        // `start` points inside `out` at the opening quote of a string value.
        let text = &self.out[start + 1..self.out.len() - 1];
        self.res_buf.push_str(text);
        self.res.push(ResourceRef { kind, arn: from..self.res_buf.len(), with_account });
    }

    fn bucket(&mut self) {
        let alias = ACCOUNTS[self.account].alias;
        let suffix = BUCKET_SUFFIXES[skewed(&mut self.rng, BUCKET_SUFFIXES.len())];
        self.bucket.clear();
        self.bucket.push_str(alias);
        self.bucket.push('-');
        self.bucket.push_str(suffix);
    }

    /// Writes one value.
    pub(crate) fn val(&mut self, v: V) {
        let region = self.region;
        let acct = self.acct();
        match v {
            V::Lit(s) => q(&mut self.out, s),
            V::Num(n) => json::num(&mut self.out, n as u64),
            V::Bool(b) => self.out.push_str(if b { "true" } else { "false" }),
            V::Uuid => self.quoted(|g| json::uuid(&mut g.out, &mut g.rng)),
            V::Hex6 => self.quoted(|g| json::hex(&mut g.out, &mut g.rng, 6)),
            V::Hex32 => self.quoted(|g| json::hex(&mut g.out, &mut g.rng, 32)),
            V::Hex64 => self.quoted(|g| json::hex(&mut g.out, &mut g.rng, 64)),
            V::Region => {
                let r = REGIONS[below(&mut self.rng, REGIONS.len())].0;
                q(&mut self.out, r)
            }
            V::Az => {
                let s = AZ_SUFFIXES[below(&mut self.rng, 3)];
                self.quoted(|g| {
                    g.out.push_str(region);
                    g.out.push_str(s);
                })
            }
            V::Ip => {
                let i = skewed(&mut self.rng, self.w.public_ips.len());
                q(&mut self.out, &self.w.public_ips[i])
            }
            V::AccountId => q(&mut self.out, ACCOUNTS[below(&mut self.rng, ACCOUNTS.len())].id),
            V::Instance => self.pooled(|w| &w.instances),
            V::Volume => self.pooled(|w| &w.volumes),
            V::Sg => self.pooled(|w| &w.security_groups),
            V::Vpc => self.pooled(|w| &w.vpcs),
            V::Subnet => self.pooled(|w| &w.subnets),
            V::Ami => self.pooled(|w| &w.amis),
            V::Snapshot => self.pooled(|w| &w.snapshots),
            V::Eni => self.pooled(|w| &w.enis),
            V::EniAttach => self.quoted(|g| {
                g.out.push_str("eni-attach-0");
                json::hex(&mut g.out, &mut g.rng, 16)
            }),
            V::Lt => self.quoted(|g| {
                g.out.push_str("lt-0");
                let i = skewed(&mut g.rng, 8) as u64;
                json::num(&mut g.out, 5_114_250_000_000_000 + i * 7_919);
            }),
            V::KeyPair => {
                let s = pick(self, KEY_PAIRS);
                q(&mut self.out, s)
            }
            V::User => {
                let i = skewed(&mut self.rng, self.w.users.len());
                q(&mut self.out, &self.w.users[i].session)
            }
            V::Role => {
                let i = self.role_in_account();
                q(&mut self.out, &self.w.roles[i].name)
            }
            V::RoleArn => {
                let i = self.role_in_account();
                q(&mut self.out, &self.w.roles[i].arn)
            }
            V::Group => {
                let s = pick(self, GROUPS);
                q(&mut self.out, s)
            }
            V::PolicyArn => {
                if below(&mut self.rng, 10) < 7 {
                    let s = pick(self, MANAGED_POLICIES);
                    q(&mut self.out, s)
                } else {
                    let s = pick(self, CUSTOMER_POLICIES);
                    self.quoted(|g| {
                        g.out.push_str("arn:aws:iam::");
                        g.out.push_str(acct);
                        g.out.push_str(":policy/");
                        g.out.push_str(s);
                    })
                }
            }
            V::PolicyName => {
                let s = pick(self, INLINE_POLICIES);
                q(&mut self.out, s)
            }
            V::AccessKey => {
                let i = skewed(&mut self.rng, self.w.users.len());
                let keys = &self.w.users[i].keys;
                q(&mut self.out, &keys[0])
            }
            V::MfaArn => {
                let i = skewed(&mut self.rng, self.w.users.len());
                self.quoted(|g| {
                    g.out.push_str("arn:aws:iam::");
                    g.out.push_str(acct);
                    g.out.push_str(":mfa/");
                    g.out.push_str(&g.w.users[i].session);
                })
            }
            V::KmsArn => self.kms_arn(),
            V::KmsAlias => {
                let s = pick(self, TABLES);
                self.quoted(|g| {
                    g.out.push_str("alias/");
                    g.out.push_str(s);
                })
            }
            V::Function => {
                let s = pick(self, FUNCTIONS);
                q(&mut self.out, s)
            }
            V::FunctionArn => self.arn("lambda", ":function:", FUNCTIONS),
            V::LogGroup => self.log_group(),
            V::LogGroupArn => self.quoted(|g| {
                g.arn_head("logs");
                g.out.push_str(":log-group:");
                let s = LOG_GROUPS[skewed(&mut g.rng, LOG_GROUPS.len())];
                g.out.push_str(s);
            }),
            V::LogStream => {
                let t = self.time_ms;
                self.quoted(|g| {
                    let start = g.out.len();
                    json::time(&mut g.out, t);
                    g.out.truncate(start + 10);
                    // 2026-01-01 → 2026/01/01
                    let date: String = g.out[start..].replace('-', "/");
                    g.out.truncate(start);
                    g.out.push_str(&date);
                    g.out.push_str("/[$LATEST]");
                    json::hex(&mut g.out, &mut g.rng, 32);
                })
            }
            V::Table => {
                let s = pick(self, TABLES);
                q(&mut self.out, s)
            }
            V::TableArn => self.arn("dynamodb", ":table/", TABLES),
            V::Db => {
                let s = pick(self, DBS);
                q(&mut self.out, s)
            }
            V::DbArn => self.arn("rds", ":db:", DBS),
            V::DbCluster => {
                let s = pick(self, DB_CLUSTERS);
                q(&mut self.out, s)
            }
            V::Stack => {
                let s = pick(self, STACKS);
                q(&mut self.out, s)
            }
            V::StackArn => {
                let s = pick(self, STACKS);
                self.quoted(|g| {
                    g.arn_head("cloudformation");
                    g.out.push_str(":stack/");
                    g.out.push_str(s);
                    g.out.push('/');
                    json::uuid(&mut g.out, &mut g.rng);
                })
            }
            V::ChangeSet => self.quoted(|g| {
                g.out.push_str("terraform-");
                json::num(&mut g.out, 1_767_225_600 + below(&mut g.rng, 86_400 * 30) as u64);
            }),
            V::Param => {
                let s = pick(self, PARAMS);
                q(&mut self.out, s)
            }
            V::ParamPath => {
                let s = pick(self, PARAM_PATHS);
                q(&mut self.out, s)
            }
            V::Document => {
                let s = pick(self, DOCUMENTS);
                q(&mut self.out, s)
            }
            V::SessionId => {
                let i = skewed(&mut self.rng, self.w.users.len());
                self.quoted(|g| {
                    g.out.push_str(&g.w.users[i].session);
                    g.out.push('-');
                    json::hex(&mut g.out, &mut g.rng, 17);
                })
            }
            V::Secret => {
                let (s, _) = SECRETS[skewed(&mut self.rng, SECRETS.len())];
                q(&mut self.out, s)
            }
            V::SecretArn => {
                let (s, suffix) = SECRETS[skewed(&mut self.rng, SECRETS.len())];
                self.quoted(|g| {
                    g.arn_head("secretsmanager");
                    g.out.push_str(":secret:");
                    g.out.push_str(s);
                    g.out.push('-');
                    g.out.push_str(suffix);
                })
            }
            V::Topic => {
                let s = pick(self, TOPICS);
                q(&mut self.out, s)
            }
            V::TopicArn => self.arn("sns", ":", TOPICS),
            V::SubscriptionArn => {
                let s = pick(self, TOPICS);
                self.quoted(|g| {
                    g.arn_head("sns");
                    g.out.push(':');
                    g.out.push_str(s);
                    g.out.push(':');
                    json::uuid(&mut g.out, &mut g.rng);
                })
            }
            V::Queue => {
                let s = pick(self, QUEUES);
                q(&mut self.out, s)
            }
            V::QueueUrl => {
                let s = pick(self, QUEUES);
                self.quoted(|g| {
                    g.out.push_str("https://sqs.");
                    g.out.push_str(region);
                    g.out.push_str(".amazonaws.com/");
                    g.out.push_str(acct);
                    g.out.push('/');
                    g.out.push_str(s);
                })
            }
            V::QueueArn => self.arn("sqs", ":", QUEUES),
            V::Repo => {
                let s = pick(self, REPOS);
                q(&mut self.out, s)
            }
            V::Cluster => {
                let s = pick(self, ECS_CLUSTERS);
                q(&mut self.out, s)
            }
            V::EcsService => {
                let s = pick(self, ECS_SERVICES);
                q(&mut self.out, s)
            }
            V::TaskDef => {
                let s = pick(self, ECS_SERVICES);
                let rev = 1 + skewed(&mut self.rng, 140) as u64;
                self.quoted(|g| {
                    g.out.push_str(s);
                    g.out.push(':');
                    json::num(&mut g.out, 140 - rev + 1);
                })
            }
            V::TaskArn => {
                let c = pick(self, ECS_CLUSTERS);
                self.quoted(|g| {
                    g.arn_head("ecs");
                    g.out.push_str(":task/");
                    g.out.push_str(c);
                    g.out.push('/');
                    json::hex(&mut g.out, &mut g.rng, 32);
                })
            }
            V::EksCluster => {
                let s = pick(self, EKS_CLUSTERS);
                q(&mut self.out, s)
            }
            V::Nodegroup => {
                let s = pick(self, NODEGROUPS);
                q(&mut self.out, s)
            }
            V::Lb => {
                let (s, _) = LBS[skewed(&mut self.rng, LBS.len())];
                q(&mut self.out, s)
            }
            V::LbArn => self.lb_arn("loadbalancer/app/", ""),
            V::TgArn => self.lb_arn("targetgroup/", "-tg"),
            V::ListenerArn => self.lb_arn("listener/app/", ""),
            V::Asg => {
                let s = pick(self, ASGS);
                q(&mut self.out, s)
            }
            V::Zone => self.pooled(|w| &w.zones),
            V::ChangeId => self.quoted(|g| {
                g.out.push_str("C0");
                json::base32(&mut g.out, &mut g.rng, 19);
            }),
            V::DnsName => {
                let s = pick(self, DNS_NAMES);
                q(&mut self.out, s)
            }
            V::TrailArn => self.arn("cloudtrail", ":trail/", TRAILS),
            V::ConfigRule => {
                let s = pick(self, CONFIG_RULES);
                q(&mut self.out, s)
            }
            V::Ou => {
                let s = pick(self, OUS);
                q(&mut self.out, s)
            }
            V::OrgPolicy => {
                let s = pick(self, ORG_POLICIES);
                q(&mut self.out, s)
            }
            V::Detector => self.pooled(|w| &w.detectors),
            V::FileSystem => self.pooled(|w| &w.file_systems),
            V::RestApi => self.pooled(|w| &w.rest_apis),
            V::GlueDb => {
                let s = pick(self, GLUE_DBS);
                q(&mut self.out, s)
            }
            V::GlueTable => {
                let s = pick(self, GLUE_TABLES);
                q(&mut self.out, s)
            }
            V::GlueJob => {
                let s = pick(self, GLUE_JOBS);
                q(&mut self.out, s)
            }
            V::JobRun => self.quoted(|g| {
                g.out.push_str("jr_");
                json::hex(&mut g.out, &mut g.rng, 64);
            }),
            V::Crawler => {
                let s = pick(self, CRAWLERS);
                q(&mut self.out, s)
            }
            V::WorkGroup => {
                let s = pick(self, WORKGROUPS);
                q(&mut self.out, s)
            }
            V::Alarm => {
                let s = pick(self, ALARMS);
                q(&mut self.out, s)
            }
            V::AlarmArn => self.arn("cloudwatch", ":alarm:", ALARMS),
            V::Dashboard => {
                let s = pick(self, DASHBOARDS);
                q(&mut self.out, s)
            }
        }
    }

    fn quoted(&mut self, f: impl FnOnce(&mut Gen)) {
        self.out.push('"');
        f(self);
        self.out.push('"');
    }

    fn pooled(&mut self, pool: fn(&crate::world::World) -> &Vec<String>) {
        let p = pool(&self.w);
        let i = skewed(&mut self.rng, p.len());
        let p = pool(&self.w);
        q(&mut self.out, &p[i]);
    }

    /// `arn:aws:<svc>:<region>:<account>` (unquoted).
    fn arn_head(&mut self, service: &str) {
        self.out.push_str("arn:aws:");
        self.out.push_str(service);
        self.out.push(':');
        self.out.push_str(self.region);
        self.out.push(':');
        self.out.push_str(ACCOUNTS[self.account].id);
    }

    fn arn(&mut self, service: &str, sep: &str, names: &[&str]) {
        let s = names[skewed(&mut self.rng, names.len())];
        self.quoted(|g| {
            g.arn_head(service);
            g.out.push_str(sep);
            g.out.push_str(s);
        })
    }

    fn lb_arn(&mut self, kind: &str, suffix: &str) {
        let (s, id) = LBS[skewed(&mut self.rng, LBS.len())];
        self.quoted(|g| {
            g.arn_head("elasticloadbalancing");
            g.out.push(':');
            g.out.push_str(kind);
            g.out.push_str(s);
            g.out.push_str(suffix);
            g.out.push('/');
            g.out.push_str(id);
        })
    }

    fn kms_arn(&mut self) {
        let i = skewed(&mut self.rng, self.w.kms_keys.len());
        self.quoted(|g| {
            g.arn_head("kms");
            g.out.push_str(":key/");
            g.out.push_str(&g.w.kms_keys[i]);
        })
    }

    fn log_group(&mut self) {
        if below(&mut self.rng, 2) == 0 {
            let s = pick(self, FUNCTIONS);
            self.quoted(|g| {
                g.out.push_str("/aws/lambda/");
                g.out.push_str(s);
            })
        } else {
            let s = pick(self, LOG_GROUPS);
            q(&mut self.out, s)
        }
    }

    /// A role of the current account (skewed towards the first ones).
    fn role_in_account(&mut self) -> usize {
        let per_account = self.w.roles.len() / ACCOUNTS.len();
        self.account * per_account + skewed(&mut self.rng, per_account)
    }

    fn field(&mut self, key: &str, v: V) {
        k(&mut self.out, key);
        self.val(v);
    }

    /// Writes `requestParameters`' value.
    pub(crate) fn req(&mut self, r: Req) {
        match r {
            Req::N => self.out.push_str("null"),
            Req::E => self.out.push_str("{}"),
            Req::P1(a, va) => {
                self.out.push('{');
                self.field(a, va);
                self.out.push('}');
            }
            Req::P2(a, va, b, vb) => {
                self.out.push('{');
                self.field(a, va);
                self.out.push(',');
                self.field(b, vb);
                self.out.push('}');
            }
            Req::P3(a, va, b, vb, c, vc) => {
                self.out.push('{');
                self.field(a, va);
                self.out.push(',');
                self.field(b, vb);
                self.out.push(',');
                self.field(c, vc);
                self.out.push('}');
            }
            Req::Set(set, key, v) => {
                self.out.push('{');
                k(&mut self.out, set);
                if below(&mut self.rng, 3) == 0 {
                    self.out.push_str(
                        r#"{},"filterSet":{"items":[{"name":"tag:Environment","valueSet":{"items":[{"value":""#,
                    );
                    let env = ["prod", "staging", "dev"][below(&mut self.rng, 3)];
                    self.out.push_str(env);
                    self.out.push_str(r#""}]}}]}"#);
                } else {
                    self.out.push_str(r#"{"items":["#);
                    let n = 1 + skewed(&mut self.rng, 3);
                    for i in 0..n {
                        if i > 0 {
                            self.out.push(',');
                        }
                        self.out.push('{');
                        self.field(key, v);
                        self.out.push('}');
                    }
                    self.out.push_str(r#"]},"filterSet":{}"#);
                }
                self.out.push('}');
            }
            Req::S(sp) => self.special(sp),
        }
    }

    fn special(&mut self, sp: Sp) {
        let acct = self.acct();
        match sp {
            Sp::AssumeRole => {
                // Assume one of the account's real role sessions, so the returned keys are the ones that
                // session then uses.
                let per = self.w.sessions.len();
                let mut s = skewed(&mut self.rng, per);
                for _ in 0..8 {
                    if self.w.sessions[s].account == self.account {
                        break;
                    }
                    s = skewed(&mut self.rng, per);
                }
                self.assumed = Some(s);
                let w = std::sync::Arc::clone(&self.w);
                let p = &w.sessions[s];
                let role = &self.w.roles[p.role.unwrap_or(0)];
                self.out.push_str(r#"{"roleArn":"#);
                let start = self.out.len();
                q(&mut self.out, &role.arn);
                self.resource_from("AWS::IAM::Role", start, true);
                self.out.push_str(r#","roleSessionName":"#);
                q(&mut self.out, &p.session);
                if below(&mut self.rng, 4) == 0 {
                    self.out.push_str(r#","durationSeconds":3600"#);
                }
                self.out.push('}');
            }
            Sp::KmsKey => {
                self.out.push_str(r#"{"keyId":"#);
                let start = self.out.len();
                self.kms_arn();
                self.resource_from("AWS::KMS::Key", start, true);
                self.out.push('}');
            }
            Sp::KmsCrypto | Sp::KmsDataKey => {
                self.out.push('{');
                if matches!(sp, Sp::KmsDataKey) {
                    self.out.push_str(r#""keySpec":"AES_256","#);
                } else {
                    self.out.push_str(r#""encryptionAlgorithm":"SYMMETRIC_DEFAULT","#);
                }
                k(&mut self.out, "keyId");
                let start = self.out.len();
                self.kms_arn();
                self.resource_from("AWS::KMS::Key", start, true);
                self.out.push_str(r#","encryptionContext":{"#);
                match below(&mut self.rng, 4) {
                    0 => {
                        self.out.push_str(r#""aws:s3:arn":"arn:aws:s3:::"#);
                        self.bucket();
                        self.out.push_str(&self.bucket);
                        self.out.push('"');
                    }
                    1 => {
                        self.out.push_str(r#""SecretARN":"#);
                        self.val(V::SecretArn);
                        self.out.push_str(r#","SecretVersionId":"#);
                        self.val(V::Uuid);
                    }
                    2 => {
                        self.out.push_str(r#""aws:ebs:id":"#);
                        self.val(V::Volume);
                    }
                    _ => {
                        self.out.push_str(r#""aws:lambda:FunctionArn":"#);
                        self.val(V::FunctionArn);
                    }
                }
                self.out.push_str("}}");
            }
            Sp::CreateTags => {
                self.out.push_str(r#"{"resourcesSet":{"items":[{"resourceId":"#);
                self.val(V::Instance);
                self.out.push_str(r#"}]},"tagSet":{"items":[{"key":"Name","value":"#);
                self.val(V::EcsService);
                self.out.push_str(r#"},{"key":"Environment","value":"prod"}]}}"#);
            }
            Sp::RunInstances => {
                self.out.push_str(r#"{"instancesSet":{"items":[{"imageId":"#);
                self.val(V::Ami);
                self.out.push_str(r#","minCount":1,"maxCount":1}]},"instanceType":"#);
                let t = INSTANCE_TYPES[skewed(&mut self.rng, INSTANCE_TYPES.len())];
                q(&mut self.out, t);
                self.name.clear();
                self.name.push_str(t);
                self.out.push_str(r#","blockDeviceMapping":{},"monitoring":{"enabled":false},"disableApiTermination":false,"disableApiStop":false,"clientToken":"#);
                self.val(V::Uuid);
                self.out.push_str(r#","networkInterfaceSet":{"items":[{"deviceIndex":0,"subnetId":"#);
                self.val(V::Subnet);
                self.out.push_str(r#","groupSet":{"items":[{"groupId":"#);
                self.val(V::Sg);
                self.out.push_str(r#"}]}}]},"launchTemplate":{"launchTemplateId":"#);
                self.val(V::Lt);
                self.out.push_str(r#","version":"$Latest"},"iamInstanceProfile":{"arn":"arn:aws:iam::"#);
                self.out.push_str(acct);
                self.out.push_str(r#":instance-profile/eks-nodegroup-profile"},"metadataOptions":{"httpTokens":"required","httpPutResponseHopLimit":2}}"#);
            }
            Sp::SgRule => {
                self.out.push_str(r#"{"groupId":"#);
                self.val(V::Sg);
                let (port, cidr) =
                    [(443, "0.0.0.0/0"), (22, "203.0.113.0/24"), (5432, "10.0.0.0/16"), (8080, "10.0.0.0/8")]
                        [skewed(&mut self.rng, 4)];
                self.out.push_str(r#","ipPermissions":{"items":[{"ipProtocol":"tcp","fromPort":"#);
                json::num(&mut self.out, port);
                self.out.push_str(r#","toPort":"#);
                json::num(&mut self.out, port);
                self.out.push_str(r#","groups":{},"ipRanges":{"items":[{"cidrIp":"#);
                q(&mut self.out, cidr);
                self.out.push_str(r#"}]},"ipv6Ranges":{},"prefixListIds":{}}]}}"#);
            }
            Sp::CreateSecurityGroup => {
                self.out.push_str(r#"{"groupName":"#);
                let s = pick(self, ECS_SERVICES);
                self.quoted(|g| {
                    g.out.push_str(s);
                    g.out.push_str("-sg");
                });
                self.out.push_str(r#","groupDescription":"Managed by Terraform","vpcId":"#);
                self.val(V::Vpc);
                self.out.push('}');
            }
            Sp::S3Account => {
                self.out.push_str(r#"{"Host":"s3."#);
                self.out.push_str(self.region);
                self.out.push_str(r#".amazonaws.com"}"#);
            }
            Sp::S3Bucket(sub) => {
                self.bucket();
                self.out.push_str(r#"{"bucketName":"#);
                q(&mut self.out, &self.bucket);
                self.out.push_str(r#","Host":""#);
                self.out.push_str(&self.bucket);
                self.out.push_str(".s3.");
                self.out.push_str(self.region);
                self.out.push_str(".amazonaws.com\"");
                if !sub.is_empty() {
                    self.out.push(',');
                    k(&mut self.out, sub);
                    self.out.push_str(r#""""#);
                }
                self.out.push('}');
                self.bucket_resource();
            }
            Sp::CreateBucket => {
                self.bucket();
                self.out.push_str(r#"{"CreateBucketConfiguration":{"LocationConstraint":"#);
                q(&mut self.out, self.region);
                self.out.push_str(r#","xmlns":"http://s3.amazonaws.com/doc/2006-03-01/"},"bucketName":"#);
                q(&mut self.out, &self.bucket);
                self.out.push_str(r#","Host":""#);
                self.out.push_str(&self.bucket);
                self.out.push_str(r#".s3.amazonaws.com","x-amz-object-ownership":"BucketOwnerEnforced"}"#);
                self.bucket_resource();
            }
            Sp::S3Object => {
                self.bucket();
                self.out.push_str(r#"{"bucketName":"#);
                q(&mut self.out, &self.bucket);
                self.out.push_str(r#","Host":""#);
                self.out.push_str(&self.bucket);
                self.out.push_str(".s3.");
                self.out.push_str(self.region);
                self.out.push_str(r#".amazonaws.com","key":""#);
                let key_start = self.out.len();
                let (prefix, ext) = OBJECT_KEYS[skewed(&mut self.rng, OBJECT_KEYS.len())];
                self.out.push_str(prefix);
                json::uuid(&mut self.out, &mut self.rng);
                self.out.push_str(ext);
                let key_end = self.out.len();
                self.out.push_str("\"}");
                // resources[]: the object (no account id), then its bucket.
                let from = self.res_buf.len();
                self.res_buf.push_str("arn:aws:s3:::");
                self.res_buf.push_str(&self.bucket);
                self.res_buf.push('/');
                let key = &self.out[key_start..key_end];
                self.res_buf.push_str(key);
                self.res.push(ResourceRef {
                    kind: "AWS::S3::Object",
                    arn: from..self.res_buf.len(),
                    with_account: false,
                });
                self.bucket_resource();
            }
            Sp::S3List => {
                self.bucket();
                self.out.push_str(r#"{"bucketName":"#);
                q(&mut self.out, &self.bucket);
                self.out.push_str(r#","Host":""#);
                self.out.push_str(&self.bucket);
                self.out.push_str(".s3.");
                self.out.push_str(self.region);
                self.out.push_str(
                    r#".amazonaws.com","prefix":"raw/orders/","list-type":"2","delimiter":"/","encoding-type":"url"}"#,
                );
                self.bucket_resource();
            }
            Sp::AttachRolePolicy => {
                self.out.push('{');
                self.field("roleName", V::Role);
                self.out.push(',');
                self.field("policyArn", V::PolicyArn);
                self.out.push('}');
            }
            Sp::PutRolePolicy => {
                self.out.push('{');
                self.field("roleName", V::Role);
                self.out.push(',');
                self.field("policyName", V::PolicyName);
                self.out.push_str(r#","policyDocument":"{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": [\n    {\n      \"Effect\": \"Allow\",\n      \"Action\": [\"s3:GetObject\", \"s3:ListBucket\"],\n      \"Resource\": \"*\"\n    }\n  ]\n}"}"#);
            }
            Sp::CreateRole => {
                let s = pick(self, FUNCTIONS);
                self.name.clear();
                self.name.push_str("lambda-");
                self.name.push_str(s);
                self.name.push_str("-role");
                self.out.push_str(r#"{"roleName":"#);
                q(&mut self.out, &self.name);
                self.out.push_str(r#","assumeRolePolicyDocument":"{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":{\"Service\":\"lambda.amazonaws.com\"},\"Action\":\"sts:AssumeRole\"}]}","maxSessionDuration":3600}"#);
            }
            Sp::TagRole => {
                self.out.push('{');
                self.field("roleName", V::Role);
                self.out.push_str(
                    r#","tags":[{"key":"owner","value":"platform"},{"key":"cost-center","value":"cc-1042"}]}"#,
                );
            }
            Sp::CreateUser => {
                let f = crate::world::below(&mut self.rng, 1000);
                self.name.clear();
                self.name.push_str(["contractor", "intern", "svc", "temp", "partner"][f % 5]);
                self.name.push('-');
                json::num(&mut self.name, f as u64);
                self.out.push_str(r#"{"userName":"#);
                q(&mut self.out, &self.name);
                if f.is_multiple_of(2) {
                    self.out.push_str(r#","tags":[{"key":"team","value":"data"}]"#);
                }
                self.out.push('}');
            }
            Sp::CreatePolicy => {
                let s = pick(self, CUSTOMER_POLICIES);
                self.name.clear();
                self.name.push_str(s);
                self.out.push_str(r#"{"policyName":"#);
                q(&mut self.out, s);
                self.out.push_str(r#","policyDocument":"{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"dynamodb:*\",\"Resource\":\"*\"}]}"}"#);
            }
            Sp::ConsoleLogin => self.out.push_str("null"),
            Sp::UpdateFunctionCode => {
                self.out.push('{');
                self.field("functionName", V::Function);
                self.out.push_str(r#","publish":true,"dryRun":false,"s3Bucket":""#);
                self.out.push_str(ACCOUNTS[self.account].alias);
                self.out.push_str(r#"-artifacts","s3Key":"lambda/"#);
                json::hex(&mut self.out, &mut self.rng, 12);
                self.out.push_str(r#".zip"}"#);
            }
            Sp::LambdaInvoke => {
                self.out.push_str(r#"{"functionName":"#);
                let start = self.out.len();
                self.val(V::FunctionArn);
                self.resource_from("AWS::Lambda::Function", start, true);
                self.out.push_str(r#","invocationType":"#);
                q(&mut self.out, if below(&mut self.rng, 3) == 0 { "Event" } else { "RequestResponse" });
                self.out.push('}');
            }
            Sp::GetMetricData => {
                self.out.push_str(r#"{"metricDataQueries":[{"id":"m1","metricStat":{"metric":{"namespace":"AWS/EC2","metricName":"CPUUtilization","dimensions":[{"name":"InstanceId","value":"#);
                self.val(V::Instance);
                self.out.push_str(r#"}]},"period":300,"stat":"Average"},"returnData":true}],"startTime":"#);
                self.quoted(|g| json::time(&mut g.out, g.time_ms - 3_600_000));
                self.out.push_str(r#","endTime":"#);
                self.quoted(|g| json::time(&mut g.out, g.time_ms));
                self.out.push('}');
            }
            Sp::PutMetricAlarm => {
                self.out.push('{');
                self.field("alarmName", V::Alarm);
                self.out.push_str(r#","metricName":"CPUUtilization","namespace":"AWS/RDS","statistic":"Average","period":300,"evaluationPeriods":3,"threshold":80.0,"comparisonOperator":"GreaterThanThreshold","alarmActions":["#);
                self.val(V::TopicArn);
                self.out.push_str("]}");
            }
            Sp::FilterLogEvents => {
                self.out.push_str(r#"{"logGroupName":"#);
                self.log_group();
                self.out.push_str(r#","filterPattern":"ERROR","startTime":"#);
                json::num(&mut self.out, (self.time_ms - 900_000).max(0) as u64);
                self.out.push_str(r#","interleaved":true}"#);
            }
            Sp::LogsQuery => {
                self.out.push_str(r#"{"logGroupName":"#);
                self.log_group();
                self.out.push_str(r#","queryString":"fields @timestamp, @message | filter @message like /ERROR/ | sort @timestamp desc | limit 100","startTime":"#);
                json::num(&mut self.out, (self.time_ms / 1000 - 3600).max(0) as u64);
                self.out.push_str(r#","endTime":"#);
                json::num(&mut self.out, (self.time_ms / 1000).max(0) as u64);
                self.out.push('}');
            }
            Sp::CreateTable => {
                self.out.push('{');
                self.field("tableName", V::Table);
                self.out.push_str(r#","attributeDefinitions":[{"attributeName":"pk","attributeType":"S"},{"attributeName":"sk","attributeType":"S"}],"keySchema":[{"attributeName":"pk","keyType":"HASH"},{"attributeName":"sk","keyType":"RANGE"}],"billingMode":"PAY_PER_REQUEST","sSESpecification":{"enabled":true}}"#);
            }
            Sp::DdbItem | Sp::DdbQuery => {
                self.out.push_str(r#"{"tableName":"#);
                let t = pick(self, TABLES);
                q(&mut self.out, t);
                if matches!(sp, Sp::DdbItem) {
                    self.out.push_str(
                        r#","key":{"pk":"HIDDEN_DUE_TO_SECURITY_REASONS","sk":"HIDDEN_DUE_TO_SECURITY_REASONS"}"#,
                    );
                } else {
                    self.out.push_str(r#","keyConditionExpression":"pk = :pk","expressionAttributeValues":{":pk":"HIDDEN_DUE_TO_SECURITY_REASONS"},"limit":100"#);
                }
                self.out.push('}');
                let from = self.res_buf.len();
                self.res_buf.push_str("arn:aws:dynamodb:");
                self.res_buf.push_str(self.region);
                self.res_buf.push(':');
                self.res_buf.push_str(acct);
                self.res_buf.push_str(":table/");
                self.res_buf.push_str(t);
                self.res.push(ResourceRef {
                    kind: "AWS::DynamoDB::Table",
                    arn: from..self.res_buf.len(),
                    with_account: true,
                });
            }
            Sp::CreateDbInstance => {
                self.out.push('{');
                self.field("dBInstanceIdentifier", V::Db);
                self.out.push_str(r#","dBInstanceClass":"db.r6g.large","engine":"postgres","engineVersion":"16.3","allocatedStorage":200,"masterUsername":"postgres","storageEncrypted":true,"multiAZ":true,"dBSubnetGroupName":"private-db"}"#);
            }
            Sp::StackChange => {
                self.out.push('{');
                self.field("stackName", V::Stack);
                self.out.push_str(r#","templateURL":"https://s3.amazonaws.com/"#);
                self.out.push_str(ACCOUNTS[self.account].alias);
                self.out.push_str(r#"-artifacts/cfn/template.yaml","capabilities":["CAPABILITY_NAMED_IAM"],"parameters":[{"parameterKey":"Environment","parameterValue":"prod"}]}"#);
            }
            Sp::SsmInstanceInfo => {
                self.out.push('{');
                self.field("instanceId", V::Instance);
                self.out.push_str(r#","agentVersion":"3.3.987.0","agentName":"amazon-ssm-agent","platformType":"Linux","platformName":"Amazon Linux","platformVersion":"2023","iPAddress":"#);
                let i = below(&mut self.rng, self.w.private_ips.len());
                q(&mut self.out, &self.w.private_ips[i]);
                self.out.push_str(r#","computerName":"ip-10-0-1-23.ec2.internal","agentStatus":"Active"}"#);
            }
            Sp::PutParameter => {
                self.out.push('{');
                self.field("name", V::Param);
                self.out.push_str(r#","type":"SecureString","overwrite":true,"keyId":"alias/aws/ssm"}"#);
            }
            Sp::SendCommand => {
                self.out.push_str(r#"{"instanceIds":["#);
                self.val(V::Instance);
                self.out.push_str(r#"],"documentName":"#);
                self.val(V::Document);
                self.out.push_str(r#","parameters":"HIDDEN_DUE_TO_SECURITY_REASONS","interactive":false}"#);
            }
            Sp::EcrImage => {
                self.out.push_str(r#"{"repositoryName":"#);
                self.val(V::Repo);
                self.out.push_str(r#","registryId":"#);
                q(&mut self.out, acct);
                self.out.push_str(r#","imageIds":[{"imageTag":"#);
                self.quoted(|g| {
                    g.out.push_str("v1.");
                    json::num(&mut g.out, skewed(&mut g.rng, 60) as u64);
                    g.out.push('.');
                    json::num(&mut g.out, below(&mut g.rng, 10) as u64);
                });
                self.out.push_str(r#"}],"acceptedMediaTypes":["application/vnd.docker.distribution.manifest.v2+json","application/vnd.oci.image.manifest.v1+json"]}"#);
            }
            Sp::EcrLayer => {
                self.out.push_str(r#"{"repositoryName":"#);
                self.val(V::Repo);
                self.out.push_str(r#","registryId":"#);
                q(&mut self.out, acct);
                self.out.push_str(r#","layerDigest":"sha256:"#);
                json::hex(&mut self.out, &mut self.rng, 64);
                self.out.push_str("\"}");
            }
            Sp::RegisterTaskDefinition => {
                self.out.push('{');
                self.field("family", V::EcsService);
                self.out.push_str(r#","taskRoleArn":"#);
                self.val(V::RoleArn);
                self.out.push_str(r#","networkMode":"awsvpc","containerDefinitions":[{"name":"app","image":""#);
                self.out.push_str(acct);
                self.out.push_str(".dkr.ecr.");
                self.out.push_str(self.region);
                self.out.push_str(r#".amazonaws.com/orders-api:v1.42.0","cpu":512,"memory":1024,"essential":true,"environment":"HIDDEN_DUE_TO_SECURITY_REASONS"}],"requiresCompatibilities":["FARGATE"],"cpu":"512","memory":"1024"}"#);
            }
            Sp::UpdateService => {
                self.out.push('{');
                self.field("cluster", V::Cluster);
                self.out.push(',');
                self.field("service", V::EcsService);
                self.out.push(',');
                self.field("taskDefinition", V::TaskDef);
                self.out.push_str(r#","desiredCount":"#);
                json::num(&mut self.out, 2 + below(&mut self.rng, 8) as u64);
                self.out.push_str(r#","forceNewDeployment":false}"#);
            }
            Sp::Targets => {
                self.out.push('{');
                self.field("targetGroupArn", V::TgArn);
                self.out.push_str(r#","targets":[{"id":"#);
                let i = below(&mut self.rng, self.w.private_ips.len());
                q(&mut self.out, &self.w.private_ips[i]);
                self.out.push_str(r#","port":8080}]}"#);
            }
            Sp::ChangeRecordSets => {
                self.out.push('{');
                self.field("hostedZoneId", V::Zone);
                self.out.push_str(r#","changeBatch":{"changes":[{"action":"UPSERT","resourceRecordSet":{"name":"#);
                let n = pick(self, RECORD_NAMES);
                q(&mut self.out, n);
                self.out.push_str(r#","type":"A","tTL":60,"resourceRecords":[{"value":"#);
                self.val(V::Ip);
                self.out.push_str("}]}}]}}");
            }
            Sp::LookupEvents => {
                self.out.push_str(r#"{"lookupAttributes":[{"attributeKey":"EventName","attributeValue":"#);
                q(
                    &mut self.out,
                    ["CreateUser", "ConsoleLogin", "AuthorizeSecurityGroupIngress", "DeleteBucket"]
                        [below(&mut self.rng, 4)],
                );
                self.out.push_str(r#"}],"startTime":"#);
                self.quoted(|g| json::time(&mut g.out, g.time_ms - 7 * 86_400_000));
                self.out.push_str(r#","maxResults":50}"#);
            }
            Sp::CreateTrail => {
                self.out.push_str(r#"{"name":"#);
                q(&mut self.out, TRAILS[below(&mut self.rng, TRAILS.len())]);
                self.out.push_str(r#","s3BucketName":""#);
                self.out.push_str(ACCOUNTS[self.account].alias);
                self.out.push_str(r#"-cloudtrail","isMultiRegionTrail":true,"enableLogFileValidation":true,"includeGlobalServiceEvents":true}"#);
            }
            Sp::PutEvaluations => {
                self.out.push_str(
                    r#"{"evaluations":[{"complianceResourceType":"AWS::EC2::Instance","complianceResourceId":"#,
                );
                self.val(V::Instance);
                self.out.push_str(r#","complianceType":"#);
                q(&mut self.out, if below(&mut self.rng, 5) == 0 { "NON_COMPLIANT" } else { "COMPLIANT" });
                self.out.push_str(r#","orderingTimestamp":"#);
                self.quoted(|g| json::time(&mut g.out, g.time_ms - 60_000));
                self.out.push_str(r#"}],"resultToken":"HIDDEN_DUE_TO_SECURITY_REASONS","testMode":false}"#);
            }
            Sp::AthenaQuery => {
                self.out.push_str(r#"{"queryString":"SELECT eventname, count(*) AS n FROM cloudtrail_logs WHERE eventtime > '2026-01-01' GROUP BY 1 ORDER BY 2 DESC LIMIT 20","queryExecutionContext":{"database":"#);
                self.val(V::GlueDb);
                self.out.push_str(r#"},"workGroup":"#);
                self.val(V::WorkGroup);
                self.out.push_str(r#","resultConfiguration":{"outputLocation":"s3://"#);
                self.out.push_str(ACCOUNTS[self.account].alias);
                self.out.push_str(r#"-athena-results/"}}"#);
            }
        }
    }

    fn bucket_resource(&mut self) {
        let from = self.res_buf.len();
        self.res_buf.push_str("arn:aws:s3:::");
        self.res_buf.push_str(&self.bucket);
        self.res.push(ResourceRef { kind: "AWS::S3::Bucket", arn: from..self.res_buf.len(), with_account: true });
    }

    /// Writes `responseElements`' value for a successful, state-changing call.
    pub(crate) fn resp(&mut self, r: Resp) {
        let acct = self.acct();
        match r {
            Resp::RN => self.out.push_str("null"),
            Resp::Ret => {
                self.out.push_str(r#"{"requestId":"#);
                self.val(V::Uuid);
                self.out.push_str(r#","_return":true}"#);
            }
            Resp::R1(key, v) => {
                self.out.push('{');
                self.field(key, v);
                self.out.push('}');
            }
            Resp::RS(sp) => {
                match sp {
                    RSp::AssumeRole | RSp::SessionToken => {
                        self.out.push_str(r#"{"credentials":{"accessKeyId":"#);
                        let expires = self.time_ms + 3_600_000;
                        match (sp, self.assumed) {
                            (RSp::AssumeRole, Some(s)) => {
                                let p = &self.w.sessions[s];
                                let key = &p.keys[below(&mut self.rng, p.keys.len())];
                                q(&mut self.out, key);
                            }
                            _ => self.quoted(|g| {
                                g.out.push_str("ASIA");
                                json::base32(&mut g.out, &mut g.rng, 16);
                            }),
                        }
                        self.out.push_str(r#","sessionToken":"IQoJb3JpZ2luX2VjE"#);
                        json::alnum(&mut self.out, &mut self.rng, 120);
                        self.out.push_str(r#"","expiration":""#);
                        json::time(&mut self.out, expires);
                        self.out.push('"');
                        self.out.push('}');
                        if let (RSp::AssumeRole, Some(s)) = (sp, self.assumed) {
                            let p = &self.w.sessions[s];
                            let role = &self.w.roles[p.role.unwrap_or(0)];
                            self.out.push_str(r#","assumedRoleUser":{"assumedRoleId":""#);
                            self.out.push_str(&role.role_id);
                            self.out.push(':');
                            self.out.push_str(&p.session);
                            self.out.push_str(r#"","arn":"#);
                            q(&mut self.out, &p.arn);
                            self.out.push('}');
                        }
                        self.out.push('}');
                    }
                    RSp::CreateKey => {
                        self.out.push_str(r#"{"keyMetadata":{"aWSAccountId":"#);
                        q(&mut self.out, acct);
                        self.out.push_str(r#","keyId":"#);
                        self.val(V::Uuid);
                        self.out.push_str(r#","creationDate":"#);
                        self.quoted(|g| json::time(&mut g.out, g.time_ms));
                        self.out.push_str(r#","enabled":true,"keyUsage":"ENCRYPT_DECRYPT","keyState":"Enabled","origin":"AWS_KMS","keyManager":"CUSTOMER","keySpec":"SYMMETRIC_DEFAULT","encryptionAlgorithms":["SYMMETRIC_DEFAULT"],"multiRegion":false}}"#);
                    }
                    RSp::KeyDeletion => {
                        self.out.push_str(r#"{"keyId":"#);
                        self.kms_arn();
                        self.out.push_str(r#","deletionDate":"#);
                        self.quoted(|g| json::time(&mut g.out, g.time_ms + 30 * 86_400_000));
                        self.out.push_str(r#","keyState":"PendingDeletion","pendingWindowInDays":30}"#);
                    }
                    RSp::RunInstances => {
                        self.out.push_str(r#"{"requestId":"#);
                        self.val(V::Uuid);
                        self.out.push_str(r#","reservationId":"r-0"#);
                        json::hex(&mut self.out, &mut self.rng, 16);
                        self.out.push_str(r#"","ownerId":"#);
                        q(&mut self.out, acct);
                        self.out.push_str(r#","groupSet":{},"instancesSet":{"items":[{"instanceId":"#);
                        self.val(V::Instance);
                        self.out.push_str(r#","imageId":"#);
                        self.val(V::Ami);
                        self.out.push_str(r#","instanceState":{"code":0,"name":"pending"},"privateDnsName":"ip-10-0-"#);
                        json::num(&mut self.out, below(&mut self.rng, 255) as u64);
                        self.out.push('-');
                        json::num(&mut self.out, below(&mut self.rng, 255) as u64);
                        self.out.push_str(".ec2.internal\",\"amiLaunchIndex\":0,\"productCodes\":{},\"instanceType\":");
                        q(&mut self.out, &self.name);
                        self.out.push_str(r#","launchTime":"#);
                        json::num(&mut self.out, self.time_ms.max(0) as u64);
                        self.out.push_str(r#","placement":{"availabilityZone":"#);
                        self.val(V::Az);
                        self.out.push_str(r#","tenancy":"default"},"monitoring":{"state":"disabled"},"subnetId":"#);
                        self.val(V::Subnet);
                        self.out.push_str(r#","vpcId":"#);
                        self.val(V::Vpc);
                        self.out.push_str(r#","privateIpAddress":"#);
                        let i = below(&mut self.rng, self.w.private_ips.len());
                        q(&mut self.out, &self.w.private_ips[i]);
                        self.out.push_str(r#","stateReason":{"code":"pending","message":"pending"},"architecture":"x86_64","rootDeviceType":"ebs","rootDeviceName":"/dev/xvda","blockDeviceMapping":{},"virtualizationType":"hvm","hypervisor":"xen","groupSet":{"items":[{"groupId":"#);
                        self.val(V::Sg);
                        self.out.push_str(r#","groupName":"eks-nodes"}]},"sourceDestCheck":true,"currentInstanceBootMode":"uefi","metadataOptions":{"state":"pending","httpTokens":"required","httpPutResponseHopLimit":2,"httpEndpoint":"enabled"}}]}}"#);
                    }
                    RSp::CreateNetworkInterface => {
                        self.out.push_str(r#"{"requestId":"#);
                        self.val(V::Uuid);
                        self.out.push_str(r#","networkInterface":{"networkInterfaceId":"#);
                        self.val(V::Eni);
                        self.out.push_str(r#","subnetId":"#);
                        self.val(V::Subnet);
                        self.out.push_str(r#","vpcId":"#);
                        self.val(V::Vpc);
                        self.out.push_str(r#","ownerId":"#);
                        q(&mut self.out, acct);
                        self.out.push_str(r#","requesterId":"AROAEXAMPLELAMBDA","requesterManaged":true,"status":"pending","privateIpAddress":"#);
                        let i = below(&mut self.rng, self.w.private_ips.len());
                        q(&mut self.out, &self.w.private_ips[i]);
                        self.out.push_str(r#","sourceDestCheck":true,"interfaceType":"lambda"}}"#);
                    }
                    RSp::InstanceState => {
                        self.out.push_str(r#"{"requestId":"#);
                        self.val(V::Uuid);
                        self.out.push_str(r#","instancesSet":{"items":[{"instanceId":"#);
                        self.val(V::Instance);
                        self.out.push_str(r#","currentState":{"code":64,"name":"stopping"},"previousState":{"code":16,"name":"running"}}]}}"#);
                    }
                    RSp::CreateSecurityGroup => {
                        self.out.push_str(r#"{"requestId":"#);
                        self.val(V::Uuid);
                        self.out.push_str(r#","_return":true,"groupId":"#);
                        self.val(V::Sg);
                        self.out.push_str(r#","securityGroupArn":"arn:aws:ec2:"#);
                        self.out.push_str(self.region);
                        self.out.push(':');
                        self.out.push_str(acct);
                        self.out.push_str(":security-group/sg-0");
                        json::hex(&mut self.out, &mut self.rng, 16);
                        self.out.push_str("\"}");
                    }
                    RSp::S3Put => {
                        self.out.push_str(r#"{"x-amz-server-side-encryption":"aws:kms","x-amz-server-side-encryption-aws-kms-key-id":"#);
                        self.kms_arn();
                        self.out.push_str(
                            r#","x-amz-server-side-encryption-bucket-key-enabled":"true","x-amz-version-id":"#,
                        );
                        self.quoted(|g| json::alnum(&mut g.out, &mut g.rng, 32));
                        self.out.push('}');
                    }
                    RSp::CreateRole => {
                        self.out.push_str(r#"{"role":{"path":"/","roleName":"#);
                        q(&mut self.out, &self.name);
                        self.out.push_str(r#","roleId":"AROA"#);
                        json::base32(&mut self.out, &mut self.rng, 17);
                        self.out.push_str(r#"","arn":"arn:aws:iam::"#);
                        self.out.push_str(acct);
                        self.out.push_str(":role/");
                        self.out.push_str(&self.name);
                        self.out.push_str(r#"","createDate":"#);
                        self.created_date();
                        self.out.push_str(r#","assumeRolePolicyDocument":"%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Principal%22%3A%7B%22Service%22%3A%22lambda.amazonaws.com%22%7D%2C%22Action%22%3A%22sts%3AAssumeRole%22%7D%5D%7D"}}"#);
                    }
                    RSp::CreateUser => {
                        self.out.push_str(r#"{"user":{"path":"/","userName":"#);
                        q(&mut self.out, &self.name);
                        self.out.push_str(r#","userId":"AIDA"#);
                        json::base32(&mut self.out, &mut self.rng, 17);
                        self.out.push_str(r#"","arn":"arn:aws:iam::"#);
                        self.out.push_str(acct);
                        self.out.push_str(":user/");
                        self.out.push_str(&self.name);
                        self.out.push_str(r#"","createDate":"#);
                        self.created_date();
                        self.out.push_str("}}");
                    }
                    RSp::CreatePolicy => {
                        self.out.push_str(r#"{"policy":{"policyName":"#);
                        q(&mut self.out, &self.name);
                        self.out.push_str(r#","policyId":"ANPA"#);
                        json::base32(&mut self.out, &mut self.rng, 17);
                        self.out.push_str(r#"","arn":"arn:aws:iam::"#);
                        self.out.push_str(acct);
                        self.out.push_str(":policy/");
                        self.out.push_str(&self.name);
                        self.out.push_str(r#"","path":"/","defaultVersionId":"v1","attachmentCount":0,"permissionsBoundaryUsageCount":0,"isAttachable":true,"createDate":"#);
                        self.created_date();
                        self.out.push_str(r#","updateDate":"#);
                        self.created_date();
                        self.out.push_str("}}");
                    }
                    RSp::CreateAccessKey => {
                        self.out.push_str(r#"{"accessKey":{"userName":"#);
                        self.val(V::User);
                        self.out.push_str(r#","accessKeyId":"AKIA"#);
                        json::base32(&mut self.out, &mut self.rng, 16);
                        self.out.push_str(r#"","status":"Active","createDate":"#);
                        self.created_date();
                        self.out.push_str("}}");
                    }
                    RSp::LoginProfile => {
                        self.out.push_str(r#"{"loginProfile":{"userName":"#);
                        self.val(V::User);
                        self.out.push_str(r#","createDate":"#);
                        self.created_date();
                        self.out.push_str(r#","passwordResetRequired":true}}"#);
                    }
                    RSp::ConsoleLogin => self.out.push_str("null"),
                    RSp::FunctionConfig => {
                        let f = pick(self, FUNCTIONS);
                        self.out.push_str(r#"{"functionName":"#);
                        q(&mut self.out, f);
                        self.out.push_str(r#","functionArn":"#);
                        self.quoted(|g| {
                            g.arn_head("lambda");
                            g.out.push_str(":function:");
                            g.out.push_str(f);
                        });
                        self.out.push_str(r#","runtime":"python3.12","role":"#);
                        self.val(V::RoleArn);
                        self.out.push_str(r#","handler":"app.handler","codeSize":"#);
                        json::num(&mut self.out, 10_000 + below(&mut self.rng, 5_000_000) as u64);
                        self.out.push_str(r#","description":"","timeout":30,"memorySize":512,"lastModified":"#);
                        self.quoted(|g| json::time(&mut g.out, g.time_ms));
                        self.out.push_str(r#","codeSha256":"#);
                        self.quoted(|g| json::alnum(&mut g.out, &mut g.rng, 43));
                        self.out
                            .push_str(r#","version":"$LATEST","tracingConfig":{"mode":"PassThrough"},"revisionId":"#);
                        self.val(V::Uuid);
                        self.out.push_str(r#","state":"Active","lastUpdateStatus":"InProgress","packageType":"Zip","architectures":["arm64"],"ephemeralStorage":{"size":512}}"#);
                    }
                    RSp::TableDescription => {
                        self.out.push_str(r#"{"tableDescription":{"tableName":"#);
                        self.val(V::Table);
                        self.out.push_str(r#","tableStatus":"UPDATING","creationDateTime":"#);
                        self.created_date();
                        self.out.push_str(r#","tableSizeBytes":0,"itemCount":0,"tableArn":"#);
                        self.val(V::TableArn);
                        self.out.push_str(r#","tableId":"#);
                        self.val(V::Uuid);
                        self.out.push_str(r#","billingModeSummary":{"billingMode":"PAY_PER_REQUEST"},"deletionProtectionEnabled":true}}"#);
                    }
                    RSp::DbInstance => {
                        self.out.push_str(r#"{"dBInstanceIdentifier":"#);
                        self.val(V::Db);
                        self.out.push_str(r#","dBInstanceClass":"db.r6g.large","engine":"postgres","dBInstanceStatus":"modifying","masterUsername":"postgres","allocatedStorage":200,"preferredBackupWindow":"03:00-03:30","backupRetentionPeriod":7,"multiAZ":true,"engineVersion":"16.3","autoMinorVersionUpgrade":true,"storageType":"gp3","storageEncrypted":true,"kmsKeyId":"#);
                        self.kms_arn();
                        self.out.push_str(r#","dbiResourceId":"db-"#);
                        json::base32(&mut self.out, &mut self.rng, 26);
                        self.out.push_str(r#"","dBInstanceArn":"#);
                        self.val(V::DbArn);
                        self.out.push_str(r#","deletionProtection":true}"#);
                    }
                    RSp::ChangeSet => {
                        self.out.push_str(r#"{"id":"#);
                        self.quoted(|g| {
                            g.arn_head("cloudformation");
                            g.out.push_str(":changeSet/terraform/");
                            json::uuid(&mut g.out, &mut g.rng);
                        });
                        self.out.push_str(r#","stackId":"#);
                        self.val(V::StackArn);
                        self.out.push('}');
                    }
                    RSp::StartSession => {
                        self.out.push_str(r#"{"sessionId":"#);
                        self.val(V::SessionId);
                        self.out.push_str(
                            r#","tokenValue":"Value hidden due to security reasons.","streamUrl":"wss://ssmmessages."#,
                        );
                        self.out.push_str(self.region);
                        self.out.push_str(r#".amazonaws.com/v1/data-channel/session"}"#);
                    }
                    RSp::SendCommand => {
                        self.out.push_str(r#"{"command":{"commandId":"#);
                        self.val(V::Uuid);
                        self.out.push_str(r#","documentName":"#);
                        self.val(V::Document);
                        self.out.push_str(r#","documentVersion":"$DEFAULT","requestedDateTime":"#);
                        self.quoted(|g| json::time(&mut g.out, g.time_ms));
                        self.out.push_str(r#","status":"Pending","statusDetails":"Pending","targetCount":1,"completedCount":0,"errorCount":0,"timeoutSeconds":3600}}"#);
                    }
                    RSp::SecretVersion => {
                        self.out.push_str(r#"{"aRN":"#);
                        self.val(V::SecretArn);
                        self.out.push_str(r#","versionId":"#);
                        self.val(V::Uuid);
                        self.out.push('}');
                    }
                    RSp::EksUpdate => {
                        self.out.push_str(r#"{"update":{"id":"#);
                        self.val(V::Uuid);
                        self.out.push_str(r#","status":"InProgress","type":"ConfigUpdate","params":[],"createdAt":"#);
                        self.quoted(|g| json::time(&mut g.out, g.time_ms));
                        self.out.push_str(r#","errors":[]}}"#);
                    }
                    RSp::Route53Change => {
                        self.out.push_str(r#"{"changeInfo":{"id":"/change/"#);
                        json::base32(&mut self.out, &mut self.rng, 21);
                        self.out.push_str(r#"","status":"PENDING","submittedAt":"#);
                        self.created_date();
                        self.out.push_str("}}");
                    }
                }
            }
        }
    }

    /// A creation date as the IAM/DynamoDB JSON carries it in CloudTrail: `Jan 1, 2026, 9:00:00 AM`.
    fn created_date(&mut self) {
        const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
        let mut iso = String::with_capacity(20);
        json::time(&mut iso, self.time_ms);
        let (y, rest) = iso.split_at(4);
        let m: usize = rest[1..3].parse().unwrap_or(1);
        let d: u32 = rest[4..6].parse().unwrap_or(1);
        let h: u32 = rest[7..9].parse().unwrap_or(0);
        let (h12, ampm) = match h {
            0 => (12, "AM"),
            1..=11 => (h, "AM"),
            12 => (12, "PM"),
            _ => (h - 12, "PM"),
        };
        self.out.push('"');
        self.out.push_str(MONTHS[(m - 1).min(11)]);
        self.out.push(' ');
        json::num(&mut self.out, d as u64);
        self.out.push_str(", ");
        self.out.push_str(y);
        self.out.push_str(", ");
        json::num(&mut self.out, h12 as u64);
        self.out.push(':');
        self.out.push_str(&rest[10..15]);
        self.out.push(' ');
        self.out.push_str(ampm);
        self.out.push('"');
    }

    /// ConsoleLogin-style `responseElements` and `additionalEventData`, success or failure.
    pub(crate) fn signin_result(&mut self, name: &str, failed: bool) {
        self.out.push_str(r#","responseElements":{""#);
        self.out.push_str(name);
        self.out.push_str(if failed { r#"":"Failure"}"# } else { r#"":"Success"}"# });
        if name == "ConsoleLogin" {
            self.out.push_str(r#","additionalEventData":{"LoginTo":"https://console.aws.amazon.com/console/home?state=hashArgs%23&isauthcode=true","MobileVersion":"No","MFAUsed":"#);
            q(&mut self.out, if below(&mut self.rng, 3) == 0 { "No" } else { "Yes" });
            self.out.push('}');
        }
    }

    /// `kv` re-exported for the record writer.
    pub(crate) fn kv(&mut self, key: &str, value: &str) {
        kv(&mut self.out, key, value);
    }
}
