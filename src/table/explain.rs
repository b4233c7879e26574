//! [`TableExplain`]: what [`Table::compute`] would run, without reading a row.
//!
//! The streaming loop runs one pass over the rows per nesting level of reductions, then one
//! for what is element-wise ([`super::stream`]). For each pass this shows the plan its kernels
//! run on every chunk (a chunk's columns and validity bound as symbols of the chunk's length:
//! graph, kernels, bytes, device, as [`Explain`] shows an array plan), what is computed once
//! (scalars, reading no row), the source columns the reader decodes, and how many chunks the
//! Parquet row groups' statistics let it skip. A later pass uses the values of the earlier
//! passes' reductions as 0-d data: here they are stand-ins (zeros), since nothing is computed.
use super::stream::{self, Pass};
use super::Table;
use crate::error::Result;
use crate::explain::Explain;
use crate::expr::Expr;
use std::fmt;

/// One pass over the rows of a [`TableExplain`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TablePass {
    /// `"reductions"` (partials per chunk, combined in chunk order) or `"rows"` (the
    /// element-wise results, with their validity and the filters' mask, per chunk).
    pub kind: &'static str,
    /// The source columns the pass reads (values or validity), in source order.
    pub columns: Vec<String>,
    /// Chunks of the pass that the row groups' statistics skip (a Parquet file with filters),
    /// `None` where the source has no statistics or nothing can be skipped.
    pub skipped_chunks: Option<usize>,
    /// The plan run on each chunk (`None`: the pass computes nothing per chunk).
    pub per_chunk: Option<Explain>,
    /// The plan run once, over no rows (`None`: nothing).
    pub once: Option<Explain>,
}

/// The plan of an evaluation over a table; see the [module docs](self).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TableExplain {
    /// Rows of the source before filters, where it knows them without reading (not CSV).
    pub rows: Option<usize>,
    /// Rows per chunk, and the number of chunks (where the rows are known).
    pub chunk_rows: usize,
    pub chunks: Option<usize>,
    /// The length the per-chunk plans are shown for (a full chunk, or all rows if fewer).
    pub chunk_len: usize,
    pub passes: Vec<TablePass>,
}

/// [`Table::explain_many`].
pub(super) fn build(t: &Table, exprs: &[Expr]) -> Result<TableExplain> {
    let rows = t.source.rows();
    let chunk_rows = t.chunk_rows;
    let chunk_len = rows.map_or(chunk_rows, |r| r.min(chunk_rows));
    let schema = t.source.schema();
    let plan = |es: &[Expr], len: usize| -> Result<Option<Explain>> {
        if es.is_empty() {
            return Ok(None);
        }
        let shapes = |_: &str| Some(vec![len]);
        t.session.explain_shaped(es, &shapes).map(Some)
    };
    let passes = stream::explain_passes(t, exprs)?
        .into_iter()
        .map(|p: Pass| {
            let skipped_chunks = match t.source.groups() {
                Some(groups) if !p.per_chunk.is_empty() => super::prune::skip_chunks(
                    groups,
                    &p.skip_filters,
                    &|name| schema.index_of(name).ok(),
                    chunk_rows,
                )
                .map(|skip| skip.iter().filter(|&&s| s).count()),
                _ => None,
            };
            Ok(TablePass {
                kind: if p.reductions { "reductions" } else { "rows" },
                columns: p
                    .columns
                    .iter()
                    .map(|&i| schema.field(i).name().clone())
                    .collect(),
                skipped_chunks,
                per_chunk: plan(&p.per_chunk, chunk_len)?,
                once: plan(&p.once, 1)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(TableExplain {
        rows,
        chunk_rows,
        chunks: rows.map(|r| r.div_ceil(chunk_rows)),
        chunk_len,
        passes,
    })
}

impl TableExplain {
    /// Machine-readable form: the passes with their plans in [`Explain::to_json`]'s form.
    pub fn to_json(&self) -> String {
        let plan = |e: &Option<Explain>| match e {
            Some(e) => serde_json::from_str(&e.to_json()).unwrap_or(serde_json::Value::Null),
            None => serde_json::Value::Null,
        };
        let passes: Vec<serde_json::Value> = self
            .passes
            .iter()
            .map(|p| {
                serde_json::json!({
                    "kind": p.kind,
                    "columns": p.columns,
                    "skipped_chunks": p.skipped_chunks,
                    "per_chunk": plan(&p.per_chunk),
                    "once": plan(&p.once),
                })
            })
            .collect();
        serde_json::json!({
            "rows": self.rows,
            "chunk_rows": self.chunk_rows,
            "chunks": self.chunks,
            "chunk_len": self.chunk_len,
            "passes": passes,
        })
        .to_string()
    }
}

/// `{}`: the passes and their plans; `{:#}` adds each plan's estimates (as [`Explain`]).
impl fmt::Display for TableExplain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.rows, self.chunks) {
            (Some(r), Some(c)) => writeln!(
                f,
                "table: {r} rows, streamed in {c} chunks of up to {} rows",
                self.chunk_rows
            )?,
            _ => writeln!(
                f,
                "table: rows unknown until read, streamed in chunks of {} rows",
                self.chunk_rows
            )?,
        }
        let n = self.passes.len();
        for (i, p) in self.passes.iter().enumerate() {
            let what = if p.kind == "reductions" {
                "reductions: one partial per chunk, combined in chunk order"
            } else {
                "rows: element-wise results per chunk, filtered rows dropped"
            };
            writeln!(f, "pass {} of {n}: {what}", i + 1)?;
            if p.per_chunk.is_some() {
                let cols = if p.columns.is_empty() {
                    "none".to_string()
                } else {
                    p.columns.join(", ")
                };
                writeln!(f, "  reads columns: {cols}")?;
                if let Some(s) = p.skipped_chunks {
                    writeln!(
                        f,
                        "  row groups' statistics skip {s} of {} chunks",
                        self.chunks.unwrap_or(0)
                    )?;
                }
            }
            for (label, plan) in [
                (format!("per chunk ({} rows)", self.chunk_len), &p.per_chunk),
                ("once".to_string(), &p.once),
            ] {
                let Some(e) = plan else { continue };
                writeln!(f, "  {label}:")?;
                let text = if f.alternate() {
                    format!("{e:#}")
                } else {
                    e.to_string()
                };
                for line in text.lines() {
                    writeln!(f, "    {line}")?;
                }
            }
        }
        Ok(())
    }
}
