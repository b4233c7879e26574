//! The streaming loop: every evaluation over a table, in memory or from a file.
//!
//! 1. Reductions are replaced, innermost first, by their values: one pass over the rows
//!    computes every reduction of one nesting level ([`reduce_pass`]). Per chunk, each
//!    reduction gives a partial (a masked sum, min, ... and the count of rows it saw) in one
//!    fused kernel call; the partials are then combined by the same reduction, in chunk order,
//!    so that the result does not depend on the batches the file came in or on threads.
//!    `var`/`std` become `sum((x - mean(x))**2) / (count - ddof)` first (two levels).
//! 2. What is left is element-wise over the rows (or a scalar): one more pass computes it per
//!    chunk, with its validity, and compacts the rows the filters keep ([`row_pass`]).
//!
//! A reader thread decodes and re-chunks the source while the kernels run: the channel between
//! them holds [`IN_FLIGHT`] chunks, which bounds the memory.
use super::nulls::{self, and, children, rebuild, valid_of, walk, Nullifier};
use super::read::{table_err, to_arrow, Batches};
use super::{ColumnKind, Table};
use crate::array::{ArgView, DynArray};
use crate::dtype::{DType, Scalar};
use crate::error::{Error, Result};
use crate::expr::{Expr, ExprKind};
use crate::ops::{ReduceOp, Reduction};
use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Float64Type, Int32Type, Int64Type};
use arrow_array::{Array, ArrayRef, BooleanArray, RecordBatch};
use arrow_buffer::NullBuffer;
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use ndarray::{ArrayD, ArrayView1, IxDyn};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Chunks decoded ahead of the one being computed.
pub const IN_FLIGHT: usize = 2;

/// A computed result: values (a scalar for a reduction, one element per kept row otherwise)
/// and which of them are present.
#[derive(Clone, Debug, PartialEq)]
pub struct Column {
    values: DynArray,
    validity: Option<Vec<bool>>,
}

impl Column {
    /// The values; an element that is null holds an unspecified value.
    pub fn values(&self) -> &DynArray {
        &self.values
    }
    /// Per element, whether it is present; `None` when all are.
    pub fn validity(&self) -> Option<&[bool]> {
        self.validity.as_deref()
    }
    /// Whether element `i` (in C order) is null.
    pub fn is_null(&self, i: usize) -> bool {
        self.validity.as_ref().is_some_and(|v| !v[i])
    }
    /// How many elements are null.
    pub fn null_count(&self) -> usize {
        self.validity
            .as_ref()
            .map_or(0, |v| v.iter().filter(|b| !**b).count())
    }
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.values.len()
    }
    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
    /// A single present element as `f64` (`None` when null, or not a single element).
    pub fn scalar_f64(&self) -> Option<f64> {
        (self.len() == 1 && !self.is_null(0))
            .then(|| self.values.scalar_f64())
            .flatten()
    }
    /// A single present integer or bool element, exactly (`None` otherwise).
    pub fn scalar_i64(&self) -> Option<i64> {
        if self.len() != 1 || self.is_null(0) {
            return None;
        }
        match &self.values {
            DynArray::I64(a) => a.iter().next().copied(),
            DynArray::I32(a) => a.iter().next().map(|v| *v as i64),
            DynArray::Bool(a) => a.iter().next().map(|v| *v as i64),
            _ => None,
        }
    }
    /// The values, with nulls an error: [`Error::Value`] naming how many.
    pub fn into_values(self) -> Result<DynArray> {
        match self.null_count() {
            0 => Ok(self.values),
            n => Err(Error::Value {
                message: format!("{n} null values; fill them first (fill_null)"),
            }),
        }
    }
    /// The values with each null replaced by `fill` (cast to the values' dtype).
    pub fn filled(&self, fill: Scalar) -> Result<DynArray> {
        let Some(v) = &self.validity else {
            return Ok(self.values.clone());
        };
        let mask = Expr::data(
            ArrayD::from_shape_vec(IxDyn(self.values.shape()), v.clone()).map_err(|e| {
                Error::Argument {
                    message: e.to_string(),
                }
            })?,
            None,
        );
        let d = self.values.dtype();
        let e = crate::expr::where_(
            mask,
            Expr::data(self.values.clone(), None),
            Expr::literal(fill),
        )
        .astype(d);
        crate::session::Session::new().compute(&e)
    }
    /// Write to a `.npy` file: nulls are an error unless `fill` replaces them.
    pub fn write_npy(&self, path: &std::path::Path, fill: Option<Scalar>) -> Result<()> {
        let a = match fill {
            Some(f) => self.filled(f)?,
            None => self.clone().into_values()?,
        };
        crate::npy::write_npy(path, &a)
    }
    /// As an Arrow array (a 1-element one for a scalar).
    pub fn to_arrow(&self) -> ArrayRef {
        let flat = self
            .values
            .reshaped(&[self.values.len()])
            .unwrap_or_else(|_| self.values.clone());
        to_arrow(&flat, self.validity.clone().map(NullBuffer::from))
    }
}

/// Evaluation state: the table, which columns may be null, and the reduction results already
/// substituted (kept alive: the nullifier knows the null ones by node identity).
struct Ctx<'t> {
    t: &'t Table,
    schema: SchemaRef,
    nullable: Vec<bool>,
    null_scalars: HashSet<usize>,
    keep: Vec<Expr>,
    /// Explaining instead of computing: each reduction pass is recorded here and its values
    /// are stand-ins (zeros), so nothing reads a row.
    dry: Option<Vec<Pass>>,
}

/// One pass over the rows as [`explain_passes`] records it, without running it.
pub(super) struct Pass {
    /// A pass of reductions (their per-chunk partials), or the final element-wise pass.
    pub reductions: bool,
    /// What the kernels compute per chunk (columns and their validity bound as symbols).
    pub per_chunk: Vec<Expr>,
    /// What is computed once, reading no rows.
    pub once: Vec<Expr>,
    /// The filters whose row-group statistics may skip chunks of this pass.
    pub skip_filters: Vec<Expr>,
    /// The source columns the pass reads (indices), sorted.
    pub columns: Vec<usize>,
}

