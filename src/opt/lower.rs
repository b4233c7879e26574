//! Lowering: `Expr` tree -> typed, hash-consed [`Graph`].
//!
//! This is the plan-time type checker: shapes are re-derived from the actual input shapes
//! (a compiled function may be called with shapes other than the symbols' declared ones), weak
//! literals become constants of the dtype the operator computes in (NEP 50), and every implicit
//! conversion becomes an explicit `Cast` node, so that later stages see homogeneous operators.
use super::graph::{AxisMask, Graph, Node, NodeId};
use super::rewrite;
use crate::array::{broadcast_shapes, DynArray};
use crate::dtype::{check_weak_fits, DType, Scalar};
use crate::error::{Error, Result};
use crate::expr::{binary_types, reduce_meta, where_dtype, Expr, ExprKind, ReduceAxes};
use crate::kir::Const;
use crate::ops::{pow_fast_path, BinaryOp, PowFastPath, ReduceOp, Reduction, UnaryOp};
use crate::view::View;
use smallvec::SmallVec;
use std::collections::HashMap;

/// Deepest expression the planner accepts: the most edges on a path from a root to a leaf. A
/// deeper tree gives [`Error::TooDeep`], checked by an iterative walk before anything else.
/// Lowering itself is iterative; fusion's emitter (`opt::fuse`) still recurses once per fused
/// node, and a kernel this deep is already huge. At this depth the whole plan-and-compute path
/// fits a 256 KiB stack in a debug build (measured), well inside a 2 MiB test thread;
/// `tests/deep.rs` runs it there.
pub const MAX_DEPTH: usize = 2048;

/// Where a plan input comes from.
#[derive(Clone)]
pub enum PlanInput {
    /// A symbol, bound at compute or call time.
    Symbol { name: String, dtype: DType },
    /// Data bound into the expression.
    Data {
        name: Option<String>,
        array: DynArray,
    },
}

impl PlanInput {
    /// The label used in graph text and reports.
    pub fn label(&self, index: usize) -> String {
        match self {
            PlanInput::Symbol { name, .. } => name.clone(),
            PlanInput::Data { name: Some(n), .. } => n.clone(),
            PlanInput::Data { name: None, .. } => format!("data{index}"),
        }
    }
    pub fn dtype(&self) -> DType {
        match self {
            PlanInput::Symbol { dtype, .. } => *dtype,
            PlanInput::Data { array, .. } => array.dtype(),
        }
    }
}

/// The result of lowering one expression.
pub struct Lowered {
    pub graph: Graph,
    /// The node of each expression lowered together (one for [`lower`]).
    pub roots: Vec<NodeId>,
    pub inputs: Vec<PlanInput>,
    pub input_shapes: Vec<Vec<usize>>,
    /// Whether a constant of the graph was derived from the input lengths (the count of a
    /// `mean`, `var` or `std`): then the plan holds for these lengths only.
    pub length_constants: bool,
}

impl Lowered {
    pub fn input_labels(&self) -> Vec<String> {
        self.inputs
            .iter()
            .enumerate()
            .map(|(i, p)| p.label(i))
            .collect()
    }
}

struct Lowering<'a> {
    graph: Graph,
    inputs: Vec<PlanInput>,
    input_shapes: Vec<Vec<usize>>,
    by_symbol: HashMap<String, u32>,
    by_data: HashMap<usize, u32>,
    memo: HashMap<usize, NodeId>,
    shapes: &'a dyn Fn(&str) -> Option<Vec<usize>>,
    optimize: bool,
    length_constants: bool,
}

/// Lower `expr`. `shapes(name)` gives the shape a symbol is bound to (None: its declared
/// shape). With `optimize`, constant folding and the rewrite table apply as nodes are built
/// and dead nodes are removed.
pub fn lower(
    expr: &Expr,
    shapes: &dyn Fn(&str) -> Option<Vec<usize>>,
    optimize: bool,
) -> Result<Lowered> {
    lower_many(std::slice::from_ref(expr), shapes, optimize)
}

