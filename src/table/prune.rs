//! Skipping row groups by their statistics: a Parquet row group whose min/max/null-count prove
//! every filter false is never decoded.
//!
//! The unit of skipping is the streaming loop's chunk (rows `[c * R, (c + 1) * R)` of the file,
//! `R` = the table's chunk rows), not the row group: a chunk is skipped only when every row
//! group it overlaps is pruned, and a skipped chunk still takes its place in the chunk order
//! of a reduction's partials, with the partial that the kernel would have produced for it
//! (every row masked out: the reduction's identity). So a result has the same bits with and
//! without skipping, from a file or from memory. The row groups that overlap a kept chunk are
//! read, and a row selection drops their rows outside kept chunks.
//!
//! What is understood: comparisons (`<`, `<=`, `>`, `>=`, `==`, and `!=` on integers) of a
//! column with a constant (a literal, or a reduction already computed), on either side, joined
//! by `&` and `|`. Anything else keeps the group. Constants are compared in the dtype the
//! kernel compares in (a float literal against a float32 column is rounded to float32 first),
//! so a bound never proves a row false that the kernel would keep. A group whose column is all
//! null makes any comparison of it null, so the row is dropped like the kernel drops it. NaN
//! bounds (old writers) prove nothing; NaN values make every understood comparison but `!=`
//! false, and `!=` is understood on integer columns only.
use crate::dtype::{promote, promote_weak, DType};
use crate::expr::{Expr, ExprKind};
use crate::ops::BinaryOp;
use arrow_schema::{DataType, Schema};
use parquet::arrow::arrow_reader::RowSelector;
use parquet::file::metadata::ParquetMetaData;
use parquet::file::statistics::Statistics;

/// A bound from the statistics, or a constant.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Num {
    I(i64),
    F(f64),
}

/// What one row group's statistics say about one column.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ColStats {
    min: Option<Num>,
    max: Option<Num>,
    nulls: Option<u64>,
    dtype: DType,
}

/// One row group: its rows and, per schema field, its statistics where usable.
#[derive(Clone, Debug)]
pub(crate) struct GroupStats {
    rows: usize,
    cols: Vec<Option<ColStats>>,
}

/// The row groups' statistics for the fields of `schema` (a flat schema: field `j` is leaf
/// column `j`). Only the physical types that match the Arrow type exactly are used (an
/// unsigned or narrow Arrow type stored as INT32 is not).
pub(crate) fn group_stats(meta: &ParquetMetaData, schema: &Schema) -> Vec<GroupStats> {
    meta.row_groups()
        .iter()
        .map(|rg| GroupStats {
            rows: rg.num_rows().max(0) as usize,
            cols: (0..schema.fields().len())
                .map(|j| {
                    let s = rg.column(j).statistics()?;
                    let (dtype, min, max) = match (schema.field(j).data_type(), s) {
                        (DataType::Int32, Statistics::Int32(v)) => (
                            DType::I32,
                            v.min_opt().map(|x| Num::I(*x as i64)),
                            v.max_opt().map(|x| Num::I(*x as i64)),
                        ),
                        (DataType::Int64, Statistics::Int64(v)) => (
                            DType::I64,
                            v.min_opt().map(|x| Num::I(*x)),
                            v.max_opt().map(|x| Num::I(*x)),
                        ),
                        (DataType::Float32, Statistics::Float(v)) => (
                            DType::F32,
                            v.min_opt().map(|x| Num::F(*x as f64)),
                            v.max_opt().map(|x| Num::F(*x as f64)),
                        ),
                        (DataType::Float64, Statistics::Double(v)) => (
                            DType::F64,
                            v.min_opt().map(|x| Num::F(*x)),
                            v.max_opt().map(|x| Num::F(*x)),
                        ),
                        _ => return None,
                    };
                    let exact = s.min_is_exact() && s.max_is_exact();
                    Some(ColStats {
                        min: min.filter(|_| exact),
                        max: max.filter(|_| exact),
                        nulls: s.null_count_opt(),
                        dtype,
                    })
                })
                .collect(),
        })
        .collect()
}

/// Per chunk of `chunk_rows` rows, whether `filters` are provably false on all its rows
/// (`None` when no chunk is).
pub(crate) fn skip_chunks(
    groups: &[GroupStats],
    filters: &[Expr],
    col: &dyn Fn(&str) -> Option<usize>,
    chunk_rows: usize,
) -> Option<Vec<bool>> {
    if filters.is_empty() || chunk_rows == 0 {
        return None;
    }
    let total: usize = groups.iter().map(|g| g.rows).sum();
    let chunks = total.div_ceil(chunk_rows);
    let mut skip = vec![true; chunks];
    let mut start = 0;
    for g in groups {
        let end = start + g.rows;
        let pruned = filters.iter().any(|f| never_true(f, g, col));
        if !pruned && end > start {
            for s in &mut skip[start / chunk_rows..=(end - 1) / chunk_rows] {
                *s = false;
            }
        }
        start = end;
    }
    skip.iter().any(|s| *s).then_some(skip)
}