impl<'t> Ctx<'t> {
    fn new(t: &'t Table) -> Ctx<'t> {
        let schema = t.source.schema();
        let nullable = (0..schema.fields().len())
            .map(|i| t.source.may_be_null(i))
            .collect();
        Ctx {
            t,
            schema,
            nullable,
            null_scalars: HashSet::new(),
            keep: vec![],
            dry: None,
        }
    }

    fn col_index(&self, name: &str) -> Option<usize> {
        if nulls::is_marker(name) {
            return None;
        }
        self.schema.index_of(name).ok()
    }

    /// The filters with their reductions replaced, each over the rows the earlier ones keep.
    fn resolve_filters(&mut self) -> Result<Vec<Expr>> {
        let mut done: Vec<Expr> = vec![];
        for f in self.t.filters.clone() {
            let r = self.eliminate(vec![f], &done.clone())?;
            done.extend(r);
        }
        Ok(done)
    }

    /// `exprs` with every reduction replaced by its value over the rows `filters` keep.
    fn eliminate(&mut self, exprs: Vec<Expr>, filters: &[Expr]) -> Result<Vec<Expr>> {
        let mut exprs = exprs
            .iter()
            .map(expand_moments)
            .collect::<Result<Vec<_>>>()?;
        loop {
            let inner = innermost_reductions(&exprs);
            if inner.is_empty() {
                return Ok(exprs);
            }
            let values = if self.dry.is_some() {
                let p = self.reduce_exprs(&inner, filters)?;
                let per_chunk: Vec<Expr> = p.row_idx.iter().map(|&i| p.exprs[i].clone()).collect();
                let (mut columns, valids) = inputs_of(self, &per_chunk);
                columns.extend(valids);
                columns.sort_unstable();
                columns.dedup();
                let pass = Pass {
                    reductions: true,
                    per_chunk,
                    columns,
                    once: p.scalar_idx.iter().map(|&i| p.exprs[i].clone()).collect(),
                    skip_filters: if p.skippable {
                        filters.to_vec()
                    } else {
                        vec![]
                    },
                };
                self.dry.get_or_insert_with(Vec::new).push(pass);
                inner
                    .iter()
                    .map(|r| Ok((zero(r.dtype()?), true)))
                    .collect::<Result<Vec<_>>>()?
            } else {
                self.reduce_pass(&inner, filters)?
            };
            let mut map = HashMap::new();
            for (r, (v, valid)) in inner.iter().zip(values) {
                let d = Expr::data(v, None);
                if !valid {
                    self.null_scalars.insert(d.ptr_id());
                }
                self.keep.push(d.clone());
                map.insert(r.ptr_id(), d);
            }
            exprs = exprs.iter().map(|e| replace(e, &map)).collect();
        }
    }

    /// Whether `e` reads a column.
    fn reads_rows(&self, e: &Expr) -> bool {
        let mut found = false;
        walk(e, &mut |n| {
            if let ExprKind::Symbol(s) = n.kind() {
                found |= self.col_index(s).is_some();
            }
        });
        found
    }

    /// The row mask of `filters` (a row is kept where every predicate is present and true).
    fn mask(&self, nf: &mut Nullifier<'_>, filters: &[Expr]) -> Result<Option<Expr>> {
        let mut m = None;
        for f in filters {
            let (v, valid) = nf.split(f)?;
            m = and(m, and(Some(v), valid));
        }
        Ok(m)
    }

    /// The partial expressions of reductions `reds` (free of nested reductions) over the rows
    /// `filters` keep: which are computed per chunk and which once.
    fn reduce_exprs(&self, reds: &[Expr], filters: &[Expr]) -> Result<ReduceExprs> {
        let nullable = |name: &str| self.col_index(name).is_some_and(|i| self.nullable[i]);
        let null_scalars = self.null_scalars.clone();
        let mut nf = Nullifier::new(&nullable, &null_scalars);
        let mask = self.mask(&mut nf, filters)?;
        let mut partial_exprs: Vec<Expr> = vec![];
        let mut plans = vec![];
        for r in reds {
            let ExprKind::Reduce(red, x, _) = r.kind() else {
                unreachable!("innermost_reductions gives reductions")
            };
            let rows = self.reads_rows(x);
            let (xv, xm) = nf.split(x)?;
            let m = if rows { and(xm, mask.clone()) } else { xm };
            let plan = partials(*red, &xv, m, &mut partial_exprs, r)?;
            plans.push((plan, rows));
        }
        let row_idx: Vec<usize> = (0..partial_exprs.len())
            .filter(|&i| plans.iter().any(|(p, rows)| *rows && p.uses(i)))
            .collect();
        let scalar_idx: Vec<usize> = (0..partial_exprs.len())
            .filter(|i| !row_idx.contains(i))
            .collect();
        // A chunk skipped by statistics has every row masked out: its partials are the
        // reductions' identities, which is what the kernel would give (only then skip).
        let idents: Option<Vec<DynArray>> = row_idx
            .iter()
            .map(|&i| identity(&partial_exprs[i]))
            .collect();
        Ok(ReduceExprs {
            exprs: partial_exprs,
            plans,
            row_idx,
            scalar_idx,
            skippable: idents.is_some(),
            idents: idents.unwrap_or_default(),
        })
    }

    /// The values of reductions `reds` (free of nested reductions) over the rows `filters`
    /// keep, and whether each is present.
    fn reduce_pass(&self, reds: &[Expr], filters: &[Expr]) -> Result<Vec<(DynArray, bool)>> {
        let ReduceExprs {
            exprs: partial_exprs,
            plans,
            row_idx,
            scalar_idx,
            skippable,
            idents,
        } = self.reduce_exprs(reds, filters)?;
        // Reductions of scalars are computed once; those of rows, per chunk.
        let mut sums: Vec<Vec<DynArray>> = vec![vec![]; partial_exprs.len()];
        let mut counts: Vec<i64> = vec![0; plans.len()];
        if !scalar_idx.is_empty() {
            let es: Vec<Expr> = scalar_idx
                .iter()
                .map(|&i| partial_exprs[i].clone())
                .collect();
            let out = self.t.session.compute_many(&es)?;
            for (i, a) in scalar_idx.iter().zip(out) {
                sums[*i].push(a);
            }
            for (k, (p, rows)) in plans.iter().enumerate() {
                if !rows && p.count.is_none() {
                    counts[k] += 1;
                }
            }
        }
        if !row_idx.is_empty() {
            let es: Vec<Expr> = row_idx.iter().map(|&i| partial_exprs[i].clone()).collect();
            let t = self.t;
            let skippable = if skippable { filters } else { &[] };
            for_each_chunk(self, &es, &[], skippable, &mut |chunk, bound| {
                let Some(chunk) = chunk else {
                    for (i, id) in row_idx.iter().zip(&idents) {
                        sums[*i].push(id.clone());
                    }
                    return Ok(true);
                };
                let out = t.session.compute_bound(&es, bound, false)?;
                for (i, a) in row_idx.iter().zip(out) {
                    sums[*i].push(a);
                }
                for (k, (p, rows)) in plans.iter().enumerate() {
                    if *rows && p.count.is_none() {
                        counts[k] += chunk.num_rows() as i64;
                    }
                }
                Ok(true)
            })?;
        }
        let mut out = vec![];
        for (k, (p, _)) in plans.iter().enumerate() {
            let count = match p.count {
                Some(i) => {
                    let total = combine(self.t, &sums[i], DType::I64, ReduceOp::Sum)?;
                    total.scalar_f64().unwrap_or(0.0) as i64
                }
                None => counts[k],
            };
            let vd = partial_exprs[p.value].dtype()?;
            out.push(p.finish(self.t, &sums[p.value], vd, count)?);
        }
        Ok(out)
    }
}

/// The partial expressions of one reduction pass ([`Ctx::reduce_exprs`]).
struct ReduceExprs {
    exprs: Vec<Expr>,
    /// Per reduction: how it is combined, and whether it reads rows.
    plans: Vec<(PartialPlan, bool)>,
    /// The partials computed per chunk, and those computed once.
    row_idx: Vec<usize>,
    scalar_idx: Vec<usize>,
    /// Whether a chunk whose statistics refute the filters may be skipped (every partial per
    /// chunk has an identity), and those identities (for `row_idx`, in order).
    skippable: bool,
    idents: Vec<DynArray>,
}

/// How one reduction is computed from per-chunk partials.
struct PartialPlan {
    red: Reduction,
    /// The partial of the values (index into the partial expressions).
    value: usize,
    /// The partial counting the rows seen (`None`: all rows of each chunk count).
    count: Option<usize>,
    /// The reduction's result dtype and shape.
    dtype: DType,
    shape: Vec<usize>,
}

impl PartialPlan {
    fn uses(&self, i: usize) -> bool {
        self.value == i || self.count == Some(i)
    }

