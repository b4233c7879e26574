//! The reference evaluator: the oracle every backend is tested against.
//!
//! It evaluates an [`Expr`] the way NumPy does: one operator at a time, each producing a fresh
//! temporary array. Typing reuses the rules the expression layer uses ([`binary_types`],
//! [`where_dtype`], [`UnaryOp::signature`], [`ReduceOp::signature`], NEP 50 weak literals), and
//! every element goes through the scalar definitions in [`crate::semantics`]. Nothing here is
//! clever: no fusion, no SIMD, no reuse of buffers. Being obviously right is the whole point.
//!
//! Reductions reproduce NumPy's order of float operations on C-contiguous operands (see
//! `reduce`), so they match `np.sum`/`np.mean`/`np.std`... bit for bit on the golden fixtures.
//! That includes NumPy's 8192-element buffer chunks when it casts while reducing (`mean`, `var`
//! and `std` of integers and bool), which only matter for more than 8192 values whose float64
//! sums are inexact.
//!
//! Architecture invariant: this module depends only on `expr`, `ops`, `dtype`, `array` and
//! `semantics`; it never sees the optimizer, the kernel IR or a backend.
//!
//! Shapes are re-inferred from the bound arrays (a symbol's declared shape is only a hint), so
//! the same expression can be evaluated on inputs of other shapes; dtypes must match the
//! symbol's declaration.
use crate::array::{broadcast_shapes, DynArray, Element};
use crate::dtype::{check_weak_fits, f16, f16_from_f32, f16_to_f32, DType, Scalar};
use crate::error::{Error, Result};
use crate::expr::{binary_types, reduce_meta, where_dtype, Expr, ExprKind, Meta, ReduceAxes};
use crate::ops::{pow_fast_path, BinaryOp, PowFastPath, ReduceOp, Reduction, UnaryOp};
use crate::semantics;
use crate::view::ViewOp;
use ndarray::{arr0, ArcArray, ArrayD, IxDyn, Zip};
use smallvec::SmallVec;
use std::collections::HashMap;

/// Evaluate `expr` with plain ndarray, one operator at a time, each producing a temporary
/// (what NumPy does). Symbols are looked up in `bindings` (`Error::UnknownName` if absent;
/// the dtype must match the symbol's declared dtype, else `Error::DtypeMismatch`; shapes may differ from
/// the declared ones: they are re-inferred and broadcast with NumPy's rules, and
/// `Error::ShapeMismatch` names both shapes).
///
/// A weak literal at the root is materialized in its default dtype (Python `2.0` -> float64).
pub fn evaluate(expr: &Expr, bindings: &HashMap<String, DynArray>) -> Result<DynArray> {
    // Expressions of any depth evaluate without deep recursion: the distinct nodes are put in
    // post-order by a walk with an explicit stack (a subtree shared by several parents runs
    // once), then run in that order. A value is dropped once its last user has run, so a long
    // chain holds a few temporaries at a time, as NumPy would.
    let order = post_order(expr);
    let mut users = vec![0u32; order.len()];
    for (_, kids) in &order {
        for &k in kids {
            users[k as usize] += 1;
        }
    }
    let mut values: Vec<Option<Value>> = (0..order.len()).map(|_| None).collect();
    for (i, (e, kids)) in order.iter().enumerate() {
        let args = kids
            .iter()
            .map(|&k| {
                values[k as usize].clone().ok_or_else(|| Error::Value {
                    message: "reference: operand evaluated out of order".into(),
                })
            })
            .collect::<Result<SmallVec<[Value; 3]>>>()?;
        values[i] = Some(eval_node(e, &args, bindings)?);
        for &k in kids {
            users[k as usize] -= 1;
            if users[k as usize] == 0 {
                values[k as usize] = None;
            }
        }
    }
    match values.pop().flatten() {
        Some(v) => v.into_array(),
        None => Err(Error::Value {
            message: "reference: root was not evaluated".into(),
        }),
    }
}

/// The distinct nodes under `root` (by identity), each after its operands, with the positions
/// of its operands in source order; `root` is last. Operands are visited last to first.
fn post_order(root: &Expr) -> Vec<(&Expr, SmallVec<[u32; 3]>)> {
    let mut index: HashMap<usize, u32> = HashMap::new();
    let mut order = vec![];
    let mut stack: Vec<(&Expr, bool)> = vec![(root, false)];
    while let Some((e, expanded)) = stack.pop() {
        if expanded {
            // Every operand was pushed after `e` and so has been placed.
            let kids = e.kind().children().map(|c| index[&c.ptr_id()]).collect();
            index.insert(e.ptr_id(), order.len() as u32);
            order.push((e, kids));
        } else if !index.contains_key(&e.ptr_id()) {
            stack.push((e, true));
            stack.extend(e.kind().children().map(|c| (c, false)));
        }
    }
    order
}

/// An evaluated node: a weak literal stays weak until an operator decides its dtype.
#[derive(Clone)]
enum Value {
    Weak(Scalar),
    Array(DynArray),
}

impl Value {
    /// The typing view of this value, as the expression layer's rules expect it.
    fn meta(&self) -> Meta {
        match self {
            Value::Weak(s) => Meta {
                dtype: s.default_dtype(),
                shape: vec![],
                weak: Some(*s),
            },
            Value::Array(a) => Meta {
                dtype: a.dtype(),
                shape: a.shape().to_vec(),
                weak: None,
            },
        }
    }
    /// This value as an array of `dtype`: weak literals are materialized (0-d) after checking
    /// that they fit; arrays are cast.
    fn to_dtype(&self, dtype: DType) -> Result<DynArray> {
        match self {
            Value::Weak(s) => {
                check_weak_fits(*s, dtype)?;
                Ok(materialize(*s, dtype))
            }
            Value::Array(a) => Ok(cast(a, dtype)),
        }
    }
    fn into_array(self) -> Result<DynArray> {
        match self {
            Value::Weak(s) => Ok(materialize(s, s.default_dtype())),
            Value::Array(a) => Ok(a),
        }
    }
}

