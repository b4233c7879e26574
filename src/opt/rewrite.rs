//! Constant folding and the algebraic rewrite table.
//!
//! Each rule is applied when a node is built (bottom-up, so operands are already simplified)
//! and must give bit-identical results to evaluating the node as written, or exactly what NumPy
//! itself computes for that expression. NumPy's own fast paths for `array ** scalar` are
//! `x**2 -> square`, `x**0.5 -> sqrt`, `x**-1 -> reciprocal`, `x**1 -> x`, so those rewrites
//! give NumPy's results to the bit. Rules deliberately absent, and why:
//! - `x + 0.0 -> x` for floats: `-0.0 + 0.0` is `+0.0`; only `x - 0.0` and `x + -0.0` are exact;
//! - `x * 0 -> 0`, `x - x -> 0`, `x / x -> 1`: wrong for NaN and inf;
//! - float `x**3 -> x*x*x`: differs from `pow` (and NumPy) in the last bit for ~26% of inputs;
//!   integer powers are exact and do become multiplications.
use super::graph::{Graph, Node, NodeId};
use crate::dtype::DType;
use crate::kir::Const;
use crate::ops::{BinaryOp, UnaryOp};
use crate::semantics;

/// Whether a constant equals `v`: floats by bits (so `-0.0` and `0.0` differ), integers and
/// bools by value.
fn is_value(c: Option<Const>, v: f64) -> bool {
    match c {
        Some(Const::F64(x)) => x.to_bits() == v.to_bits(),
        Some(Const::F32(x)) => (x as f64).to_bits() == v.to_bits(),
        Some(Const::F16(x)) => (crate::dtype::f16_to_f32(x) as f64).to_bits() == v.to_bits(),
        Some(c) => c.as_f64() == v,
        None => false,
    }
}

fn float_const(dtype: DType, v: f64) -> Const {
    match dtype {
        DType::F16 => Const::F16(crate::dtype::f16_from_f64(v)),
        DType::F32 => Const::F32(v as f32),
        _ => Const::F64(v),
    }
}