    /// Combine the partials; the value and whether it is present.
    fn finish(
        &self,
        t: &Table,
        parts: &[DynArray],
        part_dtype: DType,
        count: i64,
    ) -> Result<(DynArray, bool)> {
        let (value, valid) = match self.red {
            Reduction::Op(op @ (ReduceOp::Min | ReduceOp::Max)) => {
                if count == 0 {
                    (zero(self.dtype), false)
                } else {
                    (combine(t, parts, part_dtype, op)?, true)
                }
            }
            Reduction::Op(op) => (combine(t, parts, part_dtype, op)?, true),
            Reduction::Mean => {
                if count == 0 {
                    (zero(self.dtype), false)
                } else {
                    let sum = combine(t, parts, part_dtype, ReduceOp::Sum)?;
                    let mean = (Expr::data(sum, None) / count as f64).astype(self.dtype);
                    (t.session.compute(&mean)?, true)
                }
            }
            _ => {
                return Err(Error::Argument {
                    message: format!("{} over a table is not supported", self.red),
                })
            }
        };
        Ok((value.reshaped(&self.shape)?, valid))
    }
}

/// The value partial `e` (a whole reduction of masked values) has over a chunk whose rows are
/// all masked out: the reduction's identity in `e`'s dtype (`None` when not known).
fn identity(e: &Expr) -> Option<DynArray> {
    let ExprKind::Reduce(Reduction::Op(op), _, _) = e.kind() else {
        return None;
    };
    let d = e.dtype().ok()?;
    Some(match op {
        ReduceOp::Sum => zero(d),
        ReduceOp::Prod => scalar(crate::dtype::Const::small_int(1, d)),
        ReduceOp::Min | ReduceOp::All => scalar(extreme(d, true)),
        ReduceOp::Max | ReduceOp::Any => scalar(extreme(d, false)),
        _ => return None,
    })
}

/// The largest (`big`) or smallest value of `d`: infinities for floats, true/false for bool.
fn extreme(d: DType, big: bool) -> crate::dtype::Const {
    use crate::dtype::Const;
    macro_rules! pick {
        ($t:ty, $v:ident) => {
            Const::$v(if big { <$t>::MAX } else { <$t>::MIN })
        };
    }
    match d {
        DType::Bool => Const::Bool(big),
        DType::I8 => pick!(i8, I8),
        DType::I16 => pick!(i16, I16),
        DType::I32 => pick!(i32, I32),
        DType::I64 => pick!(i64, I64),
        DType::U8 => pick!(u8, U8),
        DType::U16 => pick!(u16, U16),
        DType::U32 => pick!(u32, U32),
        DType::U64 => pick!(u64, U64),
        DType::F16 => Const::F16(if big {
            crate::f16::INFINITY
        } else {
            crate::f16::NEG_INFINITY
        }),
        DType::F32 => Const::F32(if big {
            f32::INFINITY
        } else {
            f32::NEG_INFINITY
        }),
        DType::F64 => Const::F64(if big {
            f64::INFINITY
        } else {
            f64::NEG_INFINITY
        }),
    }
}

/// A 0-d array holding `c`.
fn scalar(c: crate::dtype::Const) -> DynArray {
    use crate::array::Element;
    let z = IxDyn(&[]);
    crate::with_dtype!(c.dtype(), T => ArrayD::from_elem(z, T::from_const(c)).into())
}

/// A 0-d zero of `d`.
fn zero(d: DType) -> DynArray {
    let z = IxDyn(&[]);
    crate::with_dtype!(d, T => ArrayD::from_elem(z, T::default()).into())
}

/// Stack 0-d partials into a 1-d array (of `d` when there are none).
fn stack(parts: &[DynArray], d: DType) -> Result<DynArray> {
    fn col<T: crate::array::Element>(parts: &[DynArray]) -> Result<DynArray> {
        let mut v = Vec::with_capacity(parts.len());
        for p in parts {
            v.extend(p.as_array::<T>()?.iter().copied());
        }
        Ok(ndarray::Array1::from(v).into())
    }
    crate::with_dtype!(d, T => col::<T>(parts))
}

/// Reduce the partials with `op`, in chunk order, by a kernel like any other.
fn combine(t: &Table, parts: &[DynArray], d: DType, op: ReduceOp) -> Result<DynArray> {
    let s = Expr::data(stack(parts, d)?, None);
    t.session.compute(&s.reduce(Reduction::Op(op), None, false))
}

/// The partial expressions of reduction `red` of values `xv` under mask `m`.
fn partials(
    red: Reduction,
    xv: &Expr,
    m: Option<Expr>,
    out: &mut Vec<Expr>,
    node: &Expr,
) -> Result<PartialPlan> {
    let d = xv.dtype()?;
    let meta = node.meta()?;
    let masked = |ident: Expr| match &m {
        Some(m) => crate::expr::where_(m, xv, ident),
        None => xv.clone(),
    };
    let mut push = |e: Expr| {
        e.meta()?;
        out.push(e);
        Ok::<usize, Error>(out.len() - 1)
    };
    let count = match &m {
        Some(m) => Some(push(m.sum())?),
        None => None,
    };
    let value = match red {
        Reduction::Op(ReduceOp::Sum) => push(masked(Expr::from(0)).sum())?,
        Reduction::Op(ReduceOp::Prod) => push(masked(Expr::from(1)).prod())?,
        Reduction::Op(ReduceOp::Any) => push(masked(Expr::from(false)).any())?,
        Reduction::Op(ReduceOp::All) => push(masked(Expr::from(true)).all())?,
        Reduction::Op(op @ (ReduceOp::Min | ReduceOp::Max)) => {
            let big = op == ReduceOp::Min;
            // A strong 0-d scalar of the values' own dtype (a weak literal could not hold
            // uint64's maximum, and a weak float would promote integers).
            let ident = Expr::data(scalar(extreme(d, big)), None);
            let e = masked(ident);
            push(if big { e.min() } else { e.max() })?
        }
        Reduction::Mean => {
            let x = if d == meta.dtype {
                xv.clone()
            } else {
                xv.astype(meta.dtype)
            };
            let e = match &m {
                Some(m) => crate::expr::where_(m, &x, 0),
                None => x,
            };
            push(e.sum())?
        }
        other => {
            return Err(Error::Argument {
                message: format!("{other} over a table is not supported"),
            })
        }
    };
    Ok(PartialPlan {
        red,
        value,
        count,
        dtype: meta.dtype,
        shape: meta.shape.clone(),
    })
}

/// `var`/`std` as sums and means: `sum((x - mean(x))**2) / (count - ddof)`, each of which
/// skips nulls and honours the filters.
fn expand_moments(e: &Expr) -> Result<Expr> {
    let mut map = HashMap::new();
    let mut err = None;
    walk(e, &mut |n| {
        if let ExprKind::Reduce(r @ (Reduction::Var { ddof } | Reduction::Std { ddof }), x, _) =
            n.kind()
        {
            let out = (|| {
                let x = expand_moments(x)?;
                let rd = n.dtype()?;
                let dev = &x - x.mean();
                let ss = (&dev * &dev).sum();
                let count = nulls::is_valid(&x).sum();
                let var = (ss / (count - *ddof as i64)).astype(rd);
                Ok(match r {
                    Reduction::Std { .. } => var.sqrt().astype(rd),
                    _ => var,
                })
            })();
            match out {
                Ok(v) => {
                    map.insert(n.ptr_id(), v);
                }
                Err(x) => err = Some(x),
            }
        }
    });
    if let Some(e) = err {
        return Err(e);
    }
    Ok(if map.is_empty() {
        e.clone()
    } else {
        replace(e, &map)
    })
}

/// The reductions of `exprs` whose operands hold no reduction, each once.
fn innermost_reductions(exprs: &[Expr]) -> Vec<Expr> {
    let mut out: Vec<Expr> = vec![];
    let mut seen = HashSet::new();
    for e in exprs {
        walk(e, &mut |n| {
            if let ExprKind::Reduce(_, x, _) = n.kind() {
                let mut nested = false;
                walk(x, &mut |k| {
                    nested |= matches!(k.kind(), ExprKind::Reduce(..))
                });
                if !nested && seen.insert(n.ptr_id()) {
                    out.push(n.clone());
                }
            }
        });
    }
    out
}

/// `e` with the nodes in `map` (by identity) replaced, rebuilt bottom-up.
fn replace(e: &Expr, map: &HashMap<usize, Expr>) -> Expr {
    let mut done: HashMap<usize, Expr> = HashMap::new();
    let mut stack = vec![(e.clone(), false)];
    while let Some((n, expanded)) = stack.pop() {
        let id = n.ptr_id();
        if done.contains_key(&id) {
            continue;
        }
        if let Some(r) = map.get(&id) {
            done.insert(id, r.clone());
            continue;
        }
        let kids: Vec<Expr> = children(&n).into_iter().cloned().collect();
        if !expanded && !kids.is_empty() {
            stack.push((n.clone(), true));
            for k in kids {
                stack.push((k, false));
            }
            continue;
        }
        let new: Vec<Expr> = kids.iter().map(|k| done[&k.ptr_id()].clone()).collect();
        let same = new.iter().zip(&kids).all(|(a, b)| a.ptr_id() == b.ptr_id());
        let out = if same { n.clone() } else { rebuild(&n, new) };
        done.insert(id, out);
    }
    done[&e.ptr_id()].clone()
}

/// Owned data behind one chunk's bindings.
enum Held {
    Array(ArrayRef),
    Bools(Vec<bool>),
}

/// The view of a held column.
fn view_of(h: &Held) -> Result<ArgView<'_>> {
    Ok(match h {
        Held::Bools(v) => ArrayView1::from(v.as_slice()).into(),
        Held::Array(a) => match a.data_type() {
            DataType::Int32 => ArrayView1::from(&a.as_primitive::<Int32Type>().values()[..]).into(),
            DataType::Int64 => ArrayView1::from(&a.as_primitive::<Int64Type>().values()[..]).into(),
            DataType::Float32 => {
                ArrayView1::from(&a.as_primitive::<Float32Type>().values()[..]).into()
            }
            DataType::Float64 => {
                ArrayView1::from(&a.as_primitive::<Float64Type>().values()[..]).into()
            }
            t => {
                return Err(Error::UnsupportedDtype {
                    dtype: t.to_string(),
                    context: "a table column bound to a kernel".into(),
                })
            }
        },
    })
}