/// Lower several expressions into one graph, so that what they share is computed once and the
/// planner can fuse their passes over common inputs.
pub fn lower_many(
    exprs: &[Expr],
    shapes: &dyn Fn(&str) -> Option<Vec<usize>>,
    optimize: bool,
) -> Result<Lowered> {
    if exprs.is_empty() {
        return Err(Error::Argument {
            message: "no expressions to compute".into(),
        });
    }
    for e in exprs {
        e.meta()?;
    }
    // Lowering recurses once per level: refuse a tree too deep before recursing at all.
    if crate::expr::deeper_than(exprs, MAX_DEPTH) {
        return Err(Error::TooDeep { limit: MAX_DEPTH });
    }
    let mut l = Lowering {
        graph: Graph::new(),
        inputs: vec![],
        input_shapes: vec![],
        by_symbol: HashMap::new(),
        by_data: HashMap::new(),
        memo: HashMap::new(),
        shapes,
        optimize,
        length_constants: false,
    };
    let mut roots = Vec::with_capacity(exprs.len());
    for e in exprs {
        roots.push(l.lower(e)?);
    }
    let (graph, roots) = if optimize {
        l.graph.compact(&roots)
    } else {
        (l.graph, roots)
    };
    Ok(Lowered {
        graph,
        roots,
        inputs: l.inputs,
        input_shapes: l.input_shapes,
        length_constants: l.length_constants,
    })
}

