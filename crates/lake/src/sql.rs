//! SQL over event data stores on DataFusion: the statement checked (one SELECT, nothing else), event data
//! store ids in `FROM` quoted so they parse as AWS writes them (`FROM 3f1e…-…` is not an identifier), each
//! store registered as its files plus its tail, the plan run under a per-query memory pool, and the answer
//! turned into CloudTrail Lake's rows of strings with its statistics.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::common::stats::Precision;
use datafusion::common::{ScalarValue, TableReference};
use datafusion::datasource::MemTable;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::error::DataFusionError;
use datafusion::execution::cache::cache_manager::{
    CacheManager, CacheManagerConfig, CachedFileMetadata, DEFAULT_FILE_STATISTICS_MEMORY_LIMIT,
};
use datafusion::execution::cache::default_cache::DefaultCache;
use datafusion::execution::cache::{Cache, CacheEntryInfo, TableScopedPath};
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::MemoryLimit;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_optimizer::filter_pushdown::FilterPushdown;
use datafusion::physical_optimizer::optimizer::PhysicalOptimizer;
use datafusion::physical_plan::{ExecutionPlan, collect};
use datafusion::prelude::{SQLOptions, SessionConfig, SessionContext};
use datafusion::sql::parser::{DFParser, Statement as DfStatement};
use datafusion::sql::sqlparser::ast::Statement;
use datafusion::sql::sqlparser::dialect::GenericDialect;

use crate::schema;
use crate::table::Snapshot;

/// Hard-coded: the longest statement (CloudTrail's QueryStatement limit).
pub const MAX_STATEMENT_CHARS: usize = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    /// Not one SELECT, or not valid SQL, or naming what is not there: CloudTrail's
    /// InvalidQueryStatementException.
    #[error("{0}")]
    Invalid(String),
    /// A store named in FROM that does not exist.
    #[error("event data store {0} does not exist")]
    UnknownStore(String),
    /// The query failed while running (a bad cast at run time, too many rows, …).
    #[error("{0}")]
    Failed(String),
    /// The query needed more memory than its limit.
    #[error("the query needs more memory than its limit of {limit_mib} MiB (query_memory_limit_mb): {detail}")]
    Memory { limit_mib: usize, detail: String },
}

/// Checks the statement is exactly one query (SELECT, possibly with WITH / UNION …) and quotes bare event
/// data store ids; returns the SQL to plan and the ids it names.
pub fn prepare(statement: &str) -> Result<(String, Vec<String>), SqlError> {
    if statement.chars().count() > MAX_STATEMENT_CHARS {
        return Err(SqlError::Invalid(format!("the query statement is longer than {MAX_STATEMENT_CHARS} characters")));
    }
    let (sql, ids) = quote_store_ids(statement);
    let parsed = DFParser::parse_sql_with_dialect(&sql, &GenericDialect {})
        .map_err(|e| SqlError::Invalid(format!("the query statement is not valid SQL: {e}")))?;
    if parsed.len() != 1 {
        return Err(SqlError::Invalid(format!("expected one statement, found {}", parsed.len())));
    }
    match parsed.front() {
        Some(DfStatement::Statement(s)) if matches!(**s, Statement::Query(_)) => Ok((sql, ids)),
        _ => Err(SqlError::Invalid("only SELECT statements are allowed".into())),
    }
}

