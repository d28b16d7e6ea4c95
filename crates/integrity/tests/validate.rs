//! The validator against an in-memory bucket holding a trail built with the crate's own writers: a clean
//! chain is valid, and every kind of tampering is reported with the aws CLI's words or our own.

use std::collections::BTreeMap;
use std::sync::Mutex;

use integrity::digest::{ChainLink, Digest, DigestInput, LogFileEntry};
use integrity::keys::{PublicKey, SigningKey};
use integrity::layout::{DigestKey, LogFileKey, LogKind, unique_name};
use integrity::logfile::LogFileBuilder;
use integrity::time::iso_seconds;
use integrity::validate::{
    FileKind, Finding, Object, ObjectSource, Problem, Report, SourceError, Stream, ValidateParams, validate,
};
use model::EventTime;

const ACCOUNT: &str = "123456789012";
const REGION: &str = "us-east-1";
const TRAIL: &str = "t1";
const BUCKET: &str = "ctbucket";
const ARN: &str = "arn:aws:cloudtrail:us-east-1:123456789012:trail/t1";
const HOUR: i64 = 3_600_000;
const MIN: i64 = 60_000;
/// 2026-11-25T00:00:00Z
const T0: EventTime = EventTime(1_795_564_800_000);

#[derive(Default)]
struct Mem {
    objects: Mutex<BTreeMap<(String, String), Object>>,
}

impl ObjectSource for Mem {
    async fn list(&self, bucket: &str, prefix: &str, start_after: Option<&str>) -> Result<Vec<String>, SourceError> {
        let objects = self.objects.lock().unwrap();
        Ok(objects
            .keys()
            .filter(|(b, k)| b == bucket && k.starts_with(prefix) && start_after.is_none_or(|s| k.as_str() > s))
            .map(|(_, k)| k.clone())
            .collect())
    }

    async fn get(&self, bucket: &str, key: &str) -> Result<Option<Object>, SourceError> {
        Ok(self.objects.lock().unwrap().get(&(bucket.to_string(), key.to_string())).cloned())
    }
}

impl Mem {
    fn put(&self, key: &str, bytes: Vec<u8>, metadata: BTreeMap<String, String>) {
        self.objects.lock().unwrap().insert((BUCKET.into(), key.into()), Object { bytes, metadata });
    }
    fn take(&self, key: &str) -> Object {
        self.objects.lock().unwrap().remove(&(BUCKET.into(), key.into())).unwrap()
    }
    fn object(&self, key: &str) -> Object {
        self.objects.lock().unwrap()[&(BUCKET.into(), key.into())].clone()
    }
}

/// A trail's delivered files: `hours` hourly digests from T0, two log files an hour except in hour 1.
struct Trail {
    mem: Mem,
    keys: Vec<SigningKey>,
    digests: Vec<String>,
    logs: Vec<String>,
    link: Option<ChainLink>,
    seq: u8,
}

impl Trail {
    fn new() -> Trail {
        Trail {
            mem: Mem::default(),
            keys: vec![SigningKey::generate().unwrap()],
            digests: vec![],
            logs: vec![],
            link: None,
            seq: 0,
        }
    }

    fn build(hours: i64) -> Trail {
        let mut t = Trail::new();
        for h in 0..hours {
            t.hour(h, if h == 1 { 0 } else { 2 });
        }
        t
    }

    fn log_file(&mut self, delivered: EventTime, records: usize) -> LogFileEntry {
        let mut b = LogFileBuilder::new();
        for i in 0..records {
            let t = EventTime(delivered.0 - (i as i64 + 1) * 1000);
            let rec = format!(
                r#"{{"eventVersion":"1.08","eventTime":"{}","eventID":"e-{}-{i}","x":"{}"}}"#,
                iso_seconds(t),
                self.seq,
                "y".repeat(500)
            );
            b.push(rec.as_bytes(), t);
        }
        let file = b.finish();
        self.seq += 1;
        let key = LogFileKey {
            kind: LogKind::Events,
            prefix: None,
            account: ACCOUNT.into(),
            region: REGION.into(),
            delivered,
            unique: unique_name([self.seq; 16]),
        }
        .to_key();
        self.mem.put(&key, file.gzip.clone(), BTreeMap::new());
        self.logs.push(key.clone());
        LogFileEntry::new(BUCKET, &key, &file)
    }