/// One node, given the values of its operands (`args`, in source order).
fn eval_node(e: &Expr, args: &[Value], bindings: &HashMap<String, DynArray>) -> Result<Value> {
    let arg = |i: usize| -> Result<Value> {
        args.get(i).cloned().ok_or_else(|| Error::Value {
            message: "reference: missing operand".into(),
        })
    };
    Ok(match e.kind() {
        ExprKind::Symbol(name) => {
            let declared = e.meta()?.dtype;
            let a = bindings.get(name).ok_or_else(|| Error::UnknownName {
                name: name.clone(),
                known: {
                    let mut known: Vec<String> = bindings.keys().cloned().collect();
                    known.sort();
                    known
                },
            })?;
            if a.dtype() != declared {
                return Err(Error::DtypeMismatch {
                    name: name.clone(),
                    expected: declared,
                    found: a.dtype(),
                });
            }
            Value::Array(a.clone())
        }
        ExprKind::Data { array, .. } => Value::Array(array.clone()),
        ExprKind::Literal(s) => Value::Weak(*s),
        ExprKind::Unary(op, _) => {
            let x = arg(0)?;
            if let Value::Weak(_) = x {
                // `Expr::unary` folds weak operands; a node left unfolded carries the error.
                e.meta()?;
            }
            let m = x.meta();
            let (compute, _result) = op.signature(m.dtype)?;
            Value::Array(unary(*op, &x.to_dtype(compute)?)?)
        }
        ExprKind::Binary(op, _, _) => {
            let (a, b) = (arg(0)?, arg(1)?);
            if let (Value::Weak(_), Value::Weak(_)) = (&a, &b) {
                e.meta()?; // as for unary: two weak operands fold unless that fails
            }
            let (compute, _result) = binary_types(*op, &a.meta(), &b.meta())?;
            // NumPy computes float_array ** 1, 2, 0.5, -1 with other ufuncs.
            if let (BinaryOp::Pow, Value::Array(x), Value::Weak(s)) = (op, &a, &b) {
                if let (true, Some(path)) = (compute.is_float(), pow_fast_path(*s)) {
                    let x = cast(x, compute);
                    return Ok(Value::Array(match path {
                        PowFastPath::Identity => x,
                        PowFastPath::Square => binary(BinaryOp::Mul, &x, &x)?,
                        PowFastPath::Sqrt => unary(UnaryOp::Sqrt, &x)?,
                        PowFastPath::Reciprocal => {
                            binary(BinaryOp::Div, &materialize(Scalar::Float(1.0), compute), &x)?
                        }
                    }));
                }
            }
            Value::Array(binary(*op, &a.to_dtype(compute)?, &b.to_dtype(compute)?)?)
        }
        ExprKind::Where(..) => {
            let (c, a, b) = (arg(0)?, arg(1)?, arg(2)?);
            let dtype = where_dtype(&a.meta(), &b.meta())?;
            let c = match c {
                Value::Weak(s) => materialize(s, DType::Bool),
                Value::Array(arr) => cast(&arr, DType::Bool),
            };
            Value::Array(select(&c, &a.to_dtype(dtype)?, &b.to_dtype(dtype)?)?)
        }
        ExprKind::Cast(dtype, _) => {
            let x = arg(0)?.into_array()?;
            Value::Array(cast(&x, *dtype))
        }
        ExprKind::Reduce(r, _, spec) => {
            // A weak literal reduces as a 0-d array of its default dtype.
            let x = arg(0)?.into_array()?;
            Value::Array(reduction(*r, &x, spec)?)
        }
        ExprKind::View(op, _) => {
            // A weak literal is viewed as a 0-d array of its default dtype.
            let x = arg(0)?.into_array()?;
            Value::Array(view(op, &x)?)
        }
    })
}

/// A shape operation, with ndarray's own operations (the result shape and NumPy's errors come
/// from [`ViewOp::resolve`]; the elements are found here independently of its strides).
fn view(op: &ViewOp, x: &DynArray) -> Result<DynArray> {
    let (_, out) = op.resolve(x.shape())?;
    let ndim = x.ndim();
    let axis = |a: isize| (if a < 0 { a + ndim as isize } else { a }) as usize;
    Ok(crate::dispatch!(x, a => {
        let r: ArrayD<_> = match op {
            ViewOp::Permute(None) => a.view().reversed_axes().to_owned(),
            ViewOp::Permute(Some(p)) => {
                let p: Vec<usize> = p.iter().map(|&d| axis(d)).collect();
                a.view().permuted_axes(IxDyn(&p)).to_owned()
            }
            // These keep the elements in C order: only the shape changes.
            ViewOp::Reshape(_) | ViewOp::ExpandDims(_) | ViewOp::Squeeze(_) => {
                ArrayD::from_shape_vec(IxDyn(&out), a.iter().cloned().collect())?
            }
            ViewOp::BroadcastTo(s) => match a.broadcast(IxDyn(s)) {
                Some(b) => b.to_owned(),
                None => return Err(Error::ShapeMismatch { lhs: a.shape().to_vec(), rhs: s.clone() }),
            },
            ViewOp::Slice(specs) => {
                let mut r = a.to_owned();
                for (d, spec) in specs.iter().enumerate() {
                    let (first, step, len) = spec.indices(r.shape()[d])?;
                    let idx: Vec<usize> = (0..len)
                        .map(|k| (first as isize + k as isize * step) as usize)
                        .collect();
                    r = r.select(ndarray::Axis(d), &idx);
                }
                r
            }
        };
        r.into()
    }))
}

// ---- dtype conversions --------------------------------------------------------------------