impl Lowering<'_> {
    fn add(&mut self, node: Node, dtype: DType, shape: Vec<usize>) -> NodeId {
        if let Some(id) = self.widen_f16(node, dtype, &shape) {
            return id;
        }
        if self.optimize {
            if let Some(id) = rewrite::simplify(&mut self.graph, node, dtype, &shape) {
                return id;
            }
        }
        self.graph.add(node, dtype, shape)
    }

    /// float16 arithmetic as NumPy's float16 loops do it: the operands converted to float32
    /// (exact), the operation in float32, the result rounded back to float16 by a cast, once
    /// per operation. So the kernel IR and the backends only load, store and convert float16
    /// (`kir` verifies it). `maximum`/`minimum` swap their operands: NumPy's float16 loop
    /// returns the first operand on ties, its float32 loop the second. Reductions accumulate
    /// in float32 and round once (NumPy rounds after each inner run: the same for one run);
    /// `argmin`/`argmax` and comparisons need no rounding. `nextafter` stays float16 (one
    /// float16 step has no float32 form).
    fn widen_f16(&mut self, node: Node, dtype: DType, shape: &[usize]) -> Option<NodeId> {
        use DType::{F16, F32};
        let is16 = |g: &Graph, id: NodeId| g.dtype(id) == F16;
        let wide = |dt: DType| if dt == F16 { F32 } else { dt };
        let (node, out) = match node {
            Node::Unary(op, a) if is16(&self.graph, a) => {
                let a = self.cast_to(a, F32);
                (Node::Unary(op, a), wide(dtype))
            }
            Node::Binary(BinaryOp::Nextafter, ..) => return None,
            Node::Binary(op, a, b) if is16(&self.graph, a) => {
                let (a, b) = (self.cast_to(a, F32), self.cast_to(b, F32));
                let (a, b) = match op {
                    BinaryOp::Maximum | BinaryOp::Minimum => (b, a),
                    _ => (a, b),
                };
                (Node::Binary(op, a, b), wide(dtype))
            }
            Node::Where(c, a, b) if dtype == F16 => {
                let (a, b) = (self.cast_to(a, F32), self.cast_to(b, F32));
                (Node::Where(c, a, b), F32)
            }
            Node::Reduce(op, a, mask) if is16(&self.graph, a) => {
                let a = self.cast_to(a, F32);
                (Node::Reduce(op, a, mask), wide(dtype))
            }
            _ => return None,
        };
        let id = self.add(node, out, shape.to_vec());
        Some(self.cast_to(id, dtype))
    }

    fn cast_to(&mut self, id: NodeId, dtype: DType) -> NodeId {
        if self.graph.dtype(id) == dtype {
            return id;
        }
        let shape = self.graph.shape(id).to_vec();
        self.add(Node::Cast(id), dtype, shape)
    }

    /// Lower `e` as an operand computed in `dtype`: a weak literal becomes a constant of that
    /// dtype; anything else is lowered and cast.
    fn lower_as(&mut self, e: &Expr, dtype: DType) -> Result<NodeId> {
        if let ExprKind::Literal(s) = e.kind() {
            check_weak_fits(*s, dtype)?;
            let c = semantics_const(*s, dtype);
            return Ok(self.graph.add(Node::Const(c), dtype, vec![]));
        }
        let id = self.lower(e)?;
        Ok(self.cast_to(id, dtype))
    }

    /// `float_array ** weak_scalar` as NumPy computes it (see [`pow_fast_path`]); this is
    /// semantics, not optimization, so it applies with `optimize: false` too.
    fn numpy_power(
        &mut self,
        op: BinaryOp,
        x: &Expr,
        y: &Expr,
        compute: DType,
    ) -> Result<Option<NodeId>> {
        let (BinaryOp::Pow, ExprKind::Literal(s)) = (op, y.kind()) else {
            return Ok(None);
        };
        if !compute.is_float() || x.meta()?.weak.is_some() {
            return Ok(None);
        }
        let Some(path) = pow_fast_path(*s) else {
            return Ok(None);
        };
        let a = self.lower_as(x, compute)?;
        let shape = self.graph.shape(a).to_vec();
        Ok(Some(match path {
            PowFastPath::Identity => a,
            PowFastPath::Square => self.add(Node::Binary(BinaryOp::Mul, a, a), compute, shape),
            PowFastPath::Sqrt => self.add(Node::Unary(UnaryOp::Sqrt, a), compute, shape),
            PowFastPath::Reciprocal => {
                let one = self.graph.add(
                    Node::Const(semantics_const(Scalar::Float(1.0), compute)),
                    compute,
                    vec![],
                );
                self.add(Node::Binary(BinaryOp::Div, one, a), compute, shape)
            }
        }))
    }

    /// The node of `e`, lowering it (and whatever under it is not lowered yet) if needed.
    /// Iterative: the operands not lowered yet are lowered first, in post-order with an
    /// explicit stack, so `lower_node`'s calls back into `lower` (through `lower_as`) find
    /// their operands done or are leaves, and the call stack stays shallow at any depth.
    /// Weak literals are lowered by their users, in the dtype each computes in.
    fn lower(&mut self, e: &Expr) -> Result<NodeId> {
        if let Some(id) = self.memo.get(&e.ptr_id()) {
            return Ok(*id);
        }
        let mut stack: Vec<(&Expr, bool)> = vec![(e, false)];
        while let Some((n, expanded)) = stack.pop() {
            if self.memo.contains_key(&n.ptr_id()) {
                continue;
            }
            if expanded {
                let id = self.lower_node(n)?;
                self.memo.insert(n.ptr_id(), id);
                continue;
            }
            stack.push((n, true));
            // Pushed last to first, so operands are lowered in source order, as the
            // recursive lowering did (input slots are numbered in that order).
            let kids: SmallVec<[&Expr; 3]> = n
                .kind()
                .children()
                .filter(|c| !matches!(c.kind(), ExprKind::Literal(_)))
                .collect();
            stack.extend(kids.into_iter().rev().map(|c| (c, false)));
        }
        self.memo
            .get(&e.ptr_id())
            .copied()
            .ok_or_else(|| Error::Value {
                message: "lowering: the root was not lowered".into(),
            })
    }

    /// Lower one node whose non-literal operands are lowered already.
    fn lower_node(&mut self, e: &Expr) -> Result<NodeId> {
        let key = e.ptr_id();
        let id = match e.kind() {
            ExprKind::Symbol(name) => {
                let m = e.meta()?;
                let slot = match self.by_symbol.get(name) {
                    Some(s) => *s,
                    None => {
                        let shape = (self.shapes)(name).unwrap_or_else(|| m.shape.clone());
                        self.inputs.push(PlanInput::Symbol {
                            name: name.clone(),
                            dtype: m.dtype,
                        });
                        self.input_shapes.push(shape);
                        let s = (self.inputs.len() - 1) as u32;
                        self.by_symbol.insert(name.clone(), s);
                        s
                    }
                };
                let shape = self.input_shapes[slot as usize].clone();
                self.graph.add(Node::Input(slot), m.dtype, shape)
            }
            ExprKind::Data { name, array } => {
                let slot = *self.by_data.entry(key).or_insert_with(|| {
                    self.inputs.push(PlanInput::Data {
                        name: name.clone(),
                        array: array.clone(),
                    });
                    self.input_shapes.push(array.shape().to_vec());
                    (self.inputs.len() - 1) as u32
                });
                self.graph
                    .add(Node::Input(slot), array.dtype(), array.shape().to_vec())
            }
            ExprKind::Literal(s) => {
                let dt = s.default_dtype();
                self.graph
                    .add(Node::Const(semantics_const(*s, dt)), dt, vec![])
            }
            ExprKind::Unary(op, x) => {
                let xd = x.meta()?.dtype;
                let (compute, result) = op.signature(xd)?;
                let a = self.lower_as(x, compute)?;
                let shape = self.graph.shape(a).to_vec();
                self.add(Node::Unary(*op, a), result, shape)
            }
            ExprKind::Binary(op, x, y) => {
                let (compute, result) = binary_types(*op, x.meta()?, y.meta()?)?;
                if let Some(id) = self.numpy_power(*op, x, y, compute)? {
                    return Ok(id);
                }
                let a = self.lower_as(x, compute)?;
                let b = self.lower_as(y, compute)?;
                let shape = broadcast_shapes(self.graph.shape(a), self.graph.shape(b))?;
                self.add(Node::Binary(*op, a, b), result, shape)
            }
            ExprKind::Where(c, x, y) => {
                let dt = where_dtype(x.meta()?, y.meta()?)?;
                let cond = self.lower_as(c, DType::Bool)?;
                let a = self.lower_as(x, dt)?;
                let b = self.lower_as(y, dt)?;
                let shape = broadcast_shapes(
                    &broadcast_shapes(self.graph.shape(cond), self.graph.shape(a))?,
                    self.graph.shape(b),
                )?;
                self.add(Node::Where(cond, a, b), dt, shape)
            }
            ExprKind::Cast(dt, x) => {
                let a = self.lower(x)?;
                self.cast_to(a, *dt)
            }
            ExprKind::Reduce(r, x, spec) => self.reduction(*r, x, spec)?,
            ExprKind::View(op, x) => {
                // A weak literal is viewed as a 0-d array of its default dtype.
                let a = match x.kind() {
                    ExprKind::Literal(s) => self.lower_as(x, s.default_dtype())?,
                    _ => self.lower(x)?,
                };
                let shape = self.graph.shape(a).to_vec();
                let (view, out) = op.resolve(&shape)?;
                if is_identity(&view, &shape) {
                    a
                } else {
                    let v = self.graph.intern_view(view);
                    let dt = self.graph.dtype(a);
                    self.graph.add(Node::View(v, a), dt, out)
                }
            }
        };
        self.memo.insert(key, id);
        Ok(id)
    }
}

