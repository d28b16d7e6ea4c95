//! Eager aggregation of counts over a join (Yan and Larson, "Eager Aggregation and Lazy Aggregation",
//! VLDB 1995): `SELECT g…, count(*) FROM a JOIN b ON a.k = b.k GROUP BY g…` counts the pairs the join
//! would make without making them. Each side is first grouped by its join keys and the grouping columns it
//! holds, with a count; the groups are joined and the pair counts summed (`count = Σ n_a × n_b`).
//!
//! Audit joins are many-to-many: the calls made with an access key joined to the AssumeRole calls that
//! returned it. Joined row by row, a few thousand calls on each side of a key make millions of pairs, and
//! the join's output, not its input, is what a query pays for; grouped first, each key is one row per side.
//! When the keys are (nearly) unique, the two groupings are work the plain join would not have done: a
//! one-to-one join pays for them (not measured; no audit query of the benchmark is one).
//!
//! The rule rewrites a grouped aggregate whose aggregates are all `count(*)` (or `count` of a constant)
//! over an inner equi-join without an extra join filter, possibly through projections of bare columns.
//! Anything else is left as it is.

use std::sync::Arc;

use datafusion::common::tree_node::Transformed;
use datafusion::common::{Column, NullEquality, Result};
use datafusion::functions_aggregate::count::count_udaf;
use datafusion::functions_aggregate::expr_fn::{count, sum};
use datafusion::logical_expr::expr::AggregateFunction;
use datafusion::logical_expr::{Aggregate, Expr, JoinType, LogicalPlan, LogicalPlanBuilder, cast, col, lit};
use datafusion::optimizer::optimizer::ApplyOrder;
use datafusion::optimizer::{OptimizerConfig, OptimizerRule};

/// Prefix of the columns the rewrite adds (join keys and counts of each side).
const PREFIX: &str = "__eager_";

#[derive(Debug, Default)]
pub struct EagerCountJoin;

impl OptimizerRule for EagerCountJoin {
    fn name(&self) -> &str {
        "eager_count_join"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::TopDown)
    }

    fn rewrite(&self, plan: LogicalPlan, _config: &dyn OptimizerConfig) -> Result<Transformed<LogicalPlan>> {
        let LogicalPlan::Aggregate(agg) = plan else { return Ok(Transformed::no(plan)) };
        match rewrite(&agg)? {
            Some(p) => Ok(Transformed::yes(p)),
            None => Ok(Transformed::no(LogicalPlan::Aggregate(agg))),
        }
    }
}

/// `count(*)` as the SQL planner writes it (`count(Int64(1))`), or `count` of any non-null constant.
fn is_count_star(e: &Expr) -> bool {
    let e = match e {
        Expr::Alias(a) => a.expr.as_ref(),
        e => e,
    };
    let Expr::AggregateFunction(AggregateFunction { func, params }) = e else { return false };
    func.as_ref() == count_udaf().as_ref()
        && !params.distinct
        && params.filter.is_none()
        && params.order_by.is_empty()
        && matches!(params.args.as_slice(), [Expr::Literal(v, _)] if !v.is_null())
}

fn rewrite(agg: &Aggregate) -> Result<Option<LogicalPlan>> {
    if agg.group_expr.is_empty() || agg.aggr_expr.is_empty() || !agg.aggr_expr.iter().all(is_count_star) {
        return Ok(None);
    }
    let Some(groups) = agg.group_expr.iter().map(Expr::try_as_col).collect::<Option<Vec<&Column>>>() else {
        return Ok(None);
    };
    // Through projections of bare columns (which name the join's columns as they are) to the join.
    let mut input = agg.input.as_ref();
    while let LogicalPlan::Projection(p) = input {
        if !p.expr.iter().all(|e| matches!(e, Expr::Column(_))) {
            return Ok(None);
        }
        input = p.input.as_ref();
    }
    let LogicalPlan::Join(join) = input else { return Ok(None) };
    if join.join_type != JoinType::Inner
        || join.filter.is_some()
        || join.on.is_empty()
        || join.null_equality != NullEquality::NullEqualsNothing
        || join.null_aware
    {
        return Ok(None);
    }
    // Each grouping column belongs to exactly one side.
    let (mut left_groups, mut right_groups) = (Vec::new(), Vec::new());
    for c in groups {
        match (join.left.schema().has_column(c), join.right.schema().has_column(c)) {
            (true, false) => left_groups.push(c.clone()),
            (false, true) => right_groups.push(c.clone()),
            _ => return Ok(None),
        }
    }
    let side = |plan: &Arc<LogicalPlan>, keys: Vec<&Expr>, groups: &[Column], tag: &str| -> Result<LogicalPlan> {
        let mut by: Vec<Expr> =
            keys.into_iter().enumerate().map(|(i, k)| k.clone().alias(format!("{PREFIX}{tag}{i}"))).collect();
        by.extend(groups.iter().cloned().map(Expr::Column));
        LogicalPlanBuilder::from(plan.as_ref().clone())
            .aggregate(by, vec![count(lit(1i64)).alias(format!("{PREFIX}{tag}n"))])?
            .build()
    };
    let left = side(&join.left, join.on.iter().map(|(l, _)| l).collect(), &left_groups, "l")?;
    let right = side(&join.right, join.on.iter().map(|(_, r)| r).collect(), &right_groups, "r")?;
    let keys = |tag: &str| -> Vec<Column> {
        (0..join.on.len()).map(|i| Column::from_name(format!("{PREFIX}{tag}{i}"))).collect()
    };
    let (lk, rk) = (keys("l"), keys("r"));
    // Both counts are Int64, and so is their product.
    let pairs = col(format!("{PREFIX}ln")) * col(format!("{PREFIX}rn"));
    let joined = LogicalPlanBuilder::from(left)
        .join(right, JoinType::Inner, (lk, rk), None)?
        .aggregate(agg.group_expr.clone(), vec![sum(pairs).alias(format!("{PREFIX}pairs"))])?
        .build()?;
    // The aggregate's own output: its grouping columns, then each count under its own name.
    let schema = agg.schema.as_ref();
    let n = agg.group_expr.len();
    let mut out: Vec<Expr> = (0..n).map(|i| Expr::Column(Column::from(schema.qualified_field(i)))).collect();
    for i in n..schema.fields().len() {
        let (qualifier, field) = schema.qualified_field(i);
        let total = cast(col(format!("{PREFIX}pairs")), field.data_type().clone());
        out.push(total.alias_qualified(qualifier.cloned(), field.name()));
    }
    Ok(Some(LogicalPlanBuilder::from(joined).project(out)?.build()?))
}