/// The row groups to read and the row selection within them (over their rows, concatenated)
/// that give exactly the rows of the chunks `skip` keeps, in order.
pub(crate) fn selection(
    groups: &[GroupStats],
    skip: &[bool],
    chunk_rows: usize,
) -> (Vec<usize>, Vec<RowSelector>) {
    let mut read = vec![];
    let mut sel: Vec<RowSelector> = vec![];
    let mut push = |keep: bool, n: usize| {
        if n == 0 {
            return;
        }
        match sel.last_mut() {
            Some(last) if last.skip != keep => last.row_count += n,
            _ => sel.push(if keep {
                RowSelector::select(n)
            } else {
                RowSelector::skip(n)
            }),
        }
    };
    let mut start = 0;
    for (i, g) in groups.iter().enumerate() {
        let end = start + g.rows;
        if end > start && (start / chunk_rows..=(end - 1) / chunk_rows).any(|c| !skip[c]) {
            read.push(i);
            let mut at = start;
            while at < end {
                let c = at / chunk_rows;
                let piece_end = ((c + 1) * chunk_rows).min(end);
                push(!skip[c], piece_end - at);
                at = piece_end;
            }
        }
        start = end;
    }
    (read, sel)
}

/// Whether predicate `p` is false or null on every row of group `g`.
fn never_true(p: &Expr, g: &GroupStats, col: &dyn Fn(&str) -> Option<usize>) -> bool {
    let ExprKind::Binary(op, x, y) = p.kind() else {
        return false;
    };
    match op {
        BinaryOp::And | BinaryOp::Or if p.dtype().ok() == Some(DType::Bool) => {
            let (a, b) = (never_true(x, g, col), never_true(y, g, col));
            if *op == BinaryOp::And {
                a || b
            } else {
                a && b
            }
        }
        BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge | BinaryOp::Eq | BinaryOp::Ne => {
            let (name, c, op) = match (x.kind(), y.kind()) {
                (ExprKind::Symbol(s), _) => (s, y, *op),
                (_, ExprKind::Symbol(s)) => (s, x, flip(*op)),
                _ => return false,
            };
            let Some(stats) = col(name).and_then(|j| g.cols.get(j).copied().flatten()) else {
                return false;
            };
            if stats.nulls == Some(g.rows as u64) {
                return true;
            }
            match constant(c, stats.dtype) {
                Some(k) => refutes(op, stats, k),
                None => false,
            }
        }
        _ => false,
    }
}

/// `c op x` as `x op' c`.
fn flip(op: BinaryOp) -> BinaryOp {
    match op {
        BinaryOp::Lt => BinaryOp::Gt,
        BinaryOp::Le => BinaryOp::Ge,
        BinaryOp::Gt => BinaryOp::Lt,
        BinaryOp::Ge => BinaryOp::Le,
        other => other,
    }
}

/// A constant operand, in the dtype the kernel compares a column of `col` with it: exact for
/// integers, rounded to float32 where the comparison is in float32.
fn constant(c: &Expr, col: DType) -> Option<(Num, DType)> {
    let (v, d) = match c.kind() {
        ExprKind::Literal(s) => {
            let d = promote_weak(col, s.kind());
            match s {
                crate::dtype::Scalar::Int(i) => (Num::I(*i), d),
                crate::dtype::Scalar::Float(f) => (Num::F(*f), d),
                crate::dtype::Scalar::Bool(_) => return None,
            }
        }
        ExprKind::Data { array, .. } if array.len() == 1 && array.ndim() == 0 => {
            let d = promote(col, array.dtype());
            let v = match array.dtype() {
                DType::I32 => Num::I(*array.as_array::<i32>().ok()?.iter().next()? as i64),
                DType::I64 => Num::I(*array.as_array::<i64>().ok()?.iter().next()?),
                DType::F32 | DType::F64 => Num::F(array.scalar_f64()?),
                _ => return None,
            };
            (v, d)
        }
        _ => return None,
    };
    let v = match (v, d) {
        (Num::F(f), DType::F32) => Num::F(f as f32 as f64),
        (Num::I(i), DType::F32) => Num::F(i as f32 as f64),
        (Num::I(i), DType::F64) => Num::F(i as f64),
        (v, DType::F64 | DType::I32 | DType::I64) => v,
        _ => return None,
    };
    Some((v, d))
}