    /// Delivers `files` log files in hour `h` and the digest for [T0 + h, T0 + h + 1).
    fn hour(&mut self, h: i64, files: usize) {
        let start = EventTime(T0.0 + h * HOUR);
        let entries = (0..files).map(|i| self.log_file(EventTime(start.0 + (10 + 30 * i as i64) * MIN), 20)).collect();
        self.digest(start, EventTime(start.0 + HOUR), entries);
    }

    fn digest(&mut self, start: EventTime, end: EventTime, log_files: Vec<LogFileEntry>) {
        let key = digest_key(end);
        let signer = self.keys.last().unwrap();
        let digest = Digest::new(DigestInput {
            account: ACCOUNT,
            start,
            end,
            bucket: BUCKET,
            key: &key,
            fingerprint: signer.fingerprint(),
            log_files,
            previous: self.link.as_ref(),
        });
        let signed = digest.sign(signer).unwrap();
        let meta = signed.metadata().into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        self.mem.put(&key, signed.gzip.clone(), meta);
        self.link = Some(signed.link(BUCKET, &key));
        self.digests.push(key);
    }

    fn public_keys(&self) -> Vec<PublicKey> {
        self.keys.iter().map(|k| k.public_key(EventTime(0), EventTime::MAX)).collect()
    }

    fn params(&self) -> ValidateParams {
        let mut p = ValidateParams::from_trail_arn(ARN, BUCKET, None, T0, EventTime(T0.0 + 24 * HOUR)).unwrap();
        p.hash_threads = 2;
        p
    }

    fn run(&self) -> Report {
        self.run_with(&self.params(), &self.public_keys())
    }

    fn run_with(&self, params: &ValidateParams, keys: &[PublicKey]) -> Report {
        futures::executor::block_on(validate(&self.mem, params, keys, &|_| {})).unwrap()
    }
}

fn digest_key(end: EventTime) -> String {
    DigestKey {
        prefix: None,
        account: ACCOUNT.into(),
        region: REGION.into(),
        trail: TRAIL.into(),
        home_region: REGION.into(),
        end,
    }
    .to_key()
}

/// (kind, key, problem) of every invalid file.
fn invalid(report: &Report) -> Vec<(FileKind, String, Problem)> {
    report
        .findings
        .iter()
        .filter_map(|f| match f {
            Finding::File(r) => r.problem.clone().map(|p| (r.kind, r.key.clone(), p)),
            _ => None,
        })
        .collect()
}

fn stderr(report: &Report) -> String {
    report.render(false).into_iter().filter(|(s, _)| *s == Stream::Stderr).map(|(_, t)| t).collect()
}

fn stdout(report: &Report, verbose: bool) -> String {
    report.render(verbose).into_iter().filter(|(s, _)| *s == Stream::Stdout).map(|(_, t)| t).collect()
}

#[test]
fn a_clean_chain_is_valid_and_printed_like_the_aws_cli() {
    let t = Trail::build(3);
    let report = t.run();
    assert_eq!(invalid(&report), vec![]);
    let c = report.counts();
    assert_eq!((c.digests_valid, c.logs_valid, c.digests_invalid, c.logs_invalid), (3, 4, 0, 0));
    assert_eq!(report.exit_code(), 0);
    assert_eq!(report.found, Some((T0, EventTime(T0.0 + 3 * HOUR))));
    assert!(report.log_bytes_hashed > 4 * 20 * 500);
    let out = stdout(&report, true);
    assert!(out.starts_with(&format!(
        "Validating log files for trail {ARN} between 2026-11-25T00:00:00Z and 2026-11-26T00:00:00Z\n\n"
    )));
    // Newest digest first, each followed by its log files.
    let lines: Vec<&str> = out.lines().filter(|l| l.contains("\ts3://")).collect();
    assert_eq!(lines[0], format!("Digest file\ts3://{BUCKET}/{}\tvalid", t.digests[2]));
    assert_eq!(lines[1], format!("Log file\ts3://{BUCKET}/{}\tvalid", t.logs[2]));
    assert_eq!(lines[3], format!("Digest file\ts3://{BUCKET}/{}\tvalid", t.digests[1]));
    assert_eq!(lines[4], format!("Digest file\ts3://{BUCKET}/{}\tvalid", t.digests[0]));
    assert!(out.ends_with(
        "valid\n\nResults requested for 2026-11-25T00:00:00Z to 2026-11-26T00:00:00Z\nResults found for 2026-11-25T00:00:00Z to 2026-11-25T03:00:00Z:\n\n3/3 digest files valid\n4/4 log files valid\n\n"
    ), "{out}");
    assert_eq!(stderr(&report), "");
    // Without --verbose, valid files are not listed.
    assert!(!stdout(&report, false).contains("\tvalid"));
}

