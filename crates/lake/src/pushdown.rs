//! Which Parquet scans evaluate their filter while decoding (a row filter) and which decode their columns
//! whole and filter after: the per-scan choice of DataFusion's `pushdown_filters`.
//!
//! A row filter decodes the filter's columns first, then the other columns only for the rows that passed.
//! That pays when few rows pass and the other columns are costly (the needle by source IP: 117 of 10 M
//! rows, and `eventID` is a long unique string per row). It costs when many rows pass: the rows that passed
//! are scattered, and decoding a column page by scattered row ranges is slower than decoding it whole and
//! filtering the arrays after (errors by API, `errorCode IS NOT NULL`, 3 % of the rows: 140–174 ms with a
//! row filter, 104–117 ms without, in-process over 10 M events).
//!
//! So the session turns `pushdown_filters` off and this rule turns it on per scan, before DataFusion's
//! filter pushdown runs, unless the filter above the scan is known to keep more than [`KEEPS_AT_MOST`] of
//! the rows. Known means estimated from the files' null counts, which are exact: `x IS NULL`, `x IS NOT
//! NULL` and their `AND`s and `OR`s. Any other filter (a comparison, a LIKE, a nested field) is unknown and
//! pushed down as before. A scan without a filter gets a row filter too, for the dynamic filters a join or a
//! TopK pushes into it while running.
//!
//! Either way the scan gives the same rows: the filter is evaluated by the scan or by the `FilterExec`
//! above it, and the files' statistics prune row groups and pages in both.

use std::sync::Arc;

use datafusion::common::Result;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode, TreeNodeRecursion};
use datafusion::config::ConfigOptions;
use datafusion::datasource::physical_plan::{FileScanConfig, FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::{DataSource, DataSourceExec};
use datafusion::logical_expr::Operator;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::{BinaryExpr, Column, IsNotNullExpr, IsNullExpr};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::{ExecutionPlan, Statistics, replace_children_if_necessary};

/// A filter estimated to keep more than this share of a scan's rows is evaluated after decoding. Measured
/// in-process on the benchmark's 10 M events (BENCHMARKS.md, "Lake"), row filter against none, three runs
/// each: keeping 3 % (`errorCode IS NOT NULL`), errors by API took 140–174 ms against 104–117 and `SELECT
/// eventID, eventName` 456–474 ms against 383–437; keeping 0.23 % (`… AND additionalEventData IS NOT
/// NULL`), the two were even (423–528 ms against 492–535 for the eventIDs).
const KEEPS_AT_MOST: f64 = 0.01;

#[derive(Debug, Default)]
pub struct ChoosePushdown;

impl PhysicalOptimizerRule for ChoosePushdown {
    fn optimize(&self, plan: Arc<dyn ExecutionPlan>, _config: &ConfigOptions) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_down(|p| {
            if let Some(filter) = p.downcast_ref::<FilterExec>()
                && let Some(scan) = parquet_scan(filter.input())
            {
                // The files' statistics, whole: the row count is inexact once the scan has a predicate to
                // prune with, but the estimate is of the share, from the files' counts.
                let stats = DataSource::partition_statistics(scan.config, None)?;
                let keeps = share_kept(filter.predicate(), &stats);
                let push = keeps.is_none_or(|k| k <= KEEPS_AT_MOST);
                let input = with_pushdown(scan, push);
                let p = replace_children_if_necessary(p.clone(), vec![input])?;
                // The scan below is decided: not visited again as a scan without a filter.
                return Ok(Transformed::new(p, true, TreeNodeRecursion::Jump));
            }
            match parquet_scan(&p) {
                Some(scan) => Ok(Transformed::yes(with_pushdown(scan, true))),
                None => Ok(Transformed::no(p)),
            }
        })
        .data()
    }

    fn name(&self) -> &str {
        "choose_pushdown"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// A Parquet `DataSourceExec`: the exec, its scan config and its Parquet source.
struct Scan<'a> {
    exec: &'a DataSourceExec,
    config: &'a FileScanConfig,
    source: &'a ParquetSource,
}

fn parquet_scan(p: &Arc<dyn ExecutionPlan>) -> Option<Scan<'_>> {
    let exec = p.downcast_ref::<DataSourceExec>()?;
    let (config, source) = exec.downcast_to_file_source::<ParquetSource>()?;
    Some(Scan { exec, config, source })
}

/// The scan with its row filter on (`push`) or off.
fn with_pushdown(scan: Scan<'_>, push: bool) -> Arc<dyn ExecutionPlan> {
    let source = Arc::new(scan.source.clone().with_pushdown_filters(push));
    let config = FileScanConfigBuilder::from(scan.config.clone()).with_source(source).build();
    Arc::new(scan.exec.clone().with_data_source(Arc::new(config)))
}

/// The share of the rows `e` keeps, when the statistics tell (null counts and row count known), else `None`.
/// `stats` are of the plan whose output `e`'s columns index.
fn share_kept(e: &Arc<dyn PhysicalExpr>, stats: &Statistics) -> Option<f64> {
    let nulls = |c: &Arc<dyn PhysicalExpr>| -> Option<f64> {
        let column = c.downcast_ref::<Column>()?;
        let rows = *stats.num_rows.get_value()?;
        let nulls = *stats.column_statistics.get(column.index())?.null_count.get_value()?;
        (rows > 0).then(|| (nulls as f64 / rows as f64).min(1.0))
    };
    if let Some(is_null) = e.downcast_ref::<IsNullExpr>() {
        return nulls(is_null.arg());
    }
    if let Some(not_null) = e.downcast_ref::<IsNotNullExpr>() {
        return nulls(not_null.arg()).map(|n| 1.0 - n);
    }
    let b = e.downcast_ref::<BinaryExpr>()?;
    let (l, r) = (share_kept(b.left(), stats)?, share_kept(b.right(), stats)?);
    // Each side estimated alone, the two taken as independent.
    match b.op() {
        Operator::And => Some(l * r),
        Operator::Or => Some(l + r - l * r),
        _ => None,
    }
}
