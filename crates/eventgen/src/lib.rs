//! Deterministic, realistic synthetic CloudTrail traffic — the engine behind `opentrail gen`.
//!
//! The same [`GenOptions`] always produce byte-identical records: every random choice comes from one
//! ChaCha stream seeded by [`GenOptions::seed`]; nothing reads the clock or iterates a hash map. The
//! simulated organisation (accounts, users, roles, resources — see `world`) is fixed, so runs with
//! different seeds show the same cast doing different things.
//!
//! Records are written by hand into one reused buffer (no serde round trip): ~1.3 KB of JSON per event
//! at several hundred thousand events per second.

mod catalog;
mod json;
#[rustfmt::skip]
mod names;
mod shapes;
mod world;

use std::io::Write;
use std::sync::Arc;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use catalog::{APIS, Api, Errors, SIGNIN};
use shapes::ResourceRef;
use world::{ACCOUNTS, Agent, Kind, Principal, REGIONS, World, below, chance, skewed};

pub use catalog::Service;

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenOptions {
    /// Number of records.
    pub events: u64,
    /// Seed of the random stream: same seed, same bytes.
    pub seed: u64,
    /// Time of the first record's window.
    pub start: model::EventTime,
    /// Records are spread evenly (with jitter, still sorted) over `[start, start + span_ms)`.
    pub span_ms: i64,
}

impl Default for GenOptions {
    fn default() -> Self {
        GenOptions {
            events: 1000,
            seed: 1,
            start: model::EventTime::from_millis(1_767_225_600_000), // 2026-01-01T00:00:00Z
            span_ms: 86_400_000,
        }
    }
}

/// The records, one compact JSON object per item (no trailing newline), in `eventTime` order.
pub fn generate(opts: &GenOptions) -> impl Iterator<Item = String> + use<> {
    let mut g = Generator::new(opts);
    std::iter::from_fn(move || g.next_record().map(str::to_string))
}

/// Writes the records as NDJSON to `out`, buffered; returns the number written.
pub fn write_ndjson(opts: &GenOptions, out: &mut impl Write) -> std::io::Result<u64> {
    // Hard-coded: flush in ~256 KiB writes.
    const FLUSH_BYTES: usize = 256 * 1024;
    let mut g = Generator::new(opts);
    let mut buf = Vec::with_capacity(FLUSH_BYTES + 8 * 1024);
    let mut n = 0;
    while let Some(rec) = g.next_record() {
        buf.extend_from_slice(rec.as_bytes());
        buf.push(b'\n');
        n += 1;
        if buf.len() >= FLUSH_BYTES {
            out.write_all(&buf)?;
            buf.clear();
        }
    }
    out.write_all(&buf)?;
    out.flush()?;
    Ok(n)
}

/// The number of distinct API names and services in the catalog (for docs and the CLI's `--help`).
pub fn catalog_size() -> (usize, usize) {
    let mut names: Vec<&str> = APIS.iter().map(|a| a.name).collect();
    names.sort_unstable();
    names.dedup();
    let mut sources: Vec<&str> = APIS.iter().map(|a| a.svc.source).collect();
    sources.sort_unstable();
    sources.dedup();
    (names.len(), sources.len())
}

/// Steps through the event times and writes one record per step.
struct Generator {
    g: Gen,
    next: u64,
    events: u64,
    start: i64,
    span: i64,
    /// The first whole second inside the window, when there is one: times print truncated to the second,
    /// and must not print before `start`.
    first_second: Option<i64>,
}

impl Generator {
    fn new(opts: &GenOptions) -> Generator {
        let start = opts.start.millis();
        let span = opts.span_ms.max(0);
        let first_second = {
            let c = start.div_euclid(1000) * 1000 + if start.rem_euclid(1000) == 0 { 0 } else { 1000 };
            (c < start.saturating_add(span.max(1))).then_some(c)
        };
        Generator {
            g: Gen::new(Arc::new(World::build()), opts.seed),
            next: 0,
            events: opts.events,
            start,
            span,
            first_second,
        }
    }