/// A weak scalar as a 0-d array of `dtype` (the caller has checked that it fits).
fn materialize(s: Scalar, dtype: DType) -> DynArray {
    let a: DynArray = match s {
        Scalar::Bool(b) => arr0(b).into(),
        Scalar::Int(i) => arr0(i).into(),
        Scalar::Float(f) => arr0(f).into(),
    };
    cast(&a, dtype)
}

/// NumPy's `astype` (unsafe casting), element by element; see `semantics::cast` for the rules.
fn cast(a: &DynArray, to: DType) -> DynArray {
    fn go<T: Element>(a: &DynArray) -> DynArray {
        crate::dispatch!(a, x => x
            .map(|&v| T::from_const(semantics::cast(v.to_const(), T::DTYPE)))
            .into())
    }
    if a.dtype() == to {
        return a.clone();
    }
    crate::with_dtype!(to, T => go::<T>(a))
}

// ---- element-wise application --------------------------------------------------------------

fn typed<T: Element>(a: &DynArray) -> Result<&ArcArray<T, IxDyn>> {
    a.as_array::<T>()
}

/// Apply `f` to every element (the operand is already in the compute dtype).
fn map1<T: Element, R: Element>(a: &DynArray, f: impl Fn(T) -> R) -> Result<DynArray> {
    Ok(typed::<T>(a)?.map(|&x| f(x)).into())
}

/// Apply `f` to pairs of elements of `a` and `b` broadcast together (NumPy's rules).
fn map2<T: Element, R: Element>(
    a: &DynArray,
    b: &DynArray,
    f: impl Fn(T, T) -> R,
) -> Result<DynArray> {
    let (a, b) = (typed::<T>(a)?, typed::<T>(b)?);
    let shape = broadcast_shapes(a.shape(), b.shape())?;
    let (va, vb) = (broadcast_view(a, &shape)?, broadcast_view(b, &shape)?);
    let out: ArrayD<R> = Zip::from(&va).and(&vb).map_collect(|&x, &y| f(x, y));
    Ok(out.into())
}

fn broadcast_view<'a, T: Element>(
    a: &'a ArcArray<T, IxDyn>,
    shape: &[usize],
) -> Result<ndarray::ArrayViewD<'a, T>> {
    a.broadcast(IxDyn(shape))
        .ok_or_else(|| Error::ShapeMismatch {
            lhs: a.shape().to_vec(),
            rhs: shape.to_vec(),
        })
}

fn unary(op: UnaryOp, x: &DynArray) -> Result<DynArray> {
    match x.dtype() {
        DType::Bool => map1(x, |v: bool| semantics::unary_bool(op, v)),
        DType::I32 => map1(x, |v: i32| semantics::unary_i32(op, v)),
        DType::I64 => map1(x, |v: i64| semantics::unary_i64(op, v)),
        DType::I8 => map1(x, |v: i8| semantics::unary_i8(op, v)),
        DType::I16 => map1(x, |v: i16| semantics::unary_i16(op, v)),
        DType::U8 => map1(x, |v: u8| semantics::unary_u8(op, v)),
        DType::U16 => map1(x, |v: u16| semantics::unary_u16(op, v)),
        DType::U32 => map1(x, |v: u32| semantics::unary_u32(op, v)),
        DType::U64 => map1(x, |v: u64| semantics::unary_u64(op, v)),
        DType::F16 => map1(x, |v: f16| semantics::unary_f16(op, v)),
        DType::F32 => map1(x, |v: f32| semantics::unary_f32(op, v)),
        DType::F64 => map1(x, |v: f64| semantics::unary_f64(op, v)),
    }
}

/// `a` and `b` are both in the compute dtype.
fn binary(op: BinaryOp, a: &DynArray, b: &DynArray) -> Result<DynArray> {
    if op.is_comparison() {
        return match a.dtype() {
            DType::Bool => map2(a, b, |x: bool, y| semantics::compare(op, x, y)),
            DType::I32 => map2(a, b, |x: i32, y| semantics::compare(op, x, y)),
            DType::I64 => map2(a, b, |x: i64, y| semantics::compare(op, x, y)),
            DType::I8 => map2(a, b, |x: i8, y| semantics::compare(op, x, y)),
            DType::I16 => map2(a, b, |x: i16, y| semantics::compare(op, x, y)),
            DType::U8 => map2(a, b, |x: u8, y| semantics::compare(op, x, y)),
            DType::U16 => map2(a, b, |x: u16, y| semantics::compare(op, x, y)),
            DType::U32 => map2(a, b, |x: u32, y| semantics::compare(op, x, y)),
            DType::U64 => map2(a, b, |x: u64, y| semantics::compare(op, x, y)),
            DType::F16 => map2(a, b, |x: f16, y| {
                semantics::compare(op, f16_to_f32(x), f16_to_f32(y))
            }),
            DType::F32 => map2(a, b, |x: f32, y| semantics::compare(op, x, y)),
            DType::F64 => map2(a, b, |x: f64, y| semantics::compare(op, x, y)),
        };
    }
    match a.dtype() {
        DType::Bool => map2(a, b, |x: bool, y| semantics::binary_bool(op, x, y)),
        DType::I32 => map2(a, b, |x: i32, y| semantics::binary_i32(op, x, y)),
        DType::I64 => map2(a, b, |x: i64, y| semantics::binary_i64(op, x, y)),
        DType::I8 => map2(a, b, |x: i8, y| semantics::binary_i8(op, x, y)),
        DType::I16 => map2(a, b, |x: i16, y| semantics::binary_i16(op, x, y)),
        DType::U8 => map2(a, b, |x: u8, y| semantics::binary_u8(op, x, y)),
        DType::U16 => map2(a, b, |x: u16, y| semantics::binary_u16(op, x, y)),
        DType::U32 => map2(a, b, |x: u32, y| semantics::binary_u32(op, x, y)),
        DType::U64 => map2(a, b, |x: u64, y| semantics::binary_u64(op, x, y)),
        DType::F16 => map2(a, b, |x: f16, y| semantics::binary_f16(op, x, y)),
        DType::F32 => map2(a, b, |x: f32, y| semantics::binary_f32(op, x, y)),
        DType::F64 => map2(a, b, |x: f64, y| semantics::binary_f64(op, x, y)),
    }
}