/// The columns and validity symbols that `exprs` read, as (name, source index, validity?).
fn inputs_of(ctx: &Ctx<'_>, exprs: &[Expr]) -> (Vec<usize>, Vec<usize>) {
    let mut values = HashSet::new();
    let mut valids = HashSet::new();
    for e in exprs {
        walk(e, &mut |n| {
            if let ExprKind::Symbol(s) = n.kind() {
                if let Some(i) = ctx.col_index(s) {
                    values.insert(i);
                } else if let Some(i) = valid_of(s).and_then(|c| ctx.col_index(c)) {
                    valids.insert(i);
                }
            }
        });
    }
    let mut v: Vec<usize> = values.into_iter().collect();
    let mut m: Vec<usize> = valids.into_iter().collect();
    v.sort_unstable();
    m.sort_unstable();
    (v, m)
}

/// What [`for_each_chunk`] calls per chunk: the projected batch and its columns bound by name,
/// or `None` (and no columns) for a chunk skipped by the row groups' statistics; false stops
/// the stream.
type ChunkFn<'f> = dyn FnMut(Option<&RecordBatch>, &[(&str, ArgView<'_>)]) -> Result<bool> + 'f;

/// Stream the source's chunks through `f` with `exprs`' inputs bound; `extra` source columns
/// are read too (passed through). `f` returns false to stop early. `f` gets the projected
/// chunk, whose columns are the sorted union of the inputs and `extra`.
fn for_each_chunk(
    ctx: &Ctx<'_>,
    exprs: &[Expr],
    extra: &[usize],
    filters: &[Expr],
    f: &mut ChunkFn<'_>,
) -> Result<Vec<usize>> {
    let (values, valids) = inputs_of(ctx, exprs);
    let mut proj: Vec<usize> = values.iter().chain(&valids).chain(extra).copied().collect();
    proj.sort_unstable();
    proj.dedup();
    let pos = |i: usize| proj.iter().position(|&p| p == i).expect("projected");
    let rows = ctx.t.chunk_rows;
    let mut each = |chunk: Option<&RecordBatch>| -> Result<bool> {
        let Some(chunk) = chunk else {
            ctx.t
                .skipped
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return f(None, &[]);
        };
        let (names, held) = hold(ctx, chunk, &values, &valids, &pos)?;
        let views = held.iter().map(view_of).collect::<Result<Vec<_>>>()?;
        let bound: Vec<(&str, ArgView<'_>)> = names.iter().map(String::as_str).zip(views).collect();
        f(Some(chunk), &bound)
    };
    // A Parquet file (with row-group statistics): several readers, chunks skipped by them.
    if let Some(groups) = ctx.t.source.groups() {
        let skip = super::prune::skip_chunks(groups, filters, &|name| ctx.col_index(name), rows);
        parallel_chunks(ctx, &proj, skip.as_deref(), &mut each)?;
        return Ok(proj);
    }
    // Other sources: one reader, cut into chunks by a thread of its own.
    let batches = ctx.t.source.batches(&proj, rows)?;
    let path = ctx.t.source.path().map(|p| p.to_path_buf());
    std::thread::scope(|scope| -> Result<()> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Result<RecordBatch>>(IN_FLIGHT);
        scope.spawn(move || rechunk(batches, rows, path, &tx));
        for chunk in rx {
            if !each(Some(&chunk?))? {
                break;
            }
        }
        Ok(())
    })?;
    Ok(proj)
}