/// Whether `x op k` is false for every non-null `x` in `[min, max]` (compared in dtype `d`).
fn refutes(op: BinaryOp, s: ColStats, (k, d): (Num, DType)) -> bool {
    let (Some(min), Some(max)) = (s.min, s.max) else {
        return false;
    };
    // Integer statistics in a float comparison: the conversion is monotone, so the bounds
    // stay bounds.
    let in_d = |v: Num| match (v, d) {
        (Num::I(i), DType::F32) => Num::F(i as f32 as f64),
        (Num::I(i), DType::F64) => Num::F(i as f64),
        (v, _) => v,
    };
    let (min, max) = (in_d(min), in_d(max));
    let cmp = |a: Num, b: Num| -> Option<std::cmp::Ordering> {
        match (a, b) {
            (Num::I(a), Num::I(b)) => Some(a.cmp(&b)),
            (Num::F(a), Num::F(b)) => a.partial_cmp(&b),
            _ => None,
        }
    };
    use std::cmp::Ordering::*;
    let (Some(lo), Some(hi)) = (cmp(min, k), cmp(max, k)) else {
        return false; // a NaN bound or constant proves nothing
    };
    match op {
        BinaryOp::Lt => lo != Less,
        BinaryOp::Le => lo == Greater,
        BinaryOp::Gt => hi != Greater,
        BinaryOp::Ge => hi == Less,
        BinaryOp::Eq => lo == Greater || hi == Less,
        BinaryOp::Ne => matches!((min, max), (Num::I(_), Num::I(_))) && lo == Equal && hi == Equal,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(min: Num, max: Num, dtype: DType) -> ColStats {
        ColStats {
            min: Some(min),
            max: Some(max),
            nulls: Some(0),
            dtype,
        }
    }

    #[test]
    fn bounds_refute_comparisons() {
        let s = stats(Num::F(1.0), Num::F(5.0), DType::F64);
        let k = |v: f64| (Num::F(v), DType::F64);
        assert!(refutes(BinaryOp::Gt, s, k(5.0)));
        assert!(!refutes(BinaryOp::Ge, s, k(5.0)));
        assert!(refutes(BinaryOp::Lt, s, k(1.0)));
        assert!(!refutes(BinaryOp::Le, s, k(1.0)));
        assert!(refutes(BinaryOp::Eq, s, k(0.5)));
        assert!(!refutes(BinaryOp::Eq, s, k(3.0)));
        // NaN values may hide in a float group: `!=` is never refuted there.
        assert!(!refutes(
            BinaryOp::Ne,
            stats(Num::F(2.0), Num::F(2.0), DType::F64),
            k(2.0)
        ));
        let i = stats(Num::I(7), Num::I(7), DType::I64);
        assert!(refutes(BinaryOp::Ne, i, (Num::I(7), DType::I64)));
        // A NaN bound proves nothing.
        assert!(!refutes(
            BinaryOp::Gt,
            stats(Num::F(f64::NAN), Num::F(f64::NAN), DType::F64),
            k(1.0)
        ));
    }

    #[test]
    fn float32_constants_round_like_the_kernel() {
        // float32(0.1) > 0.1 in f64: `a >= 0.1` is true in float32 for a == float32(0.1).
        let v = 0.1f32 as f64;
        let s = stats(Num::F(v), Num::F(v), DType::F32);
        let c = Expr::literal(crate::dtype::Scalar::Float(0.1));
        let k = constant(&c, DType::F32).unwrap();
        assert!(!refutes(BinaryOp::Ge, s, k));
        assert!(refutes(BinaryOp::Gt, s, k));
    }

    #[test]
    fn selection_reads_whole_kept_chunks() {
        let g = |rows| GroupStats { rows, cols: vec![] };
        // Groups of 3 rows, chunks of 4: rows 0..12; chunk 1 (rows 4..8) skipped.
        let groups = [g(3), g(3), g(3), g(3)];
        let (read, sel) = selection(&groups, &[false, true, false], 4);
        assert_eq!(read, vec![0, 1, 2, 3]);
        let v: Vec<(bool, usize)> = sel.iter().map(|s| (s.skip, s.row_count)).collect();
        assert_eq!(v, vec![(false, 4), (true, 4), (false, 4)]);
        // Chunk 0 skipped: group 0 (rows 0..3) is not read at all.
        let (read, sel) = selection(&groups, &[true, false, false], 4);
        assert_eq!(read, vec![1, 2, 3]);
        let v: Vec<(bool, usize)> = sel.iter().map(|s| (s.skip, s.row_count)).collect();
        assert_eq!(v, vec![(true, 1), (false, 8)]);
    }
}