    fn base(&self, i: u64) -> i64 {
        if self.events == 0 {
            return self.start;
        }
        self.start + (i as i128 * self.span as i128 / self.events as i128) as i64
    }

    fn next_record(&mut self) -> Option<&str> {
        if self.next >= self.events {
            return None;
        }
        let i = self.next;
        self.next += 1;
        let lo = self.base(i);
        let hi = self.base(i + 1).max(lo);
        let width = (hi - lo) as u64;
        // Jitter within this event's own slot keeps the sequence sorted.
        let jitter = if width > 1 { (rand::RngCore::next_u64(&mut self.g.rng) % width) as i64 } else { 0 };
        let mut t = lo + jitter;
        if let Some(first) = self.first_second {
            t = t.max(first);
        }
        self.g.event(t);
        Some(&self.g.out)
    }
}

/// The per-run writer state: the world, the random stream, the output buffer and per-event scratch.
pub(crate) struct Gen {
    pub(crate) w: Arc<World>,
    pub(crate) rng: ChaCha8Rng,
    pub(crate) out: String,
    pub(crate) time_ms: i64,
    pub(crate) region: &'static str,
    pub(crate) account: usize,
    pub(crate) res: Vec<ResourceRef>,
    pub(crate) res_buf: String,
    /// The entity a request created (user, role, instance type…), for its response to repeat.
    pub(crate) name: String,
    pub(crate) bucket: String,
    /// The role session an AssumeRole request targets.
    pub(crate) assumed: Option<usize>,
}