/// The bound inputs of one chunk: names and the data behind them (`values` columns, then the
/// validity of `valids` columns), at the chunk's column positions `pos`.
fn hold(
    ctx: &Ctx<'_>,
    chunk: &RecordBatch,
    values: &[usize],
    valids: &[usize],
    pos: &dyn Fn(usize) -> usize,
) -> Result<(Vec<String>, Vec<Held>)> {
    let mut held = vec![];
    let mut names: Vec<String> = vec![];
    for &i in values {
        let col = chunk.column(pos(i));
        let field = ctx.schema.field(i);
        let d = super::computable_dtype(field.name(), field.data_type())?;
        held.push(match d {
            DType::Bool => Held::Bools(unpack(col.as_boolean().values())),
            d => {
                let target = super::read::arrow_type(d);
                if col.data_type() == &target {
                    Held::Array(col.clone())
                } else {
                    Held::Array(
                        arrow_cast::cast(col, &target)
                            .map_err(|e| table_err(ctx.t.source.path(), None, e))?,
                    )
                }
            }
        });
        names.push(field.name().clone());
    }
    for &i in valids {
        let col = chunk.column(pos(i));
        held.push(Held::Bools(match col.logical_nulls() {
            Some(n) => unpack(n.inner()),
            None => vec![true; col.len()],
        }));
        names.push(nulls::valid_name(ctx.schema.field(i).name()));
    }
    Ok((names, held))
}

/// Arrow's bits as one bool per element: eight at a time from a byte (a table of the 256
/// byte patterns), the unaligned head and tail bit by bit.
fn unpack(bits: &arrow_buffer::BooleanBuffer) -> Vec<bool> {
    const SPREAD: [u64; 256] = {
        let mut t = [0u64; 256];
        let mut i = 0;
        while i < 256 {
            let mut j = 0;
            while j < 8 {
                t[i] |= (((i >> j) & 1) as u64) << (8 * j);
                j += 1;
            }
            i += 1;
        }
        t
    };
    let (len, offset) = (bits.len(), bits.offset());
    let mut out = Vec::with_capacity(len);
    let head = ((8 - offset % 8) % 8).min(len);
    out.extend((0..head).map(|i| bits.value(i)));
    let bytes = &bits.values()[(offset + head) / 8..];
    let whole = (len - head) / 8;
    for &b in &bytes[..whole] {
        out.extend(SPREAD[b as usize].to_le_bytes().map(|x| x != 0));
    }
    out.extend((head + whole * 8..len).map(|i| bits.value(i)));
    out
}