/// `where(c, a, b)`: `c` is bool; `a` and `b` are in the result dtype.
fn select(c: &DynArray, a: &DynArray, b: &DynArray) -> Result<DynArray> {
    fn go<T: Element>(c: &DynArray, a: &DynArray, b: &DynArray) -> Result<DynArray> {
        let (c, a, b) = (typed::<bool>(c)?, typed::<T>(a)?, typed::<T>(b)?);
        let shape = broadcast_shapes(&broadcast_shapes(c.shape(), a.shape())?, b.shape())?;
        let (vc, va, vb) = (
            broadcast_view(c, &shape)?,
            broadcast_view(a, &shape)?,
            broadcast_view(b, &shape)?,
        );
        let out: ArrayD<T> = Zip::from(&vc)
            .and(&va)
            .and(&vb)
            .map_collect(|&c, &x, &y| if c { x } else { y });
        Ok(out.into())
    }
    match a.dtype() {
        DType::Bool => go::<bool>(c, a, b),
        DType::I32 => go::<i32>(c, a, b),
        DType::I64 => go::<i64>(c, a, b),
        DType::I8 => go::<i8>(c, a, b),
        DType::I16 => go::<i16>(c, a, b),
        DType::U8 => go::<u8>(c, a, b),
        DType::U16 => go::<u16>(c, a, b),
        DType::U32 => go::<u32>(c, a, b),
        DType::U64 => go::<u64>(c, a, b),
        DType::F16 => go::<f16>(c, a, b),
        DType::F32 => go::<f32>(c, a, b),
        DType::F64 => go::<f64>(c, a, b),
    }
}

// ---- reductions -----------------------------------------------------------------------------

/// NumPy's `np.sum(x, axis=..., keepdims=...)` and friends. `mean`, `var` and `std` follow
/// `_mean` and `_var` in `numpy/_core/_methods.py` step by step, each step one NumPy operation:
/// `mean = sum(x) / n`; `var = sum((x - sum(x, keepdims=True) / n) ** 2) / max(n - ddof, 0)`,
/// summing bool and integers in float64; `std = sqrt(var)`.
fn reduction(r: Reduction, x: &DynArray, spec: &ReduceAxes) -> Result<DynArray> {
    // Axis errors and `max` of an empty array: NumPy's messages.
    let (_, _, axes) = reduce_meta(r, x.dtype(), x.shape(), spec)?;
    let count: usize = axes.iter().map(|&d| x.shape()[d]).product();
    let float_t = if x.dtype().is_float() {
        x.dtype()
    } else {
        DType::F64 // `dtype='f8'` for bool and integers
    };
    // `_mean` sums float16 with `dtype='f4'` (through the buffer) and rounds the mean to
    // float16 at the end; `_var` computes in float16 itself.
    let mean_t = if x.dtype() == DType::F16 {
        DType::F32
    } else {
        float_t
    };
    // `np.sum(ints, dtype='f8')` casts through NumPy's buffer, one chunk at a time.
    let chunk = if x.dtype() == float_t {
        NO_BUFFER
    } else {
        BUFSIZE
    };
    match r {
        Reduction::Op(op) => reduce(op, x, &axes, spec.keepdims, NO_BUFFER),
        Reduction::Mean => {
            let chunk = if x.dtype() == mean_t {
                NO_BUFFER
            } else {
                BUFSIZE
            };
            let s = reduce(ReduceOp::Sum, &cast(x, mean_t), &axes, spec.keepdims, chunk)?;
            Ok(cast(&divide_by_count(&s, count)?, float_t))
        }
        Reduction::Var { ddof } | Reduction::Std { ddof } => {
            let s = reduce(ReduceOp::Sum, &cast(x, float_t), &axes, true, chunk)?;
            let xf = cast(x, float_t);
            let mean = divide_by_count(&s, count)?;
            let dev = binary(BinaryOp::Sub, &xf, &mean)?;
            let sq = binary(BinaryOp::Mul, &dev, &dev)?;
            let ss = reduce(ReduceOp::Sum, &sq, &axes, spec.keepdims, NO_BUFFER)?;
            let var = divide_by_count(&ss, count.saturating_sub(ddof as usize))?;
            match r {
                Reduction::Std { .. } => unary(UnaryOp::Sqrt, &var),
                _ => Ok(var),
            }
        }
    }
}

/// `s / count` as NumPy's `true_divide(s, np.intp(count))`: the count is a strong int64, so the
/// division runs in float64 and a float32 `s` gets a float32 result rounded from it.
fn divide_by_count(s: &DynArray, count: usize) -> Result<DynArray> {
    let n = materialize(Scalar::Float(count as f64), DType::F64);
    let q = binary(BinaryOp::Div, &cast(s, DType::F64), &n)?;
    Ok(cast(&q, s.dtype()))
}

