//! Reduction-epilogue fusion: a reduction along the rows' axis and the element-wise work that
//! broadcasts it back (softmax, `x - max(x, axis=1, keepdims)`, standardization along axis 1,
//! log-sum-exp) run as passes over one block of rows at a time, so each row is read from
//! memory once and stays in cache for the passes that follow.
//!
//! The fused partition ([`super::fuse`]) of such a plan is several kernels over the whole
//! array: softmax's row maxima, then the row sums of `exp(x - m)` (reading `x` again and
//! computing `exp`), then `exp(x - m) / s` (reading `x` a third time, computing `exp` again).
//! On the GPU that is the right form. On the CPU the same plan runs in *row form*
//! ([`RowPlan`]): the rows are cut into blocks of fixed size ([`block_rows`]), and for each
//! block every pass runs in order over the block's rows only. Between passes the block stays
//! in the core's cache, so:
//! - `x` comes from memory once; the later passes read the block from cache;
//! - a transcendental subexpression several passes use is materialized into a block-sized
//!   scratch (it never leaves the cache), not recomputed: softmax computes `exp` once per
//!   element
//!   (pass 1: `m = max(x)`; pass 2: `e = exp(x - m)`; pass 3: `s = sum(e)`; pass 4:
//!   `e / s`, written to the output);
//! - row reductions (`m`, `s`) live per block; only the plan's results reach memory.
//!
//! The rules ([`row_plan`]); a plan gets a row form when all hold, else it runs as it is:
//! 1. The plan has at least two kernels and one of them reduces (else there is nothing to
//!    keep in cache between passes).
//! 2. Every kernel's iteration space is 1-D or 2-D with the same leading length `R >= 2`
//!    (the rows): stores over `[R, C]`, `[R, 1]` or `[R]`; reductions over `[R, C]` along
//!    axis 1 only (a reduction over axis 0, or over everything, needs every row before its
//!    first use: not row-local).
//! 3. Every argument is read either *per block* (the argument has the space's rank and its
//!    leading length is `R`: the block's rows of it) or *whole* (a broadcast row, column or
//!    scalar: every block reads all of it). An earlier kernel's result must be read per block,
//!    as it is (not through a view: `x.sum(1)[::-1]` reads other rows). A plan input read
//!    through views is viewed whole first, then cut into blocks of the viewed rows.
//! 4. A shared element-wise subexpression that computes a transcendental function (`exp`,
//!    `log`, `sqrt`, `**`, ...) is materialized into block scratch (which costs no memory
//!    traffic), so it is computed once per element; cheaper shared arithmetic (`x - mean`) is
//!    recomputed by each pass from the block in cache (one pass fewer).
//!
//! Results are the same as the multi-kernel plan's up to rounding of the shared values (both
//! compute the same operators in the same order on each element); row reductions use the same
//! kernels, and blocks have fixed boundaries (from the shape, never the thread count), so the
//! bits do not depend on the number of threads.
//!
//! Along axis 0 (`x - mean(x, axis=0)`) the reduction needs all rows before its epilogue, so
//! the plan keeps its kernels; their column partials are one row of accumulators, which stay
//! in cache while the rows stream through (the CPU's vertical reduction).
use super::fuse::{partition_with, Buf, Partition, Step};
use super::lower::Lowered;
use std::collections::HashMap;

/// Elements of the widest pass a block of rows covers (256 KiB of float64): the block of
/// `x`, the scratch passes and the output block fit a core's L2 cache together.
pub const BLOCK_ELEMS: usize = 1 << 15;

/// A plan's row form (see the module docs).
#[derive(Debug, Clone)]
pub struct RowPlan {
    /// The passes, in order: ordinary kernels over the whole arrays' shapes; each runs over
    /// one block of rows at a time (its space's rows `lo..hi`).
    pub steps: Vec<Step>,
    /// Where each root's value is (as [`super::Plan::results`]).
    pub results: Vec<(u32, Vec<usize>)>,
    /// `R`, the rows.
    pub rows: usize,
    /// Rows per block ([`block_rows`]).
    pub block_rows: usize,
    /// Per step, per argument: read per block (`true`) or whole (a broadcast).
    pub per_block: Vec<Vec<bool>>,
}

impl RowPlan {
    /// Whether temporary `t` is a result of the plan (a full array in memory); every other
    /// temporary lives in one block's scratch only.
    pub fn is_result(&self, t: u32) -> bool {
        self.results.iter().any(|(r, _)| *r == t)
    }

    /// Bytes the row form moves to and from memory: each input read once (the passes after
    /// the first read a block from cache), each result written once.
    pub fn memory_bytes(&self) -> (u64, u64) {
        let mut inputs: HashMap<u32, u64> = HashMap::new();
        for s in &self.steps {
            for ((b, shape), t) in s.args.iter().zip(&s.arg_shapes).zip(&s.kernel.inputs) {
                if let Buf::Input(i) = b {
                    let bytes = (shape.iter().product::<usize>() * t.size()) as u64;
                    let e = inputs.entry(*i).or_default();
                    *e = (*e).max(bytes);
                }
            }
        }
        let mut written = 0u64;
        for s in &self.steps {
            for ((t, shape), dt) in s
                .temps
                .iter()
                .zip(&s.out_shapes)
                .zip(s.kernel.output_dtypes())
            {
                if self.is_result(*t) {
                    written += (shape.iter().product::<usize>() * dt.size()) as u64;
                }
            }
        }
        (inputs.values().sum(), written)
    }
}

/// Rows per block for rows of `cols` elements (the widest pass): about [`BLOCK_ELEMS`]
/// elements, at least one row, at most `rows`. It depends on the shape only.
pub fn block_rows(rows: usize, cols: usize) -> usize {
    (BLOCK_ELEMS / cols.max(1)).clamp(1, rows.max(1))
}

/// The row form of `l`, where the rules of the module docs allow one.
pub fn row_plan(l: &Lowered) -> Option<RowPlan> {
    let plan = partition_with(l, Partition::Fused, true);
    let steps = plan.steps;
    if steps.len() < 2 || !steps.iter().any(|s| s.kernel.is_reduction()) {
        return None;
    }
    let rows = *steps[0].shape.first()?;
    if rows < 2 {
        return None;
    }
    let mut per_block = Vec::with_capacity(steps.len());
    let mut cols = 1usize;
    for s in &steps {
        let rank = s.shape.len();
        if !(1..=2).contains(&rank) || s.shape[0] != rows {
            return None;
        }
        if s.kernel.is_reduction() && (rank != 2 || s.reduce_axes != [1]) {
            return None;
        }
        cols = cols.max(s.shape[1..].iter().product());
        let mut flags = Vec::with_capacity(s.args.len());
        for ((b, shape), views) in s.args.iter().zip(&s.arg_shapes).zip(&s.arg_views) {
            let sliced = shape.len() == rank && shape[0] == rows;
            // A result read through a view (reversed, transposed) is not read row by row.
            if matches!(b, Buf::Temp(_)) && (!sliced || views.is_some()) {
                return None;
            }
            flags.push(sliced);
        }
        // Every output has one entry per row in front (the stores' spaces and the reductions'
        // kept axes start with the rows).
        if s.out_shapes.iter().any(|o| o.first() != Some(&rows)) {
            return None;
        }
        per_block.push(flags);
    }
    if plan
        .results
        .iter()
        .any(|(_, shape)| shape.first() != Some(&rows))
    {
        return None;
    }
    Some(RowPlan {
        block_rows: block_rows(rows, cols),
        steps,
        results: plan.results,
        rows,
        per_block,
    })
}