/// A Parquet source's chunks (those `skip` keeps), decoded by several threads at once: worker
/// `w` reads the kept chunks `w, w + W, ...` with its own reader over the footer decoded at
/// open, and `each` gets every chunk, skipped (`None`) or read, in chunk order. Each worker
/// holds at most [`IN_FLIGHT`] decoded chunks ahead.
fn parallel_chunks(
    ctx: &Ctx<'_>,
    proj: &[usize],
    skip: Option<&[bool]>,
    each: &mut dyn FnMut(Option<&RecordBatch>) -> Result<bool>,
) -> Result<()> {
    let rows = ctx.t.chunk_rows;
    let chunks = ctx.t.source.rows().unwrap_or(0).div_ceil(rows.max(1));
    let skipped = |c: usize| skip.is_some_and(|s| s.get(c) == Some(&true));
    let kept: Vec<usize> = (0..chunks).filter(|&c| !skipped(c)).collect();
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 8)
        .min(kept.len().max(1));
    let source = &*ctx.t.source;
    std::thread::scope(|scope| -> Result<()> {
        let mut rxs = vec![];
        for w in 0..workers {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Result<RecordBatch>>(IN_FLIGHT - 1);
            let mine: Vec<usize> = kept.iter().skip(w).step_by(workers).copied().collect();
            scope.spawn(move || {
                for c in mine {
                    let r = source.parquet_chunk(proj, rows, c);
                    let failed = r.is_err();
                    if tx.send(r).is_err() || failed {
                        return;
                    }
                }
            });
            rxs.push(rx);
        }
        let mut k = 0;
        for c in 0..chunks {
            let more = if skipped(c) {
                each(None)?
            } else {
                let chunk = rxs[k % workers].recv().map_err(|_| Error::Argument {
                    message: format!("chunk reader {} stopped early", k % workers),
                })??;
                k += 1;
                each(Some(&chunk))?
            };
            if !more {
                break;
            }
        }
        Ok(())
    })
}

/// Cut `batches` into chunks of exactly `rows` rows (the last one shorter) and send them.
fn rechunk(
    batches: Batches,
    rows: usize,
    path: Option<std::path::PathBuf>,
    tx: &std::sync::mpsc::SyncSender<Result<RecordBatch>>,
) {
    let mut pending: Vec<RecordBatch> = vec![];
    let mut have = 0usize;
    let flush = |pending: &mut Vec<RecordBatch>| -> Result<RecordBatch> {
        let b = if pending.len() == 1 {
            pending[0].clone()
        } else {
            arrow_select::concat::concat_batches(&pending[0].schema(), pending.iter())
                .map_err(|e| table_err(path.as_deref(), None, e))?
        };
        pending.clear();
        Ok(b)
    };
    for b in batches {
        let b = match b {
            Ok(b) => b,
            Err(e) => {
                let _ = tx.send(Err(e));
                return;
            }
        };
        let mut off = 0;
        while off < b.num_rows() {
            let take = (rows - have).min(b.num_rows() - off);
            pending.push(b.slice(off, take));
            have += take;
            off += take;
            if have == rows {
                have = 0;
                if tx.send(flush(&mut pending)).is_err() {
                    return;
                }
            }
        }
    }
    if have > 0 {
        let _ = tx.send(flush(&mut pending));
    }
}

/// What [`row_pass`] produces per visible output.
enum Out {
    /// A source column, passed through (filtered).
    Pass(usize),
    /// A computed column: values, and validity as a union of source bitmaps or a computed
    /// bool (expression index), or none.
    Computed {
        values: usize,
        union: Vec<usize>,
        valid: Option<usize>,
    },
}

/// The source columns whose validity symbols `and` together make `v`, if it is only that.
fn bitmap_union(ctx: &Ctx<'_>, v: &Expr) -> Option<Vec<usize>> {
    let mut cols = vec![];
    let mut stack = vec![v];
    while let Some(n) = stack.pop() {
        match n.kind() {
            ExprKind::Binary(crate::ops::BinaryOp::And, a, b) => {
                stack.push(a);
                stack.push(b);
            }
            ExprKind::Symbol(s) => cols.push(valid_of(s).and_then(|c| ctx.col_index(c))?),
            _ => return None,
        }
    }
    Some(cols)
}

/// What [`row_pass`] computes per chunk: the expressions (values, computed validity, then the
/// filters' mask), how each root's column is made of them, and the source columns read besides
/// their inputs (passed through, or validity bitmaps).
struct RowExprs {
    exprs: Vec<Expr>,
    outs: Vec<Out>,
    extra: Vec<usize>,
    mask_idx: Option<usize>,
}

/// The expressions of a row pass over `roots` (free of reductions) under `filters`.
fn row_exprs(ctx: &Ctx<'_>, roots: &[Result<Expr, usize>], filters: &[Expr]) -> Result<RowExprs> {
    let nullable = |name: &str| ctx.col_index(name).is_some_and(|i| ctx.nullable[i]);
    let null_scalars = ctx.null_scalars.clone();
    let mut nf = Nullifier::new(&nullable, &null_scalars);
    let mask = ctx.mask(&mut nf, filters)?;
    let mut exprs: Vec<Expr> = vec![];
    let mut outs = vec![];
    let mut extra = vec![];
    for r in roots {
        match r {
            Err(i) => {
                extra.push(*i);
                outs.push(Out::Pass(*i));
            }
            Ok(e) => {
                let (v, m) = nf.split(e)?;
                exprs.push(v);
                let values = exprs.len() - 1;
                let (union, valid) = match m {
                    None => (vec![], None),
                    Some(m) => match bitmap_union(ctx, &m) {
                        Some(cols) => {
                            extra.extend(&cols);
                            (cols, None)
                        }
                        None => {
                            exprs.push(m);
                            (vec![], Some(exprs.len() - 1))
                        }
                    },
                };
                outs.push(Out::Computed {
                    values,
                    union,
                    valid,
                });
            }
        }
    }
    let mask_idx = mask.map(|m| {
        exprs.push(m);
        exprs.len() - 1
    });
    Ok(RowExprs {
        exprs,
        outs,
        extra,
        mask_idx,
    })
}

