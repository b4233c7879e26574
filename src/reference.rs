//! The reference evaluator: the oracle every backend is tested against.
//!
//! It evaluates an [`Expr`] the way NumPy does: one operator at a time, each producing a fresh
//! temporary array. Typing reuses the rules the expression layer uses ([`binary_types`],
//! [`where_dtype`], [`UnaryOp::signature`], [`ReduceOp::signature`], NEP 50 weak literals), and
//! every element goes through the scalar definitions in [`crate::semantics`]. Nothing here is
//! clever: no fusion, no SIMD, no reuse of buffers. Being obviously right is the whole point.
//!
//! Architecture invariant: this module depends only on `expr`, `ops`, `dtype`, `array` and
//! `semantics`; it never sees the optimizer, the kernel IR or a backend.
//!
//! Shapes are re-inferred from the bound arrays (a symbol's declared shape is only a hint), so
//! the same expression can be evaluated on inputs of other shapes; dtypes must match the
//! symbol's declaration.
use crate::array::{broadcast_shapes, DynArray, Element};
use crate::dtype::{check_weak_fits, DType, Scalar};
use crate::error::{Error, Result};
use crate::expr::{binary_types, where_dtype, Expr, ExprKind, Meta};
use crate::ops::{pow_fast_path, BinaryOp, PowFastPath, ReduceOp, UnaryOp};
use crate::semantics;
use ndarray::{arr0, ArcArray, ArrayD, IxDyn, Zip};
use std::collections::HashMap;