/// Wraps every UUID-shaped word outside string literals and quoted identifiers in double quotes (and lower
/// cases it, as ids are written); returns the ids found, lower case, in order of appearance.
pub fn quote_store_ids(sql: &str) -> (String, Vec<String>) {
    let b = sql.as_bytes();
    let mut out = String::with_capacity(sql.len() + 8);
    let mut ids = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'\'' || c == b'"' || c == b'`' {
            // Copy the quoted text through its closing quote (a doubled quote escapes itself).
            let start = i;
            i += 1;
            while i < b.len() {
                if b[i] == c {
                    if i + 1 < b.len() && b[i + 1] == c {
                        i += 2;
                        continue;
                    }
                    break;
                }
                i += 1;
            }
            i = (i + 1).min(b.len());
            out.push_str(&sql[start..i]);
            continue;
        }
        if c == b'-' && b.get(i + 1) == Some(&b'-') {
            let end = sql[i..].find('\n').map_or(b.len(), |n| i + n);
            out.push_str(&sql[i..end]);
            i = end;
            continue;
        }
        let word_start = i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_');
        if word_start && c.is_ascii_hexdigit() && i + 36 <= b.len() {
            let cand = &sql[i..i + 36];
            let after_ok = b.get(i + 36).is_none_or(|n| !(n.is_ascii_alphanumeric() || *n == b'_' || *n == b'-'));
            if after_ok && uuid::Uuid::try_parse(cand).is_ok() && cand.chars().filter(|c| *c == '-').count() == 4 {
                let id = cand.to_ascii_lowercase();
                out.push('"');
                out.push_str(&id);
                out.push('"');
                ids.push(id);
                i += 36;
                continue;
            }
        }
        let ch = sql[i..].chars().next().unwrap_or(' ');
        out.push(ch);
        i += ch.len_utf8();
    }
    (out, ids)
}

/// The spelling the statement used for each identifier, by its lower-case form: result columns are named as
/// the user wrote them (`eventName`), not as SQL folds them (`eventname`).
fn spellings(statement: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut word = String::new();
    let mut in_quote: Option<char> = None;
    for c in statement.chars().chain(std::iter::once(' ')) {
        if let Some(q) = in_quote {
            if c == q {
                in_quote = None;
            }
            continue;
        }
        if c.is_alphanumeric() || c == '_' {
            word.push(c);
            continue;
        }
        if !word.is_empty() {
            out.entry(word.to_lowercase()).or_insert_with(|| word.clone());
            word.clear();
        }
        if c == '\'' {
            in_quote = Some(c);
        }
    }
    out
}

/// The caches every query shares: each Parquet file's footer (and page index) and statistics, read once per
/// process instead of once per query. Sound because a lake file never changes once written (new data and
/// compaction write new files; see docs/formats/lake.md), and DataFusion checks each entry against the
/// file's size and modification time anyway. Bounded by DataFusion's default limits (tens of MiB).
fn shared_caches() -> Result<Arc<CacheManager>, SqlError> {
    static CACHES: std::sync::OnceLock<Arc<CacheManager>> = std::sync::OnceLock::new();
    if let Some(c) = CACHES.get() {
        return Ok(c.clone());
    }
    let config = CacheManagerConfig::default().with_file_statistics_cache(Some(Arc::new(LeanStatistics(
        DefaultCache::new(DEFAULT_FILE_STATISTICS_MEMORY_LIMIT).with_name("LeanFileStatisticsCache"),
    ))));
    let made = CacheManager::try_new(&config).map_err(|e| SqlError::Failed(e.to_string()))?;
    Ok(CACHES.get_or_init(|| made).clone())
}

/// DataFusion's file statistics cache, keeping no minimum or maximum of a nested column (userIdentity,
/// resources, tlsDetails). Every query merges the statistics of all its files while it is planned, and
/// comparing struct values was most of that: ~5 of the ~10 ms a query over 130 files took to plan. Nothing
/// uses them: a filter on a nested field is pruned with the Parquet leaf column's own statistics, read when
/// the file is scanned.
struct LeanStatistics(DefaultCache<TableScopedPath, CachedFileMetadata>);

impl Cache<TableScopedPath, CachedFileMetadata> for LeanStatistics {
    fn get(&self, key: &TableScopedPath) -> Option<CachedFileMetadata> {
        self.0.get(key)
    }