/// One pass over the rows: `roots` (free of reductions) computed per chunk, the rows the
/// filters keep handed to `sink` as Arrow arrays (at most `limit` rows in all).
fn row_pass(
    ctx: &Ctx<'_>,
    roots: &[Result<Expr, usize>],
    filters: &[Expr],
    limit: Option<usize>,
    sink: &mut dyn FnMut(Vec<ArrayRef>) -> Result<()>,
) -> Result<()> {
    let RowExprs {
        exprs,
        outs,
        extra,
        mask_idx,
    } = row_exprs(ctx, roots, filters)?;
    let session = ctx.t.session.clone();
    let mut left = limit.unwrap_or(usize::MAX);
    let ctx_ref: &Ctx<'_> = ctx;
    let (values_in, valids_in) = inputs_of(ctx_ref, &exprs);
    let mut proj: Vec<usize> = values_in
        .iter()
        .chain(&valids_in)
        .chain(&extra)
        .copied()
        .collect();
    proj.sort_unstable();
    proj.dedup();
    for_each_chunk(ctx_ref, &exprs, &extra, filters, &mut |chunk, bound| {
        let Some(chunk) = chunk else {
            return Ok(true); // no row of a skipped chunk passes the filters
        };
        let pos = |i: usize| proj.iter().position(|&p| p == i).expect("projected");
        let n = chunk.num_rows();
        let computed = if exprs.is_empty() {
            vec![]
        } else {
            session.compute_bound(&exprs, bound, false)?
        };
        let keep = match mask_idx {
            Some(k) => Some(BooleanArray::from(
                broadcast(&computed[k], n)?
                    .into_bool()?
                    .iter()
                    .copied()
                    .collect::<Vec<_>>(),
            )),
            None => None,
        };
        let mut arrays = vec![];
        for o in &outs {
            let a: ArrayRef = match o {
                Out::Pass(i) => chunk.column(pos(*i)).clone(),
                Out::Computed {
                    values,
                    union,
                    valid,
                } => {
                    let mut nb: Option<NullBuffer> = None;
                    for c in union {
                        nb = NullBuffer::union(
                            nb.as_ref(),
                            chunk.column(pos(*c)).logical_nulls().as_ref(),
                        );
                    }
                    if let Some(k) = valid {
                        let v = broadcast(&computed[*k], n)?.into_bool()?;
                        nb = Some(NullBuffer::from(v.iter().copied().collect::<Vec<bool>>()));
                    }
                    to_arrow(&broadcast(&computed[*values], n)?, nb)
                }
            };
            let a = match &keep {
                Some(k) => {
                    arrow_select::filter::filter(&a, k).map_err(|e| table_err(None, None, e))?
                }
                None => a,
            };
            arrays.push(a);
        }
        let kept = arrays.first().map_or(0, |a| a.len());
        let arrays = if kept > left {
            arrays.iter().map(|a| a.slice(0, left)).collect()
        } else {
            arrays
        };
        left -= kept.min(left);
        sink(arrays)?;
        Ok(left > 0)
    })?;
    Ok(())
}

/// `a` as a 1-d array of `n` elements (a scalar repeated; a 1-d array as it is).
fn broadcast(a: &DynArray, n: usize) -> Result<DynArray> {
    if a.ndim() == 1 && a.len() == n {
        return Ok(a.clone());
    }
    if a.len() != 1 {
        return Err(Error::ShapeMismatch {
            lhs: a.shape().to_vec(),
            rhs: vec![n],
        });
    }
    Ok(crate::dispatch!(a, x => ndarray::Array1::from_elem(n, *x.iter().next().unwrap()).into()))
}

/// An Arrow array (of a computable type) as values and validity.
pub(crate) fn from_arrow(a: &dyn Array) -> Result<(DynArray, Option<Vec<bool>>)> {
    let valid = a.logical_nulls().map(|n| n.iter().collect());
    let values: DynArray = match a.data_type() {
        DataType::Boolean => {
            ndarray::Array1::from(a.as_boolean().values().iter().collect::<Vec<_>>()).into()
        }
        DataType::Int32 => {
            ndarray::Array1::from(a.as_primitive::<Int32Type>().values().to_vec()).into()
        }
        DataType::Int64 => {
            ndarray::Array1::from(a.as_primitive::<Int64Type>().values().to_vec()).into()
        }
        DataType::Float32 => {
            ndarray::Array1::from(a.as_primitive::<Float32Type>().values().to_vec()).into()
        }
        DataType::Float64 => {
            ndarray::Array1::from(a.as_primitive::<Float64Type>().values().to_vec()).into()
        }
        t => {
            return Err(Error::UnsupportedDtype {
                dtype: t.to_string(),
                context: "a computed column".into(),
            })
        }
    };
    Ok((values, valid))
}