/// `op` over the sorted, distinct `axes` of `x` (cast first to the operand dtype of
/// [`ReduceOp::signature`]); `keepdims` keeps them as length-1 axes.
///
/// The order of float operations is NumPy's on a C-contiguous operand: the output starts at the
/// identity (`sum`: `0.0`, so `sum([-0.0])` is `0.0`) and NumPy's inner loop runs over the
/// trailing reduced axes, which coalesce into one contiguous run that `sum` adds pairwise;
/// the runs are combined in C order (length-1 axes do not count: NumPy drops them). When the
/// last axis is kept the inner loop is element-wise, so e.g. `sum(axis=0)` of a matrix adds the rows one after another. `prod`
/// multiplies in C order; `min`/`max` start from the first element and combine with
/// `maximum`/`minimum` (NaN wins; on ties the later element, as `semantics` measured).
///
/// `chunk`: NumPy sums a cast operand through its buffer of [`BUFSIZE`] elements, so the inner
/// run is added pairwise `chunk` elements at a time ([`NO_BUFFER`]: in one piece).
fn reduce(
    op: ReduceOp,
    x: &DynArray,
    axes: &[usize],
    keepdims: bool,
    chunk: usize,
) -> Result<DynArray> {
    let (compute, _result) = op.signature(x.dtype())?;
    let x = cast(x, compute);
    let shape = ReduceAxes {
        axes: None,
        keepdims,
    }
    .result_shape(x.shape(), axes);
    use ReduceOp::*;
    if let Some(ext) = binary_ext(op) {
        // `min`/`max` through the scalar definition of `minimum`/`maximum` of each dtype.
        return crate::dispatch!(&x, a => fold(a, axes, &shape, |g, _| {
            first_then(op, g, |a, b| {
                let r = semantics::fold_binary(ext, a.to_const(), b.to_const());
                Element::from_const(r.unwrap_or(a.to_const()))
            })
        }));
    }
    match (op, &x) {
        (Sum, DynArray::F64(a)) => fold(a, axes, &shape, |g, run| {
            let runs = g.chunks(run).flat_map(|r| r.chunks(chunk));
            Ok(runs.fold(0.0, |s, c| s + pairwise_sum_f64(c)))
        }),
        (Sum, DynArray::F32(a)) => fold(a, axes, &shape, |g, run| {
            let runs = g.chunks(run).flat_map(|r| r.chunks(chunk));
            Ok(runs.fold(0.0, |s, c| s + pairwise_sum_f32(c)))
        }),
        (Sum, DynArray::I64(a)) => fold(a, axes, &shape, |g, _| {
            Ok(g.iter().fold(0i64, |s, &v| s.wrapping_add(v)))
        }),
        (Sum, DynArray::U64(a)) => fold(a, axes, &shape, |g, _| {
            Ok(g.iter().fold(0u64, |s, &v| s.wrapping_add(v)))
        }),
        // NumPy's float16 loops accumulate each inner run in float32 (`sum` pairwise) and
        // round the output to float16 after every run.
        (Sum, DynArray::F16(a)) => fold(a, axes, &shape, |g, run| {
            let runs = g.chunks(run).flat_map(|r| r.chunks(chunk));
            Ok(runs.fold(f16::ZERO, |s, c| {
                let wide: Vec<f32> = c.iter().map(|&v| f16_to_f32(v)).collect();
                f16_from_f32(f16_to_f32(s) + pairwise_sum_f32(&wide))
            }))
        }),
        (Prod, DynArray::F16(a)) => fold(a, axes, &shape, |g, run| {
            Ok(g.chunks(run).fold(f16::ONE, |p, c| {
                let run = c.iter().fold(f16_to_f32(p), |p, &v| p * f16_to_f32(v));
                f16_from_f32(run)
            }))
        }),
        (Prod, DynArray::F64(a)) => fold(a, axes, &shape, |g, _| {
            Ok(g.iter().fold(1.0, |p, &v| p * v))
        }),
        (Prod, DynArray::F32(a)) => fold(a, axes, &shape, |g, _| {
            Ok(g.iter().fold(1.0, |p, &v| p * v))
        }),
        (Prod, DynArray::I64(a)) => fold(a, axes, &shape, |g, _| {
            Ok(g.iter().fold(1i64, |p, &v| p.wrapping_mul(v)))
        }),
        (Prod, DynArray::U64(a)) => fold(a, axes, &shape, |g, _| {
            Ok(g.iter().fold(1u64, |p, &v| p.wrapping_mul(v)))
        }),
        (Any, DynArray::Bool(a)) => fold(a, axes, &shape, |g, _| Ok(g.iter().any(|&v| v))),
        (All, DynArray::Bool(a)) => fold(a, axes, &shape, |g, _| Ok(g.iter().all(|&v| v))),
        (ArgMin | ArgMax, x) => {
            let max = op == ArgMax;
            match x {
                DynArray::Bool(a) => fold(a, axes, &shape, |g, _| arg_best(op, g, max)),
                DynArray::I32(a) => fold(a, axes, &shape, |g, _| arg_best(op, g, max)),
                DynArray::I64(a) => fold(a, axes, &shape, |g, _| arg_best(op, g, max)),
                DynArray::I8(a) => fold(a, axes, &shape, |g, _| arg_best(op, g, max)),
                DynArray::I16(a) => fold(a, axes, &shape, |g, _| arg_best(op, g, max)),
                DynArray::U8(a) => fold(a, axes, &shape, |g, _| arg_best(op, g, max)),
                DynArray::U16(a) => fold(a, axes, &shape, |g, _| arg_best(op, g, max)),
                DynArray::U32(a) => fold(a, axes, &shape, |g, _| arg_best(op, g, max)),
                DynArray::U64(a) => fold(a, axes, &shape, |g, _| arg_best(op, g, max)),
                DynArray::F16(a) => fold(a, axes, &shape, |g, _| arg_best(op, g, max)),
                DynArray::F32(a) => fold(a, axes, &shape, |g, _| arg_best(op, g, max)),
                DynArray::F64(a) => fold(a, axes, &shape, |g, _| arg_best(op, g, max)),
            }
        }
        (op, x) => Err(Error::OperandType {
            op: op.name().into(),
            dtype: x.dtype(),
            reason: "the reference evaluator does not compute it".into(),
        }),
    }
}