const CLI_V2: &[&str] = &[
    "aws-cli/2.15.30 md/awscrt#0.19.19 ua/2.0 os/linux#6.5.0-1016-aws md/arch#x86_64 lang/python#3.11.8 md/pyimpl#CPython cfg/retry-mode#standard md/installer#exe md/distrib#ubuntu.22 md/prompt#off md/command#",
    "aws-cli/2.22.4 md/awscrt#0.22.0 ua/2.0 os/macos#23.6.0 md/arch#arm64 lang/python#3.12.6 md/pyimpl#CPython cfg/retry-mode#standard md/installer#source md/prompt#off md/command#",
    "aws-cli/2.13.5 Python/3.11.4 Darwin/22.6.0 exe/x86_64 prompt/off command/",
    "aws-cli/2.9.19 Python/3.9.11 Windows/10 exe/AMD64 prompt/off command/",
];
const CLI_V1: &[&str] = &[
    "aws-cli/1.32.60 Python/3.9.16 Linux/5.10.210-201.852.amzn2.x86_64 botocore/1.34.60",
    "aws-cli/1.29.62 Python/3.11.5 Darwin/23.1.0 botocore/1.31.62",
    "aws-cli/1.18.147 Python/2.7.18 Linux/4.14.301-224.520.amzn2.x86_64 botocore/1.18.6",
];
const BOTO3: &[&str] = &[
    "Boto3/1.34.51 md/Botocore#1.34.51 ua/2.0 os/linux#5.10.210-201.852.amzn2.x86_64 md/arch#x86_64 lang/python#3.11.6 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.34.51",
    "Boto3/1.28.62 Python/3.9.18 Linux/5.10.198-187.748.amzn2.x86_64 exec-env/AWS_Lambda_python3.9 Botocore/1.31.62",
    "Boto3/1.35.36 md/Botocore#1.35.36 ua/2.0 os/linux#5.10.226-193.880.amzn2.x86_64 md/arch#x86_64 lang/python#3.12.7 md/pyimpl#CPython exec-env/AWS_Lambda_python3.12 cfg/retry-mode#legacy Botocore/1.35.36",
];
const TERRAFORM: &[&str] = &[
    "APN/1.0 HashiCorp/1.0 Terraform/1.7.4 (+https://www.terraform.io) terraform-provider-aws/5.40.0 (+https://registry.terraform.io/providers/hashicorp/aws) aws-sdk-go-v2/1.25.2 os/linux lang/go#1.21.8 md/GOOS#linux md/GOARCH#amd64",
    "APN/1.0 HashiCorp/1.0 Terraform/1.5.7 (+https://www.terraform.io) terraform-provider-aws/5.17.0 (+https://registry.terraform.io/providers/hashicorp/aws) aws-sdk-go/1.45.11 (go1.20.8; linux; amd64)",
    "APN/1.0 HashiCorp/1.0 Terraform/1.9.8 (+https://www.terraform.io) terraform-provider-aws/5.75.0 (+https://registry.terraform.io/providers/hashicorp/aws) aws-sdk-go-v2/1.32.4 ua/2.1 os/linux lang/go#1.23.2 md/GOOS#linux md/GOARCH#amd64",
];
const JAVA: &[&str] = &[
    "aws-sdk-java/1.12.661 Linux/5.10.209-198.858.amzn2.x86_64 OpenJDK_64-Bit_Server_VM/17.0.10+7-LTS java/17.0.10 vendor/Amazon.com_Inc. cfg/retry-mode/standard",
    "aws-sdk-java/2.25.6 Linux/5.10.213-201.855.amzn2.x86_64 OpenJDK_64-Bit_Server_VM/21.0.2+13-LTS Java/21.0.2 vendor/Amazon.com_Inc. io/sync http/Apache cfg/retry-mode/legacy",
];
const GO: &[&str] = &[
    "aws-sdk-go/1.50.30 (go1.21.7; linux; amd64)",
    "aws-sdk-go-v2/1.25.2 os/linux lang/go#1.22.1 md/GOOS#linux md/GOARCH#amd64",
    "aws-sdk-go/1.44.298 (go1.20.5; linux; amd64) amazon-ssm-agent/3.2.1297.0",
];
const BROWSERS: &[&str] = &[
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36 Edg/130.0.0.0",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:132.0) Gecko/20100101 Firefox/132.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
];
/// Agents a principal occasionally uses besides its usual one.
const OTHER_AGENTS: &[Agent] =
    &[Agent::CliV2, Agent::CliV2, Agent::Boto3, Agent::Console, Agent::Terraform, Agent::GoSdk, Agent::CliV1];

/// Hard-coded rates, in events per million.
const SERVICE_CALLS_PER_MILLION: usize = 175_000;
const ROOT_PER_MILLION: usize = 4_000;
const IAM_USER_PER_MILLION: usize = 250_000;
const ERRORS_PER_MILLION: u32 = 40_000;
const SIGNIN_FAILURES_PER_MILLION: u32 = 30_000;

impl Gen {
    fn new(w: Arc<World>, seed: u64) -> Gen {
        Gen {
            w,
            rng: ChaCha8Rng::seed_from_u64(seed),
            out: String::with_capacity(8 * 1024),
            time_ms: 0,
            region: REGIONS[0].0,
            account: 0,
            res: Vec::with_capacity(4),
            res_buf: String::with_capacity(256),
            name: String::with_capacity(64),
            bucket: String::with_capacity(64),
            assumed: None,
        }
    }

    /// Writes one record at `time_ms` into `self.out`.
    fn event(&mut self, time_ms: i64) {
        self.out.clear();
        self.res.clear();
        self.res_buf.clear();
        self.assumed = None;
        self.time_ms = time_ms;
        let w = Arc::clone(&self.w);
        let roll = below(&mut self.rng, 1_000_000);
        if roll < SERVICE_CALLS_PER_MILLION {
            let (api, host) = w.service_calls[w.service_call_pick.sample(&mut self.rng)];
            self.service_event(api, host);
            return;
        }
        let p = if roll < SERVICE_CALLS_PER_MILLION + ROOT_PER_MILLION {
            &w.roots[skewed(&mut self.rng, w.roots.len())]
        } else if roll < SERVICE_CALLS_PER_MILLION + ROOT_PER_MILLION + IAM_USER_PER_MILLION {
            &w.users[w.user_pick.sample(&mut self.rng)]
        } else {
            &w.sessions[w.session_pick.sample(&mut self.rng)]
        };
        let api_idx = match (&p.apis, p.kind) {
            (Some(list), _) => list[skewed(&mut self.rng, list.len())],
            (None, Kind::Root) => w.root_apis[skewed(&mut self.rng, w.root_apis.len())],
            (None, _) => w.api_pick.sample(&mut self.rng),
        };
        self.principal_event(&w, p, api_idx);
    }