    fn put(&self, key: &TableScopedPath, mut value: CachedFileMetadata) -> Option<CachedFileMetadata> {
        let nested = |p: &Precision<ScalarValue>| p.get_value().is_some_and(|v| v.data_type().is_nested());
        if value.statistics.column_statistics.iter().any(|c| nested(&c.min_value) || nested(&c.max_value)) {
            let mut stats = (*value.statistics).clone();
            for c in &mut stats.column_statistics {
                if nested(&c.min_value) || nested(&c.max_value) {
                    c.min_value = Precision::Absent;
                    c.max_value = Precision::Absent;
                }
            }
            value.statistics = Arc::new(stats);
        }
        self.0.put(key, value)
    }

    fn remove(&self, k: &TableScopedPath) -> Option<CachedFileMetadata> {
        self.0.remove(k)
    }

    fn contains_key(&self, k: &TableScopedPath) -> bool {
        self.0.contains_key(k)
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    fn clear(&self) {
        self.0.clear()
    }

    fn name(&self) -> String {
        self.0.name()
    }

    fn cache_limit(&self) -> usize {
        self.0.cache_limit()
    }

    fn update_cache_limit(&self, limit: usize) {
        self.0.update_cache_limit(limit)
    }

    fn cache_ttl(&self) -> Option<std::time::Duration> {
        self.0.cache_ttl()
    }

    fn update_cache_ttl(&self, ttl: Option<std::time::Duration>) {
        self.0.update_cache_ttl(ttl)
    }

    fn drop_table_entries(&self, table_ref: &TableReference) -> datafusion::common::Result<()> {
        self.0.drop_table_entries(table_ref)
    }

    fn list_entries(&self) -> datafusion::common::HashMap<TableScopedPath, CacheEntryInfo<CachedFileMetadata>> {
        self.0.list_entries()
    }
}

/// A session for one query: `memory_limit` bytes of memory for its operators (beyond it, it fails: there is
/// no disk manager, so nothing spills to a temporary folder that could fill the disk unseen), identifiers
/// folded to lower case, the given stores registered.
pub async fn session(
    stores: &[(String, Snapshot)],
    memory_limit: usize,
    target_partitions: usize,
) -> Result<SessionContext, SqlError> {
    let mut runtime = RuntimeEnvBuilder::new()
        .with_memory_limit(memory_limit, 1.0)
        .with_disk_manager_builder(DiskManagerBuilder::default().with_mode(DiskManagerMode::Disabled))
        .build()
        .map_err(|e| SqlError::Failed(e.to_string()))?;
    runtime.cache_manager = shared_caches()?;
    let runtime = Arc::new(runtime);
    let mut config = SessionConfig::new().with_target_partitions(target_partitions.max(1));
    let opts = config.options_mut();
    // Off for the session, on per scan where it pays (crate::pushdown): a scan pushes its filters down when
    // either this or its own source says so. (Other `execution.parquet` settings made here do not reach the
    // lake's scans: they read through `ParquetFormat::default()`, whose own options govern them.)
    opts.execution.parquet.pushdown_filters = false;
    let state = SessionStateBuilder::new()
        .with_config(config)
        .with_runtime_env(runtime)
        .with_default_features()
        .with_optimizer_rule(Arc::new(crate::eager::EagerCountJoin))
        .with_physical_optimizer_rules(physical_rules())
        .build();
    let ctx = SessionContext::new_with_state(state);
    for udf in json_functions() {
        ctx.register_udf(udf);
    }
    for (id, snap) in stores {
        register(&ctx, id, snap).await?;
    }
    Ok(ctx)
}

/// DataFusion's physical optimizer rules with ours: [`crate::pushdown::ChoosePushdown`] just before the
/// first filter pushdown (which acts on its choice), [`crate::count::CountByViews`] last (it replaces the
/// partial aggregates the other rules have placed).
fn physical_rules() -> Vec<Arc<dyn PhysicalOptimizerRule + Send + Sync>> {
    let mut rules = PhysicalOptimizer::new().rules;
    let at = rules.iter().position(|r| r.name() == FilterPushdown::new().name()).unwrap_or(0);
    rules.insert(at, Arc::new(crate::pushdown::ChoosePushdown));
    rules.push(Arc::new(crate::count::CountByViews));
    rules
}

/// Registers a store as the union of its Parquet files and its tail.
async fn register(ctx: &SessionContext, id: &str, snap: &Snapshot) -> Result<(), SqlError> {
    let schema = schema::read_schema();
    let failed = |e: datafusion::error::DataFusionError| SqlError::Failed(format!("opening store {id}: {e}"));
    let tail = MemTable::try_new(schema.clone(), vec![snap.tail.clone()]).map_err(failed)?;
    let mut df = ctx.read_table(Arc::new(tail)).map_err(failed)?;
    if !snap.files.is_empty() {
        let urls = snap
            .files
            .iter()
            .map(|(p, _)| ListingTableUrl::parse(p.to_string_lossy()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(failed)?;
        let options = ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
        let config = ListingTableConfig::new_with_multi_paths(urls).with_listing_options(options).with_schema(schema);
        let files = ListingTable::try_new(config)
            .map_err(failed)?
            .with_cache(ctx.runtime_env().cache_manager.get_file_statistic_cache());
        df = ctx.read_table(Arc::new(files)).map_err(failed)?.union(df).map_err(failed)?;
    }
    ctx.register_table(datafusion::common::TableReference::bare(id.to_string()), df.into_view()).map_err(failed)?;
    Ok(())
}

/// Plans `sql` (from [`prepare`]) in `ctx`: SELECT only (no DDL, DML or SET, whatever the parser allowed).
pub async fn plan(ctx: &SessionContext, sql: &str) -> Result<Arc<dyn ExecutionPlan>, SqlError> {
    let options = SQLOptions::new().with_allow_ddl(false).with_allow_dml(false).with_allow_statements(false);
    let df = ctx.sql_with_options(sql, options).await.map_err(|e| SqlError::Invalid(clean(&e)))?;
    df.create_physical_plan().await.map_err(|e| SqlError::Invalid(clean(&e)))
}

/// What a finished query found.
#[derive(Debug, Clone, Default)]
pub struct Answer {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<String>>,
    pub events_scanned: u64,
    pub events_matched: u64,
    pub bytes_scanned: u64,
}

/// Runs a plan to the end and formats its rows; fails when it would hold more than `max_rows` rows (the
/// answer is never cut short silently). `tail_rows`: the rows of the stores' tails (an in-memory scan
/// reports no metrics of its own; each scan of a tail reads all of it).
pub async fn run(
    ctx: &SessionContext,
    plan: Arc<dyn ExecutionPlan>,
    statement: &str,
    max_rows: usize,
    tail_rows: u64,
) -> Result<Answer, SqlError> {
    use futures::StreamExt;
    let mut stream =
        datafusion::physical_plan::execute_stream(plan.clone(), ctx.task_ctx()).map_err(|e| failed(ctx, &e))?;
    let names = spellings(statement);
    let columns: Vec<String> = plan
        .schema()
        .fields()
        .iter()
        .map(|f| {
            // A struct field is named `<table>.useridentity[username]` by DataFusion; CloudTrail Lake names it
            // by the field (`username`).
            let name = match f.name().rsplit_once('[') {
                Some((_, field)) if f.name().ends_with(']') => field.trim_end_matches(']').to_string(),
                _ => f.name().clone(),
            };
            names.get(&name.to_lowercase()).cloned().unwrap_or(name)
        })
        .collect();
    let mut rows = Vec::new();
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(|e| failed(ctx, &e))?;
        if rows.len() + batch.num_rows() > max_rows {
            return Err(SqlError::Failed(format!(
                "the query returns more than {max_rows} rows; add a LIMIT, a narrower WHERE or an aggregation"
            )));
        }
        format_rows(&batch, &mut rows)?;
    }
    let (events_scanned, events_matched, bytes_scanned) = statistics(&plan, tail_rows);
    Ok(Answer { columns, rows, events_scanned, events_matched, bytes_scanned })
}

/// Runs a plan and returns its batches as they are (tests, export).
pub async fn collect_batches(ctx: &SessionContext, plan: Arc<dyn ExecutionPlan>) -> Result<Vec<RecordBatch>, SqlError> {
    collect(plan, ctx.task_ctx()).await.map_err(|e| failed(ctx, &e))
}

/// An error of a running query: over its memory limit ([`SqlError::Memory`], naming the limit), or any other.
fn failed(ctx: &SessionContext, e: &DataFusionError) -> SqlError {
    if matches!(e.find_root(), DataFusionError::ResourcesExhausted(_)) {
        let limit_mib = match ctx.runtime_env().memory_pool.memory_limit() {
            MemoryLimit::Finite(bytes) => bytes >> 20,
            MemoryLimit::Infinite | MemoryLimit::Unknown => 0,
        };
        return SqlError::Memory { limit_mib, detail: clean(e.find_root()) };
    }
    SqlError::Failed(clean(e))
}

fn format_rows(batch: &RecordBatch, rows: &mut Vec<Vec<String>>) -> Result<(), SqlError> {
    let options = FormatOptions::default()
        .with_null("")
        .with_timestamp_tz_format(Some("%Y-%m-%d %H:%M:%S%.3f"))
        .with_timestamp_format(Some("%Y-%m-%d %H:%M:%S%.3f"));
    let formatters = batch
        .columns()
        .iter()
        .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| SqlError::Failed(e.to_string()))?;
    for r in 0..batch.num_rows() {
        rows.push(formatters.iter().map(|f| f.value(r).to_string()).collect());
    }
    Ok(())
}

/// (events scanned, events matched, bytes scanned) from the plan's metrics: rows the scans produced, rows
/// that passed the filters right above them (all scanned rows when there is none), and bytes read from
/// Parquet files.
pub(crate) fn statistics(plan: &Arc<dyn ExecutionPlan>, tail_rows: u64) -> (u64, u64, u64) {
    fn metric(p: &Arc<dyn ExecutionPlan>, name: &str) -> u64 {
        p.metrics().and_then(|m| m.sum_by_name(name)).map_or(0, |v| v.as_usize() as u64)
    }
    fn output_rows(p: &Arc<dyn ExecutionPlan>) -> u64 {
        p.metrics().and_then(|m| m.output_rows()).unwrap_or(0) as u64
    }
    /// A scan: (rows read, rows it produced, bytes read). Rows a Parquet scan's pushed-down filter removed
    /// were read too; a scan without metrics is a tail's, which it reads whole.
    fn scan(p: &Arc<dyn ExecutionPlan>, tail_rows: u64) -> (u64, u64, u64) {
        if p.metrics().and_then(|m| m.output_rows()).is_none() {
            // A source without metrics: a tail's in-memory scan (or a constant, which reads nothing).
            return if p.name() == "DataSourceExec" { (tail_rows, tail_rows, 0) } else { (0, 0, 0) };
        }
        let produced = output_rows(p);
        (produced + metric(p, "pushdown_rows_pruned"), produced, metric(p, "bytes_scanned"))
    }
    /// `filtered`: the output of the FilterExec above `p` through single-child nodes (repartitions,
    /// coalescing), which is what the scan below matched.
    fn visit(p: &Arc<dyn ExecutionPlan>, acc: &mut (u64, u64, u64), tail_rows: u64, filtered: Option<u64>) {
        let children = p.children();
        let filtered = if p.name() == "FilterExec" {
            Some(output_rows(p))
        } else if children.len() == 1
            && matches!(
                p.name(),
                "RepartitionExec"
                    | "CoalesceBatchesExec"
                    | "CoalescePartitionsExec"
                    | "ProjectionExec"
                    | "CooperativeExec"
            )
        {
            filtered
        } else {
            None
        };
        for c in children {
            if c.children().is_empty() {
                let (read, produced, bytes) = scan(c, tail_rows);
                acc.0 += read;
                acc.2 += bytes;
                acc.1 += filtered.unwrap_or(produced);
            } else {
                visit(c, acc, tail_rows, filtered);
            }
        }
    }
    if plan.children().is_empty() {
        return scan(plan, tail_rows);
    }
    let mut acc = (0, 0, 0);
    visit(plan, &mut acc, tail_rows, None);
    acc
}

/// CloudTrail Lake's (Trino's) `json_extract_scalar(json, path)` and `json_extract(json, path)` over the
/// JSON-text columns (requestParameters, responseElements, …): `path` is `$` followed by `.member` and `[n]`
/// steps. A scalar is returned as text (a string without quotes); `json_extract` returns the JSON text of
/// whatever is there. Not JSON, or no such path: null.
fn json_functions() -> Vec<datafusion::logical_expr::ScalarUDF> {
    use datafusion::arrow::array::{Array, StringViewArray};
    use datafusion::arrow::datatypes::DataType;
    use datafusion::logical_expr::{ColumnarValue, Volatility, create_udf};
    fn make(name: &str, scalar_only: bool) -> datafusion::logical_expr::ScalarUDF {
        let f = move |args: &[ColumnarValue]| -> datafusion::error::Result<ColumnarValue> {
            let arrays = ColumnarValue::values_to_arrays(args)?;
            // The lake's strings are views (schema::read_schema); anything else is cast to them.
            let cast =
                |a: &datafusion::arrow::array::ArrayRef| datafusion::arrow::compute::cast(a, &DataType::Utf8View);
            let (docs, paths) = (cast(&arrays[0])?, cast(&arrays[1])?);
            let docs = docs.as_any().downcast_ref::<StringViewArray>().expect("cast to Utf8View");
            let paths = paths.as_any().downcast_ref::<StringViewArray>().expect("cast to Utf8View");
            let out: StringViewArray = (0..docs.len())
                .map(|i| {
                    if docs.is_null(i) || paths.is_null(i) {
                        return None;
                    }
                    let doc: serde_json::Value = serde_json::from_str(docs.value(i)).ok()?;
                    let v = json_path(&doc, paths.value(i))?;
                    match v {
                        serde_json::Value::Null => None,
                        serde_json::Value::String(s) => Some(if scalar_only { s.clone() } else { v.to_string() }),
                        serde_json::Value::Object(_) | serde_json::Value::Array(_) if scalar_only => None,
                        other => Some(other.to_string()),
                    }
                })
                .collect();
            Ok(ColumnarValue::Array(Arc::new(out)))
        };
        let string = DataType::Utf8View;
        create_udf(name, vec![string.clone(), string.clone()], string, Volatility::Immutable, Arc::new(f))
    }
    vec![make("json_extract_scalar", true), make("json_extract", false)]
}

/// Follows a `$.a.b[0]` path.
fn json_path<'a>(doc: &'a serde_json::Value, path: &str) -> Option<&'a serde_json::Value> {
    let mut rest = path.trim().strip_prefix('$')?;
    let mut v = doc;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            v = v.get(&r[..end])?;
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']')?;
            let key = r[..end].trim();
            v = match key.parse::<usize>() {
                Ok(n) => v.get(n)?,
                Err(_) => v.get(key.trim_matches(|c| c == '"' || c == '\''))?,
            };
            rest = &r[end + 1..];
        } else {
            return None;
        }
    }
    Some(v)
}

/// A DataFusion error as one line for the caller (without the "Error during planning:" prefixes' noise).
fn clean(e: &datafusion::error::DataFusionError) -> String {
    e.to_string().lines().next().unwrap_or_default().to_string()
}