/// [`Table::compute_many`].
pub(crate) fn compute_many(t: &Table, exprs: &[Expr]) -> Result<Vec<Column>> {
    let mut ctx = Ctx::new(t);
    let filters = ctx.resolve_filters()?;
    let exprs = ctx.eliminate(exprs.to_vec(), &filters)?;
    let mut out: Vec<Option<Column>> = vec![None; exprs.len()];
    // Scalars: computed once.
    let scalar: Vec<usize> = (0..exprs.len())
        .filter(|&i| !ctx.reads_rows(&exprs[i]))
        .collect();
    if !scalar.is_empty() {
        let nullable = |_: &str| false;
        let null_scalars = ctx.null_scalars.clone();
        let mut nf = Nullifier::new(&nullable, &null_scalars);
        let mut es = vec![];
        let mut idx = vec![];
        for &i in &scalar {
            let (v, m) = nf.split(&exprs[i])?;
            es.push(v);
            let vi = es.len() - 1;
            let mi = m.map(|m| {
                es.push(m);
                es.len() - 1
            });
            idx.push((vi, mi));
        }
        let vals = t.session.compute_many(&es)?;
        for (k, &i) in scalar.iter().enumerate() {
            let (vi, mi) = idx[k];
            let values = vals[vi].clone();
            let validity = match mi {
                Some(j) => Some(
                    broadcast(&vals[j], values.len())?
                        .into_bool()?
                        .iter()
                        .copied()
                        .collect(),
                ),
                None => None,
            };
            out[i] = Some(Column { values, validity });
        }
    }
    // Rows: one pass for all of them.
    let rows: Vec<usize> = (0..exprs.len()).filter(|i| !scalar.contains(i)).collect();
    if !rows.is_empty() {
        let roots: Vec<Result<Expr, usize>> = rows.iter().map(|&i| Ok(exprs[i].clone())).collect();
        let mut parts: Vec<Vec<ArrayRef>> = vec![vec![]; rows.len()];
        row_pass(&ctx, &roots, &filters, None, &mut |arrays| {
            for (p, a) in parts.iter_mut().zip(arrays) {
                p.push(a);
            }
            Ok(())
        })?;
        for (k, &i) in rows.iter().enumerate() {
            let dtype = exprs[i].dtype()?;
            let refs: Vec<&dyn Array> = parts[k].iter().map(|a| a.as_ref()).collect();
            let whole = if refs.is_empty() {
                arrow_array::new_empty_array(&super::read::arrow_type(dtype))
            } else {
                arrow_select::concat::concat(&refs).map_err(|e| table_err(None, None, e))?
            };
            let (values, validity) = from_arrow(whole.as_ref())?;
            out[i] = Some(Column { values, validity });
        }
    }
    Ok(out
        .into_iter()
        .map(|c| c.expect("every result computed"))
        .collect())
}

/// The passes [`compute_many`] would run over `exprs`, run by none: each reduction's value is
/// a stand-in (zero) where a later pass uses it, so nothing reads a row.
pub(super) fn explain_passes(t: &Table, exprs: &[Expr]) -> Result<Vec<Pass>> {
    let mut ctx = Ctx::new(t);
    ctx.dry = Some(vec![]);
    let filters = ctx.resolve_filters()?;
    let exprs = ctx.eliminate(exprs.to_vec(), &filters)?;
    let mut once = vec![];
    let mut roots = vec![];
    let nullable = |_: &str| false;
    let null_scalars = ctx.null_scalars.clone();
    let mut nf = Nullifier::new(&nullable, &null_scalars);
    for e in &exprs {
        if ctx.reads_rows(e) {
            roots.push(Ok(e.clone()));
        } else {
            let (v, m) = nf.split(e)?;
            once.push(v);
            once.extend(m);
        }
    }
    let mut passes = ctx.dry.take().unwrap_or_default();
    let (per_chunk, columns) = if roots.is_empty() {
        (vec![], vec![])
    } else {
        let r = row_exprs(&ctx, &roots, &filters)?;
        let (values, valids) = inputs_of(&ctx, &r.exprs);
        let mut columns: Vec<usize> = values.into_iter().chain(valids).chain(r.extra).collect();
        columns.sort_unstable();
        columns.dedup();
        (r.exprs, columns)
    };
    passes.push(Pass {
        reductions: false,
        per_chunk,
        once,
        skip_filters: filters,
        columns,
    });
    Ok(passes)
}

/// The visible columns' kept rows (the first `limit`), chunk by chunk to `sink`; all of them
/// in one record batch.
pub(crate) fn materialize(
    t: &Table,
    limit: Option<usize>,
    sink: &mut dyn FnMut(&RecordBatch) -> Result<()>,
) -> Result<RecordBatch> {
    let schema = output_schema(t)?;
    let mut batches = vec![];
    each_batch(t, limit, &schema, &mut |b| {
        sink(&b)?;
        batches.push(b);
        Ok(())
    })?;
    arrow_select::concat::concat_batches(&schema, batches.iter())
        .map_err(|e| table_err(None, None, e))
}

/// The schema of the visible columns (derived ones typed by their expressions; nullable).
pub(crate) fn output_schema(t: &Table) -> Result<SchemaRef> {
    let src = t.source.schema();
    let fields = t
        .columns
        .iter()
        .map(|c| {
            Ok(match &c.kind {
                ColumnKind::Source(i) => {
                    let f = src.field(*i);
                    Field::new(&c.name, f.data_type().clone(), f.is_nullable())
                }
                ColumnKind::Derived(e) => {
                    Field::new(&c.name, super::read::arrow_type(e.dtype()?), true)
                }
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Arc::new(Schema::new(fields)))
}

/// The visible columns' kept rows, one record batch per chunk, to `sink`.
pub(crate) fn each_batch(
    t: &Table,
    limit: Option<usize>,
    schema: &SchemaRef,
    sink: &mut dyn FnMut(RecordBatch) -> Result<()>,
) -> Result<()> {
    let mut ctx = Ctx::new(t);
    let filters = ctx.resolve_filters()?;
    let derived: Vec<Expr> = t
        .columns
        .iter()
        .filter_map(|c| match &c.kind {
            ColumnKind::Derived(e) => Some(e.clone()),
            ColumnKind::Source(_) => None,
        })
        .collect();
    let mut derived = ctx.eliminate(derived, &filters)?.into_iter();
    let roots: Vec<Result<Expr, usize>> = t
        .columns
        .iter()
        .map(|c| match &c.kind {
            ColumnKind::Source(i) => Err(*i),
            ColumnKind::Derived(_) => Ok(derived.next().expect("one per derived column")),
        })
        .collect();
    row_pass(&ctx, &roots, &filters, limit, &mut |arrays| {
        let b =
            RecordBatch::try_new(schema.clone(), arrays).map_err(|e| table_err(None, None, e))?;
        sink(b)
    })
}

#[cfg(test)]
mod tests {
    use super::unpack;
    use arrow_buffer::BooleanBuffer;

    #[test]
    fn unpack_matches_bit_by_bit_at_every_offset_and_length() {
        let bits: Vec<bool> = (0..300)
            .map(|i| (i * 7919) % 3 == 0 || i % 11 == 0)
            .collect();
        let buf = BooleanBuffer::from(bits.as_slice());
        for offset in 0..17 {
            for len in [0, 1, 7, 8, 9, 64, 100, 283 - offset] {
                let s = buf.slice(offset, len);
                assert_eq!(unpack(&s), bits[offset..offset + len], "{offset} {len}");
            }
        }
    }
}