/// NumPy's default buffer size (`np.getbufsize()`), in elements.
const BUFSIZE: usize = 8192;
/// No buffering: the whole inner run in one piece.
const NO_BUFFER: usize = usize::MAX;

/// The element-wise operator `min`/`max` combine with.
fn binary_ext(op: ReduceOp) -> Option<BinaryOp> {
    match op {
        ReduceOp::Min => Some(BinaryOp::Minimum),
        ReduceOp::Max => Some(BinaryOp::Maximum),
        _ => None,
    }
}

fn empty_error(op: ReduceOp) -> Error {
    Error::EmptyReduction {
        op: op.name().into(),
    }
}

/// The first element combined with each later one in order (reductions without identity).
fn first_then<T: Copy>(op: ReduceOp, g: &[T], f: impl Fn(T, T) -> T) -> Result<T> {
    let (&first, rest) = g.split_first().ok_or_else(|| empty_error(op))?;
    Ok(rest.iter().fold(first, |acc, &v| f(acc, v)))
}

/// Position of the first largest (`max`) or smallest element; a NaN beats everything and the
/// first NaN wins (`v != v` is true only for NaN).
#[allow(clippy::eq_op)]
fn arg_best<T: Copy + PartialOrd>(op: ReduceOp, g: &[T], max: bool) -> Result<i64> {
    let mut best: Option<(usize, T)> = None;
    for (i, &v) in g.iter().enumerate() {
        best = Some(match best {
            None => (i, v),
            Some((bi, b)) => {
                let better = if max { v > b } else { v < b };
                if b == b && (v != v || better) {
                    (i, v)
                } else {
                    (bi, b)
                }
            }
        });
    }
    match best {
        Some((i, _)) => Ok(i as i64),
        None => Err(Error::EmptyReduction {
            op: op.name().into(),
        }),
    }
}

/// Apply `f` to each output position's elements: the elements of `a` whose kept-axis indices
/// give that position (positions in C order over the kept axes), in C order over the reduced
/// axes, with the length of NumPy's inner run (the product of the trailing reduced axes, at
/// least 1). The results fill an array of `shape`.
fn fold<T: Element, R: Element>(
    a: &ArcArray<T, IxDyn>,
    axes: &[usize],
    shape: &[usize],
    f: impl Fn(&[T], usize) -> Result<R>,
) -> Result<DynArray> {
    let dims = a.shape();
    let kept_n: usize = (0..dims.len())
        .filter(|d| !axes.contains(d))
        .map(|d| dims[d])
        .product();
    let mut groups: Vec<Vec<T>> = vec![Vec::new(); kept_n];
    if kept_n == 1 {
        // One output (every axis of extent > 1 reduced): all elements in C order.
        groups[0] = a.iter().copied().collect();
    } else {
        let reduced: Vec<bool> = (0..dims.len()).map(|d| axes.contains(&d)).collect();
        // `iter` visits elements in C order; `ix` counts along with it.
        let mut ix = vec![0usize; dims.len()];
        for &v in a.iter() {
            let mut k = 0;
            for (d, &n) in dims.iter().enumerate() {
                if !reduced[d] {
                    k = k * n + ix[d];
                }
            }
            groups[k].push(v);
            for d in (0..dims.len()).rev() {
                ix[d] += 1;
                if ix[d] < dims[d] {
                    break;
                }
                ix[d] = 0;
            }
        }
    }
    // NumPy's iterator drops length-1 axes before it picks the inner loop.
    let mut run = 1;
    for d in (0..dims.len()).rev() {
        if dims[d] == 1 {
            continue;
        }
        if !axes.contains(&d) {
            break;
        }
        run *= dims[d];
    }
    let run = run.max(1);
    let vals = groups
        .iter()
        .map(|g| f(g, run))
        .collect::<Result<Vec<R>>>()?;
    let out = ArrayD::from_shape_vec(IxDyn(shape), vals).map_err(|e| Error::Value {
        message: format!("reference: reduction result shape: {e}"),
    })?;
    Ok(out.into())
}

