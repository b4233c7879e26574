//! Lowering: `Expr` tree -> typed, hash-consed [`Graph`].
//!
//! This is the plan-time type checker: shapes are re-derived from the actual input shapes
//! (a compiled function may be called with shapes other than the symbols' declared ones), weak
//! literals become constants of the dtype the operator computes in (NEP 50), and every implicit
//! conversion becomes an explicit `Cast` node, so that later stages see homogeneous operators.
use super::graph::{Graph, Node, NodeId};
use super::rewrite;
use crate::array::{broadcast_shapes, DynArray};
use crate::dtype::{check_weak_fits, DType, Scalar};
use crate::error::{Error, Result};
use crate::expr::{binary_types, where_dtype, Expr, ExprKind};
use crate::kir::Const;
use std::collections::HashMap;

/// Deepest expression the planner accepts (a limit, with a clear error, instead of a stack
/// overflow on a pathological tree).
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
    pub root: NodeId,
    pub inputs: Vec<PlanInput>,
    pub input_shapes: Vec<Vec<usize>>,
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
}

/// Lower `expr`. `shapes(name)` gives the shape a symbol is bound to (None: its declared
/// shape). With `optimize`, constant folding and the rewrite table apply as nodes are built
/// and dead nodes are removed.
pub fn lower(
    expr: &Expr,
    shapes: &dyn Fn(&str) -> Option<Vec<usize>>,
    optimize: bool,
) -> Result<Lowered> {
    expr.meta()?;
    let mut l = Lowering {
        graph: Graph::new(),
        inputs: vec![],
        input_shapes: vec![],
        by_symbol: HashMap::new(),
        by_data: HashMap::new(),
        memo: HashMap::new(),
        shapes,
        optimize,
    };
    let root = l.lower(expr, 0)?;
    let (graph, root) = if optimize {
        let (g, r) = l.graph.compact(&[root]);
        (g, r[0])
    } else {
        (l.graph, root)
    };
    Ok(Lowered {
        graph,
        root,
        inputs: l.inputs,
        input_shapes: l.input_shapes,
    })
}

impl Lowering<'_> {
    fn add(&mut self, node: Node, dtype: DType, shape: Vec<usize>) -> NodeId {
        if self.optimize {
            if let Some(id) = rewrite::simplify(&mut self.graph, node, dtype, &shape) {
                return id;
            }
        }
        self.graph.add(node, dtype, shape)
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
    fn lower_as(&mut self, e: &Expr, dtype: DType, depth: usize) -> Result<NodeId> {
        if let ExprKind::Literal(s) = e.kind() {
            check_weak_fits(*s, dtype)?;
            let c = semantics_const(*s, dtype);
            return Ok(self.graph.add(Node::Const(c), dtype, vec![]));
        }
        let id = self.lower(e, depth)?;
        Ok(self.cast_to(id, dtype))
    }

    fn lower(&mut self, e: &Expr, depth: usize) -> Result<NodeId> {
        if depth > MAX_DEPTH {
            return Err(Error::TooDeep(MAX_DEPTH));
        }
        let key = e.ptr_id();
        if let Some(id) = self.memo.get(&key) {
            return Ok(*id);
        }
        let d = depth + 1;
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
                let a = self.lower_as(x, compute, d)?;
                let shape = self.graph.shape(a).to_vec();
                self.add(Node::Unary(*op, a), result, shape)
            }
            ExprKind::Binary(op, x, y) => {
                let (compute, result) = binary_types(*op, x.meta()?, y.meta()?)?;
                let a = self.lower_as(x, compute, d)?;
                let b = self.lower_as(y, compute, d)?;
                let shape = broadcast_shapes(self.graph.shape(a), self.graph.shape(b))?;
                self.add(Node::Binary(*op, a, b), result, shape)
            }
            ExprKind::Where(c, x, y) => {
                let dt = where_dtype(x.meta()?, y.meta()?)?;
                let cond = self.lower_as(c, DType::Bool, d)?;
                let a = self.lower_as(x, dt, d)?;
                let b = self.lower_as(y, dt, d)?;
                let shape = broadcast_shapes(
                    &broadcast_shapes(self.graph.shape(cond), self.graph.shape(a))?,
                    self.graph.shape(b),
                )?;
                self.add(Node::Where(cond, a, b), dt, shape)
            }
            ExprKind::Cast(dt, x) => {
                let a = self.lower(x, d)?;
                self.cast_to(a, *dt)
            }
            ExprKind::Reduce(op, x) => {
                let (compute, result) = op.signature(x.meta()?.dtype)?;
                let a = self.lower_as(x, compute, d)?;
                self.add(Node::Reduce(*op, a), result, vec![])
            }
        };
        self.memo.insert(key, id);
        Ok(id)
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
