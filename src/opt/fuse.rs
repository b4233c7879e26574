//! Fusion: partition the graph into kernels, each one loop over its output, and emit their IR.
//!
//! A node is *materialized* (written to memory) when it is the root or a reduction; every other
//! element-wise node is computed inside the kernel of the materialized node that uses it, so a
//! chain of operators reads its inputs once and writes one output. The unfused partition
//! (Blaze's `optimize=False`, NumPy's way) materializes every operator instead; casts stay
//! inside their consumer, as inside a NumPy ufunc loop.
use super::graph::{Graph, Node, NodeId};
use super::lower::Lowered;
use crate::kir::{Inst, Kernel, KernelBuilder, Output, Value};
use std::collections::HashMap;

/// A buffer a kernel reads: a plan input or an earlier step's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Buf {
    Input(u32),
    Temp(u32),
}

/// One kernel launch of a plan.
#[derive(Debug, Clone)]
pub struct Step {
    pub kernel: Kernel,
    /// What each kernel input (`in0`, `in1`, ...) reads.
    pub args: Vec<Buf>,
    /// The iteration space (the output's shape; for a reduction, its operand's shape).
    pub shape: Vec<usize>,
    /// The graph node this step materializes; its result is `Buf::Temp(step index)`.
    pub node: NodeId,
}

/// How to partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Partition {
    /// Fuse every element-wise chain into its consumer.
    Fused,
    /// One kernel per operator, with a temporary each.
    Unfused,
}

/// Kernels in execution order; the last step's result is the plan's result.
pub fn partition(l: &Lowered, mode: Partition) -> Vec<Step> {
    let g = &l.graph;
    let mut materialized = vec![false; g.len()];
    for (i, m) in materialized.iter_mut().enumerate() {
        *m = match (mode, g.node(NodeId(i as u32))) {
            (_, Node::Reduce(..)) => true,
            (_, Node::Input(_) | Node::Const(_)) => false,
            (Partition::Fused, _) => false,
            (Partition::Unfused, Node::Cast(_)) => false,
            (Partition::Unfused, _) => true,
        };
    }
    materialized[l.root.index()] = true;
    let mut temp_of: HashMap<NodeId, u32> = HashMap::new();
    let mut steps = vec![];
    for i in 0..g.len() {
        if !materialized[i] || !reachable(g, l.root, NodeId(i as u32)) {
            continue;
        }
        let id = NodeId(i as u32);
        let step = kernel_for(g, id, &materialized, &temp_of);
        temp_of.insert(id, steps.len() as u32);
        steps.push(step);
    }
    steps
}

fn reachable(g: &Graph, root: NodeId, target: NodeId) -> bool {
    // Graphs are small and acyclic; ids grow from operands to users.
    if target > root {
        return false;
    }
    let mut seen = vec![false; root.index() + 1];
    let mut stack = vec![root];
    while let Some(n) = stack.pop() {
        if n == target {
            return true;
        }
        if !seen[n.index()] {
            seen[n.index()] = true;
            stack.extend(g.node(n).args().into_iter().filter(|a| *a >= target));
        }
    }
    false
}

struct Emitter<'a> {
    g: &'a Graph,
    materialized: &'a [bool],
    temp_of: &'a HashMap<NodeId, u32>,
    b: KernelBuilder,
    args: Vec<Buf>,
    loads: HashMap<Buf, Value>,
    memo: HashMap<NodeId, Value>,
    body_root: NodeId,
}

impl Emitter<'_> {
    fn load(&mut self, buf: Buf, id: NodeId) -> Value {
        if let Some(v) = self.loads.get(&buf) {
            return *v;
        }
        let input = self.b.input(self.g.dtype(id));
        self.args.push(buf);
        let v = self.b.push(Inst::Load { input }, self.g.dtype(id));
        self.loads.insert(buf, v);
        v
    }

    fn emit(&mut self, id: NodeId) -> Value {
        if let Some(v) = self.memo.get(&id) {
            return *v;
        }
        let ty = self.g.dtype(id);
        let v = match self.g.node(id) {
            Node::Input(n) => self.load(Buf::Input(n), id),
            _ if id != self.body_root && self.materialized[id.index()] => {
                let t = self.temp_of[&id];
                self.load(Buf::Temp(t), id)
            }
            Node::Const(c) => self.b.push(Inst::Const(c), ty),
            Node::Unary(op, a) => {
                let arg = self.emit(a);
                self.b.push(Inst::Unary { op, arg }, ty)
            }
            Node::Binary(op, a, c) => {
                let lhs = self.emit(a);
                let rhs = self.emit(c);
                self.b.push(Inst::Binary { op, lhs, rhs }, ty)
            }
            Node::Where(c, a, e) => {
                let cond = self.emit(c);
                let on_true = self.emit(a);
                let on_false = self.emit(e);
                self.b.push(
                    Inst::Select {
                        cond,
                        on_true,
                        on_false,
                    },
                    ty,
                )
            }
            Node::Cast(a) => {
                let arg = self.emit(a);
                self.b.push(Inst::Cast { arg }, ty)
            }
            Node::Reduce(..) => unreachable!("reductions are always materialized"),
        };
        self.memo.insert(id, v);
        v
    }
}

fn kernel_for(
    g: &Graph,
    id: NodeId,
    materialized: &[bool],
    temp_of: &HashMap<NodeId, u32>,
) -> Step {
    let (body_root, reduce) = match g.node(id) {
        Node::Reduce(op, a) => (a, Some(op)),
        _ => (id, None),
    };
    let mut e = Emitter {
        g,
        materialized,
        temp_of,
        b: KernelBuilder::new(),
        args: vec![],
        loads: HashMap::new(),
        memo: HashMap::new(),
        body_root,
    };
    let value = e.emit(body_root);
    let output = match reduce {
        Some(op) => Output::Reduce { op, value },
        None => Output::Store { value },
    };
    Step {
        kernel: e.b.finish(output),
        args: e.args,
        shape: g.shape(body_root).to_vec(),
        node: id,
    }
}