macro_rules! pairwise_sum {
    ($name:ident, $t:ty) => {
        /// NumPy's pairwise summation (`pairwise_sum` in
        /// `numpy/_core/src/umath/loops_utils.h.src`): fewer than 8 elements are added in
        /// order starting from -0.0; up to 128 use 8 interleaved accumulators combined as
        /// `((r0+r1)+(r2+r3))+((r4+r5)+(r6+r7))` then the tail in order; longer runs split at
        /// half the length rounded down to a multiple of 8.
        pub fn $name(a: &[$t]) -> $t {
            let n = a.len();
            if n < 8 {
                let mut res: $t = -0.0;
                for &x in a {
                    res += x;
                }
                res
            } else if n <= 128 {
                let mut r = [0.0 as $t; 8];
                r.copy_from_slice(&a[..8]);
                let mut i = 8;
                while i < n - n % 8 {
                    for j in 0..8 {
                        r[j] += a[i + j];
                    }
                    i += 8;
                }
                let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
                for &x in &a[i..] {
                    res += x;
                }
                res
            } else {
                let mut n2 = n / 2;
                n2 -= n2 % 8;
                $name(&a[..n2]) + $name(&a[n2..])
            }
        }
    };
}
pairwise_sum!(pairwise_sum_f64, f64);
pairwise_sum!(pairwise_sum_f32, f32);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::where_;
    use ndarray::{arr1, arr2, s, Array1};

    fn eval(e: &Expr) -> Result<DynArray> {
        evaluate(e, &HashMap::new())
    }

    #[test]
    fn weak_literal_keeps_float32_and_broadcasts() {
        let a = Expr::data(arr2(&[[1.5f32], [-2.0]]), Some("a"));
        let b = Expr::data(arr1(&[10.0f32, 20.0, 30.0]), Some("b"));
        let r = eval(&(&a * 2.0 + &b)).unwrap();
        assert_eq!(
            r.into_f32().unwrap(),
            arr2(&[[13.0f32, 23.0, 33.0], [6.0, 16.0, 26.0]]).into_dyn()
        );
    }

    #[test]
    fn mixed_int32_float32_computes_in_float64() {
        let i = Expr::data(arr1(&[16777217i32, -3]), Some("i"));
        let f = Expr::data(arr1(&[0.5f32, 0.25]), Some("f"));
        let r = eval(&(&i + &f)).unwrap();
        // float32 could not hold 16777217; float64 can.
        assert_eq!(r.into_f64().unwrap(), arr1(&[16777217.5, -2.75]).into_dyn());
        let q = eval(&(&i / 2)).unwrap();
        assert_eq!(q.into_f64().unwrap(), arr1(&[8388608.5, -1.5]).into_dyn());
    }

    #[test]
    fn integer_edge_cases_and_where_on_strided_input() {
        let base = arr1(&[100i32, 7, 100, i32::MIN, 100, -7]).into_shared();
        // Every other element, reversed: [-7, MIN, 7] with stride -2.
        let x = Expr::data(base.slice(s![..;-2]).to_shared(), Some("x"));
        let x_strided = Expr::data(base.clone().slice_move(s![..;-2]), Some("xs"));
        for x in [x, x_strided] {
            let d = Expr::data(arr1(&[2i32, -1, 0]), Some("d"));
            let r = eval(&x.floor_div(&d)).unwrap().into_i32().unwrap();
            assert_eq!(r, arr1(&[-4, i32::MIN, 0]).into_dyn());
            let r = eval(&(&x % &d)).unwrap().into_i32().unwrap();
            assert_eq!(r, arr1(&[1, 0, 0]).into_dyn());
            // Non-bool condition: `!= 0`.
            let w = eval(&where_(&d, &x, -1.5)).unwrap().into_f64().unwrap();
            assert_eq!(w, arr1(&[-7.0, i32::MIN as f64, -1.5]).into_dyn());
        }
    }

    #[test]
    fn casts_follow_numpy_on_x86_64() {
        let f = Expr::data(arr1(&[f64::NAN, 1e300, -2.7, 2.5, -0.0]), Some("f"));
        let r = eval(&f.astype(DType::I32)).unwrap().into_i32().unwrap();
        assert_eq!(r, arr1(&[i32::MIN, i32::MIN, -2, 2, 0]).into_dyn());
        let b = eval(&f.astype(DType::Bool)).unwrap().into_bool().unwrap();
        assert_eq!(b, arr1(&[true, true, true, true, false]).into_dyn());
        let w = Expr::data(arr1(&[4294967297i64 + 5]), None);
        let r = eval(&w.astype(DType::I32)).unwrap().into_i32().unwrap();
        assert_eq!(r, arr1(&[6]).into_dyn());
    }

    #[test]
    fn sum_is_numpy_pairwise_and_ints_use_int64() {
        // 0.1 summed 1000 times: NumPy's pairwise result differs from a naive loop.
        let v = Array1::from_elem(1000, 0.1f64);
        let naive: f64 = v.iter().fold(0.0, |s, &x| s + x);
        let r = eval(&Expr::data(v, None).sum())
            .unwrap()
            .scalar_f64()
            .unwrap();
        assert_eq!(r, 100.00000000000001); // np.full(1000, 0.1).sum()
        assert_ne!(r, naive);
        let neg_zero = eval(&Expr::data(arr1(&[-0.0f64]), None).sum()).unwrap();
        assert!(neg_zero.scalar_f64().unwrap().is_sign_positive()); // np.sum([-0.0]) == 0.0
        let i = Expr::data(arr1(&[i32::MAX, i32::MAX]), None).sum();
        let r = eval(&i).unwrap().into_i64().unwrap();
        assert_eq!(r, arr0(2 * i32::MAX as i64).into_dyn());
        let empty = eval(&Expr::data(Array1::<f32>::zeros(0), None).sum()).unwrap();
        assert_eq!(empty.into_f32().unwrap(), arr0(0.0f32).into_dyn());
    }

    /// Values NumPy 2.4 printed for the same calls.
    #[test]
    fn reductions_follow_numpy_order_and_rules() {
        use crate::ops::Reduction::{Mean, Op, Std, Var};
        let red = |x: &Expr, r, axes: Option<&[isize]>, keepdims| {
            eval(&x.reduce(r, axes, keepdims)).unwrap()
        };
        // Pairwise (8 accumulators) gives 6.0; adding in order gives 0.0. NumPy adds pairwise
        // along the contiguous reduced run, length-1 axes ignored, and in order across rows.
        let v = [1e16, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, -1e16];
        let col = Expr::data(
            Array1::from(v.to_vec())
                .into_shape_with_order((9, 1))
                .unwrap(),
            None,
        );
        let row = Expr::data(
            Array1::from(v.to_vec())
                .into_shape_with_order((1, 9))
                .unwrap(),
            None,
        );
        let sum = Op(ReduceOp::Sum);
        assert_eq!(
            red(&col, sum, Some(&[0]), false),
            DynArray::from(arr1(&[6.0]))
        );
        assert_eq!(
            red(&row, sum, Some(&[-1]), false),
            DynArray::from(arr1(&[6.0]))
        );
        let rows = Expr::data(ndarray::Array2::from_shape_fn((9, 2), |(i, _)| v[i]), None);
        assert_eq!(
            red(&rows, sum, Some(&[0]), false),
            DynArray::from(arr1(&[0.0, 0.0]))
        );
        // NaN wins and the first NaN's position is the arg result.
        let nan = f64::NAN;
        let m = Expr::data(arr2(&[[1.0, nan, 3.0, nan], [2.0, 5.0, 5.0, -1.0]]), None);
        let am = red(&m, Op(ReduceOp::ArgMax), Some(&[1]), false);
        assert_eq!(am, DynArray::from(arr1(&[1i64, 1])));
        let am = red(&m, Op(ReduceOp::ArgMin), Some(&[0]), true);
        assert_eq!(am, DynArray::from(arr2(&[[0i64, 0, 0, 0]])));
        assert_eq!(
            red(&m, Op(ReduceOp::ArgMax), None, false),
            DynArray::from(arr0(1i64))
        );
        let mx = red(&m, Op(ReduceOp::Max), Some(&[1]), false)
            .into_f64()
            .unwrap();
        assert!(mx[0].is_nan() && mx[1] == 5.0);
        // Integers: float64 statistics; wrapping int64 products.
        let i = Expr::data(arr2(&[[1i32, 2, 3], [4, 5, 7]]), None);
        let var = red(&i, Var { ddof: 1 }, Some(&[1]), false)
            .into_f64()
            .unwrap();
        assert_eq!(var, arr1(&[1.0, 2.333333333333333]).into_dyn());
        assert_eq!(
            red(&i, Std { ddof: 0 }, None, false).scalar_f64(),
            Some(1.9720265943665387)
        );
        let mean = red(&i, Mean, Some(&[0]), true);
        assert_eq!(mean, DynArray::from(arr2(&[[2.5, 3.5, 5.0]])));
        let p = Expr::data(arr1(&[1i64 << 62, 4]), None).prod();
        assert_eq!(eval(&p).unwrap(), DynArray::from(arr0(0i64)));
        // Empty: the identity where the reduced extent is 0, an empty result where the kept
        // extent is 0, NumPy's error for `max` of nothing.
        let z = Expr::data(ndarray::Array2::<f64>::zeros((2, 0)), None);
        assert_eq!(
            red(&z, sum, Some(&[1]), false),
            DynArray::from(arr1(&[0.0, 0.0]))
        );
        let zi = Expr::data(ndarray::Array2::<i32>::zeros((0, 2)), None);
        let p = red(&zi, Op(ReduceOp::Prod), Some(&[0]), false);
        assert_eq!(p, DynArray::from(arr1(&[1i64, 1])));
        let e = red(&zi, Op(ReduceOp::Max), Some(&[1]), false);
        assert_eq!(e.shape(), &[0]);
        let m = Mean;
        assert!(red(&z, m, None, false).scalar_f64().unwrap().is_nan());
        // NumPy names the ufunc (`maximum`); `expr::reduce_meta` names the reduction.
        match eval(&zi.max()) {
            Err(e @ Error::EmptyReduction { .. }) => assert_eq!(
                e.to_string(),
                "value error: zero-size array to reduction operation maximum which has no identity"
            ),
            other => panic!("{other:?}"),
        }
        // `axis=()` reduces nothing, starting from the identity: -0.0 sums to 0.0.
        let nz = Expr::data(arr1(&[-0.0, 1.0]), None);
        let s = red(&nz, sum, Some(&[]), false).into_f64().unwrap();
        assert!(s[0] == 0.0 && s[0].is_sign_positive());
        let p = red(&nz, Op(ReduceOp::Prod), Some(&[]), false)
            .into_f64()
            .unwrap();
        assert!(p[0].is_sign_negative());
    }

    #[test]
    fn symbols_check_dtype_and_rebroadcast() {
        let a = Expr::symbol("a", DType::F64, &[3]);
        let b = Expr::symbol("b", DType::F64, &[3]);
        let e = &a - &b;
        let mut env = HashMap::new();
        env.insert("a".to_string(), DynArray::from(arr2(&[[1.0], [2.0]])));
        assert!(matches!(
            evaluate(&e, &env),
            Err(Error::UnknownName { name, known }) if name == "b" && known == ["a"]
        ));
        env.insert("b".to_string(), DynArray::from(arr1(&[1.0, 2.0, 3.0])));
        let r = evaluate(&e, &env).unwrap().into_f64().unwrap();
        assert_eq!(r, arr2(&[[0.0, -1.0, -2.0], [1.0, 0.0, -1.0]]).into_dyn());
        env.insert(
            "b".to_string(),
            DynArray::from(arr2(&[[1.0, 2.0, 3.0, 4.0]; 2])),
        );
        env.insert("a".to_string(), DynArray::from(arr1(&[1.0, 2.0, 3.0])));
        match evaluate(&e, &env) {
            Err(Error::ShapeMismatch { lhs, rhs }) => assert_eq!((lhs, rhs), (vec![3], vec![2, 4])),
            other => panic!("{other:?}"),
        }
        env.insert("b".to_string(), DynArray::from(arr1(&[1.0f32])));
        assert!(matches!(
            evaluate(&e, &env),
            Err(Error::DtypeMismatch { name, expected: DType::F64, found: DType::F32 }) if name == "b"
        ));
    }

    #[test]
    fn typing_errors_and_shared_subtrees() {
        let b = Expr::data(arr1(&[true, false]), Some("b"));
        assert!(matches!(
            eval(&(&b - &b)),
            Err(Error::OperandType { op, dtype: DType::Bool, .. }) if op == "sub"
        ));
        let i = Expr::data(arr1(&[1i32]), Some("i"));
        assert!(matches!(
            eval(&(&i + (1i64 << 40))),
            Err(Error::IntegerOverflow { .. })
        ));
        let x = Expr::data(arr0(2.0f64), Some("x"));
        let sq = &x * &x;
        let r = eval(&(&sq + &sq)).unwrap().into_f64().unwrap();
        assert_eq!(r, arr0(8.0).into_dyn());
        // A lone literal is materialized in its default dtype.
        assert_eq!(eval(&Expr::from(3)).unwrap().dtype(), DType::I64);
    }
}