impl Lowering<'_> {
    /// A reduction, re-checked against the operand's actual shape. `mean`, `var` and `std`
    /// become sums and element-wise arithmetic with the count as a constant (NumPy's
    /// algorithms: `var` is `sum(|x - mean(x)|**2) / max(n - ddof, 0)`, two passes).
    fn reduction(&mut self, r: Reduction, x: &Expr, spec: &ReduceAxes) -> Result<NodeId> {
        let xm = x.meta()?;
        let xd = xm.dtype;
        // A weak literal reduces as a 0-d array of its default dtype.
        let x_id = match x.kind() {
            ExprKind::Literal(s) => self.lower_as(x, s.default_dtype())?,
            _ => self.lower(x)?,
        };
        let shape = self.graph.shape(x_id).to_vec();
        if shape.len() > 64 {
            return Err(Error::Axis {
                message: format!(
                    "reductions take arrays of at most 64 dimensions, not {}",
                    shape.len()
                ),
            });
        }
        let (result, out_shape, axes) = reduce_meta(r, xd, &shape, spec)?;
        let count: usize = axes.iter().map(|&a| shape[a]).product();
        let keep = ReduceAxes {
            axes: spec.axes.clone(),
            keepdims: true,
        };
        let keep_shape = keep.result_shape(&shape, &axes);
        let float_t = if xd.is_float() { xd } else { DType::F64 };
        // NumPy's `_mean` sums float16 as float32 and rounds the mean once at the end.
        let mean_t = if xd == DType::F16 {
            DType::F32
        } else {
            float_t
        };
        Ok(match r {
            Reduction::Op(op) => self.reduce_node(op, x_id, &axes, out_shape)?,
            Reduction::Mean => {
                let xf = self.cast_to(x_id, mean_t);
                let s = self.reduce_node(ReduceOp::Sum, xf, &axes, out_shape.clone())?;
                let m = self.div_const(s, count as f64, mean_t, out_shape);
                self.cast_to(m, result)
            }
            Reduction::Var { ddof } | Reduction::Std { ddof } => {
                let xf = self.cast_to(x_id, float_t);
                let s = self.reduce_node(ReduceOp::Sum, xf, &axes, keep_shape.clone())?;
                let mean = self.div_const(s, count as f64, float_t, keep_shape);
                let dev = self.add(Node::Binary(BinaryOp::Sub, xf, mean), float_t, shape);
                let sq = self.add(
                    Node::Binary(BinaryOp::Mul, dev, dev),
                    float_t,
                    self.graph.shape(dev).to_vec(),
                );
                let ss = self.reduce_node(ReduceOp::Sum, sq, &axes, out_shape.clone())?;
                let dof = (count as f64 - ddof as f64).max(0.0);
                let var = self.div_const(ss, dof, float_t, out_shape.clone());
                match r {
                    Reduction::Std { .. } => {
                        self.add(Node::Unary(UnaryOp::Sqrt, var), float_t, out_shape)
                    }
                    _ => var,
                }
            }
        })
    }

    /// A kernel-level reduction of `a` over `axes` with result shape `out_shape`. Reducing no
    /// axis is a conversion (NumPy: `x.sum(axis=())` is `x` as int64, plus the identity 0.0
    /// for floats); `argmax` of a 0-d value is 0.
    fn reduce_node(
        &mut self,
        op: ReduceOp,
        a: NodeId,
        axes: &[usize],
        out_shape: Vec<usize>,
    ) -> Result<NodeId> {
        let (compute, result) = op.signature(self.graph.dtype(a))?;
        if axes.is_empty() {
            if op.is_arg() {
                let zero = self
                    .graph
                    .add(Node::Const(Const::I64(0)), DType::I64, vec![]);
                if out_shape.is_empty() {
                    return Ok(zero);
                }
                // Positions along no axis: zeros of the operand's shape.
                let z = self.cast_to(a, DType::I64);
                let shape = self.graph.shape(z).to_vec();
                return Ok(self.add(Node::Binary(BinaryOp::Mul, z, zero), DType::I64, shape));
            }
            let c = self.cast_to(a, compute);
            let c = self.cast_to(c, result);
            // NumPy starts a float sum from the identity 0.0, so -0.0 sums to 0.0.
            if op == ReduceOp::Sum && result.is_float() {
                let zero = self.graph.add(
                    Node::Const(crate::semantics::cast(Const::F64(0.0), result)),
                    result,
                    vec![],
                );
                let shape = self.graph.shape(c).to_vec();
                return Ok(self.add(Node::Binary(BinaryOp::Add, c, zero), result, shape));
            }
            return Ok(c);
        }
        let a = self.cast_to(a, compute);
        Ok(self.add(
            Node::Reduce(op, a, AxisMask::from_axes(axes)),
            result,
            out_shape,
        ))
    }

    /// `a / c` in `dtype` (`c` a float count).
    /// NumPy divides by the count (an int64) in float64 and casts back. For float32 that is
    /// the float32 quotient (correctly rounded either way); float16 divides in float64 as
    /// NumPy does and rounds once.
    fn div_const(&mut self, a: NodeId, c: f64, dtype: DType, shape: Vec<usize>) -> NodeId {
        self.length_constants = true;
        if dtype == DType::F16 {
            let q = self.div_const(a, c, DType::F64, shape);
            return self.cast_to(q, DType::F16);
        }
        let a = self.cast_to(a, dtype);
        let k = self.graph.add(
            Node::Const(crate::semantics::cast(Const::F64(c), dtype)),
            dtype,
            vec![],
        );
        self.add(Node::Binary(BinaryOp::Div, a, k), dtype, shape)
    }
}

/// Whether `view` of an operand of `shape` reads every element in place (no node needed).
fn is_identity(view: &View, shape: &[usize]) -> bool {
    match view {
        View::Reshape(s) => s.as_slice() == shape,
        View::Strided(maps) => {
            maps.len() == shape.len()
                && maps.iter().enumerate().all(|(d, m)| {
                    m.src == Some(d)
                        && m.first == 0
                        && m.len == shape[d]
                        && (m.step == 1 || m.len <= 1)
                })
        }
    }
}

/// A weak scalar as a constant of `dtype` (the caller checked that it fits).
pub(crate) fn semantics_const(s: Scalar, dtype: DType) -> Const {
    let c = match s {
        Scalar::Bool(b) => Const::Bool(b),
        Scalar::Int(i) => Const::I64(i),
        Scalar::Float(f) => Const::F64(f),
    };
    crate::semantics::cast(c, dtype)
}