    fn pick_region(&mut self, api: &Api, home: usize) -> &'static str {
        if api.svc.global {
            return "us-east-1";
        }
        if below(&mut self.rng, 100) < 85 {
            REGIONS[home].0
        } else {
            REGIONS[self.w.region_pick.sample(&mut self.rng)].0
        }
    }

    fn principal_event(&mut self, w: &World, p: &Principal, api_idx: usize) {
        let api = &APIS[api_idx];
        let signin = std::ptr::eq(api.svc, &SIGNIN);
        self.account = p.account;
        self.region = self.pick_region(api, p.region);
        let agent = if signin {
            Agent::Console
        } else if matches!(p.agent, Agent::Service(_)) || below(&mut self.rng, 100) < 85 {
            p.agent
        } else {
            OTHER_AGENTS[below(&mut self.rng, OTHER_AGENTS.len())]
        };
        let sticky = p.home_ips[0] as usize;

        let o = &mut self.out;
        o.push_str(r#"{"eventVersion":"#);
        let version = if api.svc.version == "1.11" && below(&mut self.rng, 100) < 6 { "1.10" } else { api.svc.version };
        json::q(o, version);
        o.push_str(r#","userIdentity":"#);
        o.push_str(&p.ident_head);
        if !signin {
            let key = &p.keys[below(&mut self.rng, p.keys.len())];
            o.push_str(key);
        }
        o.push_str(&p.ident_mid);
        if p.kind == Kind::AssumedRole {
            let age_ms = 1000 * below(&mut self.rng, p.session_max_secs.max(1) as usize) as i64;
            json::time(o, self.time_ms - age_ms);
            o.push_str(&p.ident_tail);
        }
        self.common_head(api);

        // sourceIPAddress and userAgent
        let mut private_ip = false;
        o_kv_start(&mut self.out, "sourceIPAddress");
        match agent {
            Agent::Service(host) => self.out.push_str(host),
            _ => {
                let home = below(&mut self.rng, 100) < 85;
                private_ip = p.private_ips && agent != Agent::Console;
                let pool = if private_ip { &w.private_ips } else { &w.public_ips };
                let i = if home {
                    p.home_ips[below(&mut self.rng, p.home_ips.len())] as usize % pool.len()
                } else {
                    skewed(&mut self.rng, pool.len())
                };
                self.out.push_str(&pool[i]);
            }
        }
        self.out.push('"');
        o_kv_start(&mut self.out, "userAgent");
        let pick = |rng: &mut ChaCha8Rng, list: &[&'static str]| -> &'static str {
            if below(rng, 100) < 80 { list[sticky % list.len()] } else { list[below(rng, list.len())] }
        };
        match agent {
            Agent::Service(host) => self.out.push_str(host),
            Agent::Console if signin => self.out.push_str(pick(&mut self.rng, BROWSERS)),
            Agent::Console => match below(&mut self.rng, 100) {
                0..=39 => self.out.push_str("AWS Internal"),
                40..=64 => self.out.push_str("console.amazonaws.com"),
                _ => self.out.push_str(pick(&mut self.rng, BROWSERS)),
            },
            Agent::CliV2 => {
                let ua = pick(&mut self.rng, CLI_V2);
                self.out.push_str(ua);
                self.out.push_str(&w.cli_commands[api_idx]);
            }
            Agent::CliV1 => self.out.push_str(pick(&mut self.rng, CLI_V1)),
            Agent::Boto3 => self.out.push_str(pick(&mut self.rng, BOTO3)),
            Agent::Terraform => self.out.push_str(pick(&mut self.rng, TERRAFORM)),
            Agent::JavaSdk => self.out.push_str(pick(&mut self.rng, JAVA)),
            Agent::GoSdk => self.out.push_str(pick(&mut self.rng, GO)),
        }
        self.out.push('"');

        let is_service = matches!(agent, Agent::Service(_));
        let failed = !signin && !is_service && chance(&mut self.rng, ERRORS_PER_MILLION);
        if failed {
            self.error(api, &p.arn);
        }
        if signin {
            let signin_failed = chance(&mut self.rng, SIGNIN_FAILURES_PER_MILLION);
            if signin_failed {
                self.out.push_str(r#","errorMessage":"Failed authentication""#);
            }
            self.out.push_str(r#","requestParameters":null"#);
            self.signin_result(api.name, signin_failed);
        } else {
            self.out.push_str(r#","requestParameters":"#);
            self.req(api.req);
            self.out.push_str(r#","responseElements":"#);
            let ro = w.read_only[api_idx];
            let answers = !ro || api.name.starts_with("AssumeRole") || api.name.starts_with("GetSessionToken");
            if failed || !answers {
                self.out.push_str("null");
            } else {
                self.resp(api.resp);
            }
        }
        if std::ptr::eq(api.svc, &catalog::S3) {
            self.s3_additional_data(api);
        }
        self.common_tail(api, w.read_only[api_idx], if signin { "AwsConsoleSignIn" } else { "AwsApiCall" });
        if private_ip && below(&mut self.rng, 2) == 0 {
            self.out.push_str(r#","vpcEndpointId":"#);
            let i = skewed(&mut self.rng, w.vpc_endpoints.len());
            json::q(&mut self.out, &w.vpc_endpoints[i]);
            self.out.push_str(r#","vpcEndpointAccountId":"#);
            json::q(&mut self.out, ACCOUNTS[self.account].id);
        }
        self.category(api);
        if !is_service {
            self.tls(api, signin);
        }
        if agent == Agent::Console && !signin {
            self.out.push_str(r#","sessionCredentialFromConsole":"true""#);
        }
        self.out.push('}');
    }

    /// A call an AWS service makes in its own name, or a service event.
    fn service_event(&mut self, api_idx: usize, host: &'static str) {
        let api = &APIS[api_idx];
        self.account = self.w.account_pick.sample(&mut self.rng);
        let region_idx = self.w.region_pick.sample(&mut self.rng);
        self.region = if api.svc.global { "us-east-1" } else { REGIONS[region_idx].0 };
        let service_event = api.tier == 0;
        self.out.push_str(r#"{"eventVersion":"#);
        json::q(&mut self.out, api.svc.version);
        if service_event {
            self.out.push_str(r#","userIdentity":{"accountId":"#);
            json::q(&mut self.out, ACCOUNTS[self.account].id);
            self.out.push_str(r#","invokedBy":"#);
        } else {
            self.out.push_str(r#","userIdentity":{"type":"AWSService","invokedBy":"#);
        }
        json::q(&mut self.out, host);
        self.out.push('}');
        self.common_head(api);
        o_kv_start(&mut self.out, "sourceIPAddress");
        self.out.push_str(host);
        self.out.push('"');
        o_kv_start(&mut self.out, "userAgent");
        self.out.push_str(host);
        self.out.push('"');
        self.out.push_str(r#","requestParameters":"#);
        self.req(api.req);
        self.out.push_str(r#","responseElements":"#);
        let ro = self.w.read_only[api_idx];
        if ro && !api.name.starts_with("AssumeRole") {
            self.out.push_str("null");
        } else {
            self.resp(api.resp);
        }
        if service_event {
            self.out.push_str(r#","serviceEventDetails":{"#);
            match api.name {
                "RotationSucceeded" => {
                    self.out.push_str(r#""secretId":"#);
                    self.val(shapes::V::SecretArn);
                }
                _ => self.out.push_str(r#""status":"SUCCEEDED""#),
            }
            self.out.push('}');
        }
        self.common_tail(api, ro, if service_event { "AwsServiceEvent" } else { "AwsApiCall" });
        if api.name == "AssumeRole" && below(&mut self.rng, 4) == 0 {
            self.out.push_str(r#","sharedEventID":"#);
            self.val(shapes::V::Uuid);
        }
        self.category(api);
        self.out.push('}');
    }

    /// `eventTime` … `awsRegion`.
    fn common_head(&mut self, api: &Api) {
        self.out.push_str(r#","eventTime":""#);
        json::time(&mut self.out, self.time_ms);
        self.out.push('"');
        self.out.push(',');
        self.kv("eventSource", api.svc.source);
        self.out.push(',');
        self.kv("eventName", api.name);
        self.out.push(',');
        self.kv("awsRegion", self.region);
    }

    /// `requestID` … `recipientAccountId`.
    fn common_tail(&mut self, api: &Api, read_only: bool, event_type: &str) {
        self.out.push_str(r#","requestID":""#);
        if std::ptr::eq(api.svc, &catalog::S3) {
            json::hex_upper(&mut self.out, &mut self.rng, 16);
        } else {
            json::uuid(&mut self.out, &mut self.rng);
        }
        self.out.push_str(r#"","eventID":""#);
        json::uuid(&mut self.out, &mut self.rng);
        self.out.push_str(r#"","readOnly":"#);
        self.out.push_str(if read_only { "true" } else { "false" });
        if !self.res.is_empty() {
            self.out.push_str(r#","resources":["#);
            for (i, r) in self.res.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                self.out.push('{');
                if r.with_account {
                    json::kv(&mut self.out, "accountId", ACCOUNTS[self.account].id);
                    self.out.push(',');
                }
                json::kv(&mut self.out, "type", r.kind);
                self.out.push(',');
                json::kv(&mut self.out, "ARN", &self.res_buf[r.arn.clone()]);
                self.out.push('}');
            }
            self.out.push(']');
        }
        self.out.push(',');
        self.kv("eventType", event_type);
        self.out.push_str(if api.data { r#","managementEvent":false"# } else { r#","managementEvent":true"# });
        self.out.push(',');
        self.kv("recipientAccountId", ACCOUNTS[self.account].id);
    }

    fn category(&mut self, api: &Api) {
        self.out.push_str(if api.data { r#","eventCategory":"Data""# } else { r#","eventCategory":"Management""# });
    }

    fn tls(&mut self, api: &Api, signin: bool) {
        let v13 = below(&mut self.rng, 100) < 70;
        self.out.push_str(if v13 {
            r#","tlsDetails":{"tlsVersion":"TLSv1.3","cipherSuite":"TLS_AES_128_GCM_SHA256","clientProvidedHostHeader":""#
        } else {
            r#","tlsDetails":{"tlsVersion":"TLSv1.2","cipherSuite":"ECDHE-RSA-AES128-GCM-SHA256","clientProvidedHostHeader":""#
        });
        if signin {
            self.out.push_str(self.region);
            self.out.push_str(".signin.aws.amazon.com");
        } else if std::ptr::eq(api.svc, &catalog::S3) && !self.bucket.is_empty() && api.name != "ListBuckets" {
            self.out.push_str(&self.bucket);
            self.out.push_str(".s3.");
            self.out.push_str(self.region);
            self.out.push_str(".amazonaws.com");
        } else {
            self.out.push_str(api.svc.host);
            if !api.svc.global {
                self.out.push('.');
                self.out.push_str(self.region);
            }
            self.out.push_str(".amazonaws.com");
        }
        self.out.push_str("\"}");
    }

    fn s3_additional_data(&mut self, api: &Api) {
        self.out.push_str(r#","additionalEventData":{"SignatureVersion":"SigV4","CipherSuite":"TLS_AES_128_GCM_SHA256","bytesTransferredIn":"#);
        let (bytes_in, bytes_out) = match api.name {
            "PutObject" | "UploadPart" => (1 + skewed(&mut self.rng, 50_000_000) as u64, 0),
            "GetObject" => (0, 1 + skewed(&mut self.rng, 20_000_000) as u64),
            _ => (0, below(&mut self.rng, 2_000) as u64),
        };
        json::num(&mut self.out, bytes_in);
        self.out.push_str(r#","AuthenticationMethod":"AuthHeader","x-amz-id-2":""#);
        json::alnum(&mut self.out, &mut self.rng, 76);
        self.out.push_str(r#"","bytesTransferredOut":"#);
        json::num(&mut self.out, bytes_out);
        self.out.push('}');
    }

    /// `errorCode` and `errorMessage`, in the dialect of the API's service.
    fn error(&mut self, api: &Api, arn: &str) {
        let r = below(&mut self.rng, 100);
        let action = |o: &mut String| {
            o.push_str(api.svc.iam);
            o.push(':');
            let base = api.name.split(|c: char| c.is_ascii_digit()).next().unwrap_or(api.name);
            o.push_str(base);
        };
        let denied = |o: &mut String, region: &str, account: &str| {
            o.push_str("User: ");
            o.push_str(arn);
            o.push_str(" is not authorized to perform: ");
            action(o);
            o.push_str(" on resource: arn:aws:");
            o.push_str(api.svc.iam);
            o.push(':');
            if !api.svc.global {
                o.push_str(region);
            }
            o.push(':');
            o.push_str(account);
            o.push_str(":* because no identity-based policy allows the ");
            action(o);
            o.push_str(" action");
        };
        let (region, account) = (self.region, ACCOUNTS[self.account].id);
        let o = &mut self.out;
        let code_msg = |o: &mut String, code: &str| {
            o.push_str(r#","errorCode":""#);
            o.push_str(code);
            o.push_str(r#"","errorMessage":""#);
        };
        match api.svc.errors {
            Errors::Ec2 => match r {
                0..=49 => {
                    code_msg(o, "Client.UnauthorizedOperation");
                    o.push_str("You are not authorized to perform this operation. ");
                    denied(o, region, account);
                    o.push_str(". Encoded authorization failure message: ");
                    json::alnum(o, &mut self.rng, 96);
                }
                50..=69 => {
                    code_msg(o, "Client.RequestLimitExceeded");
                    o.push_str("Request limit exceeded.");
                }
                70..=89 => {
                    code_msg(o, "Client.InvalidInstanceID.NotFound");
                    o.push_str("The instance ID 'i-0");
                    json::hex(o, &mut self.rng, 16);
                    o.push_str("' does not exist");
                }
                _ => {
                    code_msg(o, "Client.InvalidParameterValue");
                    o.push_str("Value () for parameter groupId is invalid. The value cannot be empty");
                }
            },
            Errors::Iam => match r {
                0..=44 => {
                    code_msg(o, "AccessDenied");
                    denied(o, region, account);
                }
                45..=79 => {
                    code_msg(o, "NoSuchEntityException");
                    o.push_str("The role with name ");
                    let i = skewed(&mut self.rng, self.w.roles.len());
                    o.push_str(&self.w.roles[i].name);
                    o.push_str(" cannot be found.");
                }
                80..=89 => {
                    code_msg(o, "Throttling");
                    o.push_str("Rate exceeded");
                }
                _ => {
                    code_msg(
                        o,
                        if api.name.starts_with("Create") { "EntityAlreadyExistsException" } else { "ValidationError" },
                    );
                    o.push_str("1 validation error detected: Value at 'userName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\\\w+=,.@-]+");
                }
            },
            Errors::S3 => {
                let config_missing = match api.name {
                    "GetBucketPolicy" => Some(("NoSuchBucketPolicy", "The bucket policy does not exist")),
                    "GetBucketEncryption" => Some((
                        "ServerSideEncryptionConfigurationNotFoundError",
                        "The server side encryption configuration was not found",
                    )),
                    "GetBucketLifecycle" => {
                        Some(("NoSuchLifecycleConfiguration", "The lifecycle configuration does not exist"))
                    }
                    "GetBucketTagging" => Some(("NoSuchTagSet", "The TagSet does not exist")),
                    "GetBucketCors" => Some(("NoSuchCORSConfiguration", "The CORS configuration does not exist")),
                    "GetBucketWebsite" => Some((
                        "NoSuchWebsiteConfiguration",
                        "The specified bucket does not have a website configuration",
                    )),
                    "GetBucketReplication" => {
                        Some(("ReplicationConfigurationNotFoundError", "The replication configuration was not found"))
                    }
                    "GetBucketPublicAccessBlock" => Some((
                        "NoSuchPublicAccessBlockConfiguration",
                        "The public access block configuration was not found",
                    )),
                    _ => None,
                };
                match (r, config_missing) {
                    (0..=59, Some((code, msg))) => {
                        code_msg(o, code);
                        o.push_str(msg);
                    }
                    (0..=49, None) | (60..=84, Some(_)) => {
                        code_msg(o, "AccessDenied");
                        o.push_str("Access Denied");
                    }
                    (50..=79, None) if api.data => {
                        code_msg(o, "NoSuchKey");
                        o.push_str("The specified key does not exist.");
                    }
                    (50..=79, None) => {
                        code_msg(o, "NoSuchBucket");
                        o.push_str("The specified bucket does not exist");
                    }
                    _ => {
                        code_msg(o, "SlowDown");
                        o.push_str("Please reduce your request rate.");
                    }
                }
            }
            Errors::Query => match r {
                0..=44 => {
                    code_msg(o, "AccessDenied");
                    denied(o, region, account);
                }
                45..=69 => {
                    code_msg(o, "Throttling");
                    o.push_str("Rate exceeded");
                }
                _ => {
                    code_msg(o, "ValidationError");
                    o.push_str("1 validation error detected: Value null at 'name' failed to satisfy constraint: Member must not be null");
                }
            },
            Errors::Json => match r {
                0..=39 => {
                    code_msg(o, if r < 20 { "AccessDenied" } else { "AccessDeniedException" });
                    denied(o, region, account);
                }
                40..=59 => {
                    code_msg(o, "ThrottlingException");
                    o.push_str("Rate exceeded");
                }
                60..=84 => {
                    code_msg(o, "ResourceNotFoundException");
                    o.push_str("Requested resource not found");
                }
                _ => {
                    code_msg(o, "ValidationException");
                    o.push_str("1 validation error detected: Value null at 'name' failed to satisfy constraint: Member must not be null");
                }
            },
        }
        self.out.push('"');
    }
}

/// Appends `,"key":"` — the caller writes the (JSON-safe) value and the closing quote.
fn o_kv_start(o: &mut String, key: &str) {
    o.push_str(",\"");
    o.push_str(key);
    o.push_str("\":\"");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_has_hundreds_of_apis_over_about_thirty_services() {
        let (names, sources) = catalog_size();
        assert!(names >= 300, "{names} distinct API names");
        assert!(sources >= 29, "{sources} services");
    }

    #[test]
    fn every_catalog_key_of_the_world_resolves() {
        // World::build panics on unknown API keys in its role and service tables.
        let w = World::build();
        assert!(w.users.len() >= 190 && w.users.len() <= 210, "{} users", w.users.len());
        assert!(!w.sessions.is_empty());
    }
}