/// Simplify `node` (of `dtype`, `shape`) if a rule applies; the result replaces it.
/// Every rule that returns an operand checks that the operand already has the node's shape.
pub fn simplify(g: &mut Graph, node: Node, dtype: DType, shape: &[usize]) -> Option<NodeId> {
    let same_shape =
        |g: &Graph, x: NodeId| (g.shape(x) == shape && g.dtype(x) == dtype).then_some(x);
    match node {
        // fold: an operator on constants is a constant.
        Node::Unary(op, a) => {
            if let Some(c) = g.as_const(a) {
                return Some(g.add(Node::Const(semantics::fold_unary(op, c)), dtype, vec![]));
            }
            match (op, g.node(a)) {
                // -(-x) -> x ; ~~x -> x
                (UnaryOp::Neg, Node::Unary(UnaryOp::Neg, x))
                | (UnaryOp::Not, Node::Unary(UnaryOp::Not, x)) => same_shape(g, x),
                _ => None,
            }
        }
        Node::Cast(a) => {
            if let Some(c) = g.as_const(a) {
                return Some(g.add(Node::Const(semantics::cast(c, dtype)), dtype, vec![]));
            }
            // cast(cast(x, wider), back) -> x when the inner cast is lossless.
            if let Node::Cast(x) = g.node(a) {
                let (from, mid) = (g.dtype(x), g.dtype(a));
                let lossless = matches!(
                    (from, mid),
                    (DType::Bool, _)
                        | (DType::I32, DType::I64 | DType::F64)
                        | (DType::F32, DType::F64)
                        | (DType::F16, DType::F32 | DType::F64)
                );
                if lossless && from == dtype {
                    return same_shape(g, x);
                }
            }
            None
        }
        Node::Binary(op, a, b) => {
            let (ca, cb) = (g.as_const(a), g.as_const(b));
            if let (Some(x), Some(y)) = (ca, cb) {
                let c = semantics::fold_binary(op, x, y)?;
                return Some(g.add(Node::Const(c), dtype, vec![]));
            }
            let int = dtype.is_int();
            let float = dtype.is_float();
            match op {
                // x * 1 -> x ; 1 * x -> x
                BinaryOp::Mul if is_value(cb, 1.0) => same_shape(g, a),
                BinaryOp::Mul if is_value(ca, 1.0) => same_shape(g, b),
                // x * -1 -> -x, integers only: for floats, x86 multiplication keeps a NaN's
                // sign bit while negation flips it (NumPy's x * -1 keeps it).
                BinaryOp::Mul if int && is_value(cb, -1.0) => {
                    let n = g.add(Node::Unary(UnaryOp::Neg, a), dtype, shape.to_vec());
                    same_shape(g, n)
                }
                // x / 1 -> x
                BinaryOp::Div if is_value(cb, 1.0) => same_shape(g, a),
                // x / 2^k -> x * 2^-k (both exact roundings of the same real number)
                BinaryOp::Div if float => {
                    let v = cb?.as_f64();
                    let r = 1.0 / v;
                    // A power of two by its bits (log2 rounds: log2(2^31 - 2^-22) is 31.0),
                    // with its reciprocal normal in f32 too.
                    let bits = v.abs().to_bits();
                    let exponent = ((bits >> 52) & 0x7ff) as i64 - 1023;
                    let exact = v != 0.0
                        && v.is_finite()
                        && r.is_finite()
                        && bits & ((1u64 << 52) - 1) == 0
                        && exponent.abs() < 126;
                    if !exact {
                        return None;
                    }
                    let c = g.add(Node::Const(float_const(dtype, r)), dtype, vec![]);
                    Some(g.add(Node::Binary(BinaryOp::Mul, a, c), dtype, shape.to_vec()))
                }
                // ints: x + 0 -> x ; 0 + x -> x ; x - 0 -> x
                BinaryOp::Add if int && is_value(cb, 0.0) => same_shape(g, a),
                BinaryOp::Add if int && is_value(ca, 0.0) => same_shape(g, b),
                BinaryOp::Sub if int && is_value(cb, 0.0) => same_shape(g, a),
                // floats: x - 0.0 -> x ; x + -0.0 -> x ; -0.0 + x -> x
                BinaryOp::Sub if float && is_value(cb, 0.0) => same_shape(g, a),
                BinaryOp::Add if float && is_value(cb, -0.0) => same_shape(g, a),
                BinaryOp::Add if float && is_value(ca, -0.0) => same_shape(g, b),
                // maximum(x, x) -> x ; minimum(x, x) -> x (CSE makes the operands one node)
                BinaryOp::Maximum | BinaryOp::Minimum if a == b => same_shape(g, a),
                BinaryOp::Pow => power(g, a, cb?, dtype, shape),
                _ => None,
            }
        }
        Node::Where(c, a, b) => {
            // where(c, x, x) -> x
            if a == b {
                return same_shape(g, a);
            }
            // where(True, a, b) -> a ; where(False, a, b) -> b
            match g.as_const(c) {
                Some(Const::Bool(true)) => same_shape(g, a),
                Some(Const::Bool(false)) => same_shape(g, b),
                _ => None,
            }
        }
        Node::Input(_) | Node::Const(_) | Node::Reduce(..) | Node::View(..) => None,
    }
}

/// `x ** c` for a constant exponent.
fn power(g: &mut Graph, x: NodeId, c: Const, dtype: DType, shape: &[usize]) -> Option<NodeId> {
    let v = c.as_f64();
    let mul = |g: &mut Graph, p: NodeId, q: NodeId| {
        g.add(Node::Binary(BinaryOp::Mul, p, q), dtype, shape.to_vec())
    };
    if g.shape(x) != shape {
        return None;
    }
    if dtype.is_float() {
        // NumPy's fast paths for array ** scalar, exactly.
        return match v {
            1.0 => Some(x),            // x ** 1 -> x
            2.0 => Some(mul(g, x, x)), // x ** 2 -> x * x
            0.5 => Some(g.add(Node::Unary(UnaryOp::Sqrt, x), dtype, shape.to_vec())), // x ** 0.5 -> sqrt(x)
            -1.0 => {
                // x ** -1 -> 1 / x
                let one = g.add(Node::Const(float_const(dtype, 1.0)), dtype, vec![]);
                Some(g.add(Node::Binary(BinaryOp::Div, one, x), dtype, shape.to_vec()))
            }
            _ => None,
        };
    }
    if dtype.is_int() {
        // integer x ** k (1 <= k <= 8) -> multiplications by squaring (exact: wrapping
        // multiplication is associative).
        let k = match c {
            Const::I32(k) => k as i64,
            Const::I64(k) => k,
            _ => return None,
        };
        if !(1..=8).contains(&k) {
            return None;
        }
        let (mut acc, mut base, mut e) = (None::<NodeId>, x, k);
        while e > 0 {
            if e & 1 == 1 {
                acc = Some(match acc {
                    None => base,
                    Some(p) => mul(g, p, base),
                });
            }
            e >>= 1;
            if e > 0 {
                base = mul(g, base, base);
            }
        }
        return acc;
    }
    None
}