/// Evaluate `expr` with plain ndarray, one operator at a time, each producing a temporary
/// (what NumPy does). Symbols are looked up in `bindings` (`Error::UnknownName` if absent;
/// the dtype must match the symbol's declared dtype, else `Error::Type`; shapes may differ from
/// the declared ones: they are re-inferred and broadcast with NumPy's rules, and
/// `Error::ShapeMismatch` names both shapes).
///
/// A weak literal at the root is materialized in its default dtype (Python `2.0` -> float64).
pub fn evaluate(expr: &Expr, bindings: &HashMap<String, DynArray>) -> Result<DynArray> {
    // Post-order walk with an explicit stack (deep expressions must not overflow the call
    // stack), memoized by node identity so a subtree shared by several parents runs once.
    let mut memo: HashMap<usize, Value> = HashMap::new();
    let mut stack: Vec<(&Expr, bool)> = vec![(expr, false)];
    while let Some((e, children_done)) = stack.pop() {
        if memo.contains_key(&e.ptr_id()) {
            continue;
        }
        if children_done {
            let v = eval_node(e, &memo, bindings)?;
            memo.insert(e.ptr_id(), v);
        } else {
            stack.push((e, true));
            for c in children(e) {
                if !memo.contains_key(&c.ptr_id()) {
                    stack.push((c, false));
                }
            }
        }
    }
    match memo.remove(&expr.ptr_id()) {
        Some(v) => v.into_array(),
        None => Err(Error::Value("reference: root was not evaluated".into())),
    }
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

fn children(e: &Expr) -> Vec<&Expr> {
    match e.kind() {
        ExprKind::Symbol(_) | ExprKind::Data { .. } | ExprKind::Literal(_) => vec![],
        ExprKind::Unary(_, x) | ExprKind::Cast(_, x) | ExprKind::Reduce(_, x, _) => vec![x],
        ExprKind::Binary(_, a, b) => vec![a, b],
        ExprKind::Where(c, a, b) => vec![c, a, b],
    }
}

fn eval_node(
    e: &Expr,
    memo: &HashMap<usize, Value>,
    bindings: &HashMap<String, DynArray>,
) -> Result<Value> {
    let get = |c: &Expr| -> Result<Value> {
        memo.get(&c.ptr_id())
            .cloned()
            .ok_or_else(|| Error::Value("reference: child evaluated out of order".into()))
    };
    Ok(match e.kind() {
        ExprKind::Symbol(name) => {
            let declared = e.meta()?.dtype;
            let a = bindings
                .get(name)
                .ok_or_else(|| Error::UnknownName(name.clone()))?;
            if a.dtype() != declared {
                return Err(Error::Type(format!(
                    "`{name}` is declared {declared} but bound to a {} array",
                    a.dtype()
                )));
            }
            Value::Array(a.clone())
        }
        ExprKind::Data { array, .. } => Value::Array(array.clone()),
        ExprKind::Literal(s) => Value::Weak(*s),
        ExprKind::Unary(op, x) => {
            let x = get(x)?;
            if let Value::Weak(_) = x {
                // `Expr::unary` folds weak operands; a node left unfolded carries the error.
                e.meta()?;
            }
            let m = x.meta();
            let (compute, _result) = op.signature(m.dtype)?;
            Value::Array(unary(*op, &x.to_dtype(compute)?)?)
        }
        ExprKind::Binary(op, a, b) => {
            let (a, b) = (get(a)?, get(b)?);
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
        ExprKind::Where(c, a, b) => {
            let (c, a, b) = (get(c)?, get(a)?, get(b)?);
            let dtype = where_dtype(&a.meta(), &b.meta())?;
            let c = match c {
                Value::Weak(s) => materialize(s, DType::Bool),
                Value::Array(arr) => cast(&arr, DType::Bool),
            };
            Value::Array(select(&c, &a.to_dtype(dtype)?, &b.to_dtype(dtype)?)?)
        }
        ExprKind::Cast(dtype, x) => {
            let x = get(x)?.into_array()?;
            Value::Array(cast(&x, *dtype))
        }
        ExprKind::Reduce(r, x, spec) => {
            let x = get(x)?.into_array()?;
            match (r, &spec.axes, spec.keepdims) {
                (crate::ops::Reduction::Op(op @ ReduceOp::Sum), None, false) => {
                    let (compute, _result) = op.signature(x.dtype())?;
                    Value::Array(reduce(*op, &cast(&x, compute))?)
                }
                _ => {
                    return Err(Error::Type(format!(
                        "the reference evaluator does not compute {r} with axes yet"
                    )))
                }
            }
        }
    })
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

/// NumPy's `astype` (unsafe casting), element by element; see `semantics` for the rules.
fn cast(a: &DynArray, to: DType) -> DynArray {
    if a.dtype() == to {
        return a.clone();
    }
    match to {
        DType::Bool => DynArray::from(match a {
            DynArray::Bool(x) => x.map(|&v| v),
            DynArray::I32(x) => x.map(|&v| v != 0),
            DynArray::I64(x) => x.map(|&v| v != 0),
            DynArray::F32(x) => x.map(|&v| v != 0.0),
            DynArray::F64(x) => x.map(|&v| v != 0.0),
        }),
        DType::I32 => DynArray::from(match a {
            DynArray::Bool(x) => x.map(|&v| v as i32),
            DynArray::I32(x) => x.map(|&v| v),
            DynArray::I64(x) => x.map(|&v| v as i32),
            DynArray::F32(x) => x.map(|&v| semantics::f64_to_i32(v as f64)),
            DynArray::F64(x) => x.map(|&v| semantics::f64_to_i32(v)),
        }),
        DType::I64 => DynArray::from(match a {
            DynArray::Bool(x) => x.map(|&v| v as i64),
            DynArray::I32(x) => x.map(|&v| v as i64),
            DynArray::I64(x) => x.map(|&v| v),
            DynArray::F32(x) => x.map(|&v| semantics::f64_to_i64(v as f64)),
            DynArray::F64(x) => x.map(|&v| semantics::f64_to_i64(v)),
        }),
        DType::F32 => DynArray::from(match a {
            DynArray::Bool(x) => x.map(|&v| v as u8 as f32),
            DynArray::I32(x) => x.map(|&v| v as f32),
            DynArray::I64(x) => x.map(|&v| v as f32),
            DynArray::F32(x) => x.map(|&v| v),
            DynArray::F64(x) => x.map(|&v| v as f32),
        }),
        DType::F64 => DynArray::from(match a {
            DynArray::Bool(x) => x.map(|&v| v as u8 as f64),
            DynArray::I32(x) => x.map(|&v| v as f64),
            DynArray::I64(x) => x.map(|&v| v as f64),
            DynArray::F32(x) => x.map(|&v| v as f64),
            DynArray::F64(x) => x.map(|&v| v),
        }),
    }
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
            DType::F32 => map2(a, b, |x: f32, y| semantics::compare(op, x, y)),
            DType::F64 => map2(a, b, |x: f64, y| semantics::compare(op, x, y)),
        };
    }
    match a.dtype() {
        DType::Bool => map2(a, b, |x: bool, y| semantics::binary_bool(op, x, y)),
        DType::I32 => map2(a, b, |x: i32, y| semantics::binary_i32(op, x, y)),
        DType::I64 => map2(a, b, |x: i64, y| semantics::binary_i64(op, x, y)),
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
        DType::F32 => go::<f32>(c, a, b),
        DType::F64 => go::<f64>(c, a, b),
    }
}

// ---- reductions -----------------------------------------------------------------------------

/// Whole-array reduction of `x` (already in the compute dtype) to a 0-d array.
fn reduce(op: ReduceOp, x: &DynArray) -> Result<DynArray> {
    match op {
        ReduceOp::Sum => Ok(match x {
            // NumPy's float sum: the identity 0.0 plus the pairwise sum of the C-order elements.
            DynArray::F64(a) => {
                let v: Vec<f64> = a.iter().copied().collect();
                arr0(0.0 + pairwise_sum_f64(&v)).into()
            }
            DynArray::F32(a) => {
                let v: Vec<f32> = a.iter().copied().collect();
                arr0(0.0 + pairwise_sum_f32(&v)).into()
            }
            DynArray::I64(a) => arr0(a.iter().fold(0i64, |s, &v| s.wrapping_add(v))).into(),
            other => {
                return Err(Error::Type(format!(
                    "sum is computed in int64 or float, not {}",
                    other.dtype()
                )))
            }
        }),
        other => Err(Error::Type(format!("reference {other}: not implemented"))),
    }
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

    #[test]
    fn symbols_check_dtype_and_rebroadcast() {
        let a = Expr::symbol("a", DType::F64, &[3]);
        let b = Expr::symbol("b", DType::F64, &[3]);
        let e = &a - &b;
        let mut env = HashMap::new();
        env.insert("a".to_string(), DynArray::from(arr2(&[[1.0], [2.0]])));
        assert!(matches!(evaluate(&e, &env), Err(Error::UnknownName(n)) if n == "b"));
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
        assert!(matches!(evaluate(&e, &env), Err(Error::Type(_))));
    }

    #[test]
    fn typing_errors_and_shared_subtrees() {
        let b = Expr::data(arr1(&[true, false]), Some("b"));
        assert!(matches!(eval(&(&b - &b)), Err(Error::Type(_))));
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