#[test]
fn a_modified_log_file_does_not_match_its_hash() {
    let t = Trail::build(3);
    let mut b = LogFileBuilder::new();
    b.push(br#"{"eventTime":"2026-11-25T00:09:00Z","evil":true}"#, T0);
    t.mem.put(&t.logs[0], b.finish().gzip, BTreeMap::new());
    let report = t.run();
    assert_eq!(invalid(&report), vec![(FileKind::LogFile, t.logs[0].clone(), Problem::HashMismatch)]);
    assert_eq!(report.exit_code(), 1);
    assert_eq!(
        stderr(&report),
        format!("\nLog file\ts3://{BUCKET}/{}\tINVALID: hash value doesn't match\n\n", t.logs[0])
    );
    assert!(stdout(&report, false).contains("\n3/3 digest files valid\n3/4 log files valid, 1/4 log files INVALID\n"));
}

#[test]
fn a_deleted_log_file_is_not_found_and_a_non_gzip_one_has_an_invalid_format() {
    let t = Trail::build(3);
    t.mem.take(&t.logs[1]);
    t.mem.put(&t.logs[3], b"plain text".to_vec(), BTreeMap::new());
    let report = t.run();
    assert_eq!(
        invalid(&report),
        vec![
            (FileKind::LogFile, t.logs[3].clone(), Problem::InvalidFormat),
            (FileKind::LogFile, t.logs[1].clone(), Problem::NotFound),
        ]
    );
}

#[test]
fn a_deleted_digest_is_not_found_and_the_walk_goes_on_from_the_listing() {
    let t = Trail::build(4);
    t.mem.take(&t.digests[2]);
    let report = t.run();
    assert_eq!(invalid(&report), vec![(FileKind::Digest, t.digests[2].clone(), Problem::NotFound)]);
    // One missing digest explains the whole gap: no extra stretch is reported.
    assert!(!report.findings.iter().any(|f| matches!(f, Finding::MissingDigests { .. })));
    assert_eq!(report.counts().digests_valid, 3);
    assert_eq!(report.counts().logs_valid, 4, "the deleted digest's log files are not checked; the rest are");
}

#[test]
fn two_consecutive_deleted_digests_are_reported_as_a_missing_stretch() {
    let t = Trail::build(5);
    t.mem.take(&t.digests[3]);
    t.mem.take(&t.digests[2]);
    let report = t.run();
    // The aws CLI sees only the one the newest digest names; the other is in the stretch.
    assert_eq!(invalid(&report), vec![(FileKind::Digest, t.digests[3].clone(), Problem::NotFound)]);
    assert!(
        report
            .findings
            .contains(&Finding::MissingDigests { from: EventTime(T0.0 + 2 * HOUR), to: EventTime(T0.0 + 4 * HOUR) })
    );
    assert_eq!(report.exit_code(), 1);
    assert!(stderr(&report).contains(
        "Digest files\tbetween 2026-11-25T02:00:00Z and 2026-11-25T04:00:00Z\tINVALID: missing (more digest files were deleted than the ones reported not found)"
    ));
    // The log files the deleted digests listed are in no digest now.
    let extra: Vec<_> = invalid(&report).into_iter().filter(|(k, ..)| *k == FileKind::LogFile).collect();
    assert_eq!(extra, vec![]);
}

#[test]
fn a_corrupted_or_missing_signature_fails_verification() {
    let t = Trail::build(3);
    let mut o = t.mem.object(&t.digests[2]);
    let sig = o.metadata.get_mut("signature").unwrap();
    *sig = format!("00{}", &sig[2..]);
    t.mem.put(&t.digests[2], o.bytes, o.metadata);
    let mut o = t.mem.object(&t.digests[0]);
    o.metadata.clear();
    t.mem.put(&t.digests[0], o.bytes, o.metadata);
    let report = t.run();
    assert_eq!(
        invalid(&report),
        vec![
            (FileKind::Digest, t.digests[2].clone(), Problem::SignatureFailed),
            (FileKind::Digest, t.digests[0].clone(), Problem::SignatureFailed),
        ]
    );
    assert!(stderr(&report).contains("\tINVALID: signature verification failed\n"));
}

#[test]
fn a_digest_copied_over_another_key_has_been_moved() {
    let t = Trail::build(3);
    let older = t.mem.object(&t.digests[0]);
    t.mem.put(&t.digests[1], older.bytes, older.metadata);
    let report = t.run();
    assert_eq!(invalid(&report)[0], (FileKind::Digest, t.digests[1].clone(), Problem::Moved));
    assert!(stderr(&report).contains("INVALID: has been moved from its original location"));
}

#[test]
fn a_garbled_digest_has_an_invalid_format() {
    let t = Trail::build(2);
    let o = t.mem.object(&t.digests[1]);
    t.mem.put(&t.digests[1], integrity::digest::gzip(b"{\"digestEndTime\": 1}"), o.metadata.clone());
    t.mem.put(&t.digests[0], b"\x1f\x8b garbage".to_vec(), o.metadata);
    let report = t.run();
    assert_eq!(
        invalid(&report),
        vec![
            (FileKind::Digest, t.digests[1].clone(), Problem::InvalidFormat),
            (FileKind::Digest, t.digests[0].clone(), Problem::InvalidFormat),
        ]
    );
}

#[test]
fn an_unknown_fingerprint_or_a_non_pkcs1_key_is_reported_with_the_cli_words() {
    let t = Trail::build(1);
    let fp = t.keys[0].fingerprint().to_string();
    let report = t.run_with(&t.params(), &[SigningKey::generate().unwrap().public_key(EventTime(0), EventTime::MAX)]);
    assert_eq!(
        invalid(&report),
        vec![(
            FileKind::Digest,
            t.digests[0].clone(),
            Problem::PublicKeyNotFound { region: REGION.into(), fingerprint: fp.clone() }
        )]
    );
    assert!(
        stderr(&report).contains(&format!("INVALID: public key not found in region us-east-1 for fingerprint {fp}"))
    );
    // SubjectPublicKeyInfo instead of PKCS#1: prefix the AlgorithmIdentifier.
    let mut spki = t.public_keys();
    spki[0].der_pkcs1 = [&[0x30, 0x0d, 0x06, 0x09][..], &spki[0].der_pkcs1].concat();
    let report = t.run_with(&t.params(), &spki);
    assert!(stderr(&report).contains(&format!("INVALID: Unable to load PKCS #1 key with fingerprint {fp}")));
}

#[test]
fn a_chain_field_that_does_not_match_the_previous_digest_names_the_field() {
    let mut t = Trail::build(2);
    // A validly signed digest whose previousDigestHashValue is wrong (a buggy or compromised signer).
    t.link.as_mut().unwrap().hash_hex = "00".repeat(32);
    t.hour(2, 1);
    let report = t.run();
    assert_eq!(
        invalid(&report),
        vec![(
            FileKind::Digest,
            t.digests[2].clone(),
            Problem::ChainMismatch { field: "previousDigestHashValue", previous: format!("{BUCKET}/{}", t.digests[1]) }
        )]
    );
    assert!(stderr(&report).contains("INVALID: previousDigestHashValue does not match the previous digest file s3://"));

    let mut t = Trail::build(2);
    t.link.as_mut().unwrap().signature_hex = "ab".repeat(256);
    t.hour(2, 1);
    assert!(matches!(&invalid(&t.run())[0].2, Problem::ChainMismatch { field: "previousDigestSignature", .. }));
}

#[test]
fn a_log_file_in_no_digest_is_reported_and_a_moved_one_is_recognised_by_content() {
    let mut t = Trail::build(3);
    // An extra file planted inside hour 1.
    let mut b = LogFileBuilder::new();
    b.push(br#"{"eventTime":"2026-11-25T01:20:00Z"}"#, T0);
    let planted = LogFileKey {
        kind: LogKind::Events,
        prefix: None,
        account: ACCOUNT.into(),
        region: REGION.into(),
        delivered: EventTime(T0.0 + HOUR + 20 * MIN),
        unique: unique_name([200; 16]),
    }
    .to_key();
    t.mem.put(&planted, b.finish().gzip, BTreeMap::new());
    // A listed file renamed.
    let moved_to = LogFileKey {
        kind: LogKind::Events,
        prefix: None,
        account: ACCOUNT.into(),
        region: REGION.into(),
        delivered: EventTime(T0.0 + 2 * HOUR + 5 * MIN),
        unique: unique_name([201; 16]),
    }
    .to_key();
    let o = t.mem.take(&t.logs[2]);
    t.mem.put(&moved_to, o.bytes, o.metadata);
    // A file delivered after the newest digest is not yet due in any digest.
    t.log_file(EventTime(T0.0 + 3 * HOUR + 5 * MIN), 1);
    let report = t.run();
    let mut got = invalid(&report);
    got.sort_by(|a, b| a.1.cmp(&b.1));
    let mut want = vec![
        (FileKind::LogFile, planted.clone(), Problem::NotInAnyDigest),
        (FileKind::LogFile, t.logs[2].clone(), Problem::MovedTo { now_at: format!("{BUCKET}/{moved_to}") }),
        (FileKind::LogFile, moved_to.clone(), Problem::MovedFrom { original: format!("{BUCKET}/{}", t.logs[2]) }),
    ];
    want.sort_by(|a, b| a.1.cmp(&b.1));
    assert_eq!(got, want);
    assert!(
        stderr(&report)
            .contains(&format!("Log file\ts3://{BUCKET}/{planted}\tINVALID: not listed in any digest file\n"))
    );
}

#[test]
fn swapped_log_files_each_hold_the_other_s_content() {
    let t = Trail::build(1);
    let (a, b) = (t.mem.object(&t.logs[0]), t.mem.object(&t.logs[1]));
    t.mem.put(&t.logs[0], b.bytes, BTreeMap::new());
    t.mem.put(&t.logs[1], a.bytes, BTreeMap::new());
    let mut got = invalid(&t.run());
    got.sort_by(|a, b| a.1.cmp(&b.1));
    let mut want = vec![
        (FileKind::LogFile, t.logs[0].clone(), Problem::HoldsContentOf { other: format!("{BUCKET}/{}", t.logs[1]) }),
        (FileKind::LogFile, t.logs[1].clone(), Problem::HoldsContentOf { other: format!("{BUCKET}/{}", t.logs[0]) }),
    ];
    want.sort_by(|a, b| a.1.cmp(&b.1));
    assert_eq!(got, want);
}

#[test]
fn a_deleted_newest_digest_is_seen_only_with_the_server_s_newest_key() {
    let t = Trail::build(4);
    let newest = t.digests[3].clone();
    t.mem.take(&newest);
    // Offline, like the aws CLI: the chain simply looks shorter.
    let report = t.run();
    assert_eq!(invalid(&report), vec![]);
    assert_eq!(report.counts().digests_valid, 3);
    // Online: the server says which digest it delivered last.
    let mut p = t.params();
    p.expected_newest_digest = Some(newest.clone());
    let report = t.run_with(&p, &t.public_keys());
    assert_eq!(invalid(&report)[0], (FileKind::Digest, newest.clone(), Problem::NewestDigestDeleted));
    assert!(!report.findings.iter().any(|f| matches!(f, Finding::MissingDigests { .. })));
    assert_eq!(report.exit_code(), 1);
    // The two newest deleted: the stretch behind the expected one is missing too.
    t.mem.take(&t.digests[2]);
    let report = t.run_with(&p, &t.public_keys());
    assert!(
        report
            .findings
            .contains(&Finding::MissingDigests { from: EventTime(T0.0 + 2 * HOUR), to: EventTime(T0.0 + 4 * HOUR) })
    );
}

#[test]
fn logging_stopped_and_started_again_is_a_notice_not_a_problem() {
    let mut t = Trail::build(2);
    // Logging stopped at T0 + 2 h, started again at T0 + 5 h: a new chain.
    t.link = None;
    t.hour(5, 1);
    let report = t.run();
    assert_eq!(invalid(&report), vec![]);
    assert!(
        report
            .findings
            .contains(&Finding::NoDeliveries { from: EventTime(T0.0 + 2 * HOUR), to: EventTime(T0.0 + 5 * HOUR) })
    );
    assert_eq!(
        stderr(&report),
        "\nNo log files were delivered by CloudTrail between 2026-11-25T02:00:00Z and 2026-11-25T05:00:00Z\n\n"
    );
    assert_eq!(report.exit_code(), 0);
}

#[test]
fn digests_signed_before_and_after_a_rotation_verify_with_their_own_keys() {
    let mut t = Trail::build(2);
    t.keys.push(SigningKey::generate().unwrap());
    t.hour(2, 1);
    let report = t.run();
    assert_eq!(invalid(&report), vec![]);
    assert_eq!(report.counts().digests_valid, 3);
    // Without the old key the old digests cannot be checked.
    let report = t.run_with(&t.params(), &t.public_keys()[1..]);
    assert_eq!(report.counts().digests_invalid, 2);
}

#[test]
fn the_requested_range_bounds_the_walk() {
    let t = Trail::build(6);
    let mut p = t.params();
    p.start = EventTime(T0.0 + 3 * HOUR);
    p.end = EventTime(T0.0 + 4 * HOUR);
    let report = t.run_with(&p, &t.public_keys());
    // Digests ending in [start, end + 1 h]: 03:00, 04:00, 05:00; the walk stops once a start precedes `start`.
    assert_eq!(report.counts().digests_valid, 3);
    assert_eq!(invalid(&report), vec![]);
}

#[test]
fn an_empty_bucket_finds_no_digests_and_no_keys_cannot_run() {
    let t = Trail::new();
    let report = t.run();
    assert_eq!(report.exit_code(), 0);
    assert!(
        stdout(&report, false)
            .ends_with("\n\nResults requested for 2026-11-25T00:00:00Z to 2026-11-26T00:00:00Z\nNo digests found\n")
    );
    let err = futures::executor::block_on(validate(&t.mem, &t.params(), &[], &|_| {})).unwrap_err();
    assert!(err.to_string().starts_with("no public keys found between"));
}

#[test]
fn progress_reaches_every_log_file() {
    let t = Trail::build(3);
    let last = Mutex::new(integrity::validate::Progress::default());
    futures::executor::block_on(validate(&t.mem, &t.params(), &t.public_keys(), &|p| *last.lock().unwrap() = p))
        .unwrap();
    let p = *last.lock().unwrap();
    assert_eq!((p.digests_done, p.log_files_done, p.log_files_total), (3, 4, 4));
}

#[test]
fn a_deleted_digest_followed_by_a_tampered_one_is_not_a_missing_stretch() {
    let t = Trail::build(5);
    t.mem.take(&t.digests[3]);
    let mut o = t.mem.object(&t.digests[2]);
    o.metadata.insert("signature".into(), "00".repeat(256));
    t.mem.put(&t.digests[2], o.bytes, o.metadata);
    let report = t.run();
    assert_eq!(
        invalid(&report),
        vec![
            (FileKind::Digest, t.digests[3].clone(), Problem::NotFound),
            (FileKind::Digest, t.digests[2].clone(), Problem::SignatureFailed),
        ]
    );
    assert!(!report.findings.iter().any(|f| matches!(f, Finding::MissingDigests { .. })));
}
