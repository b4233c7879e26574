//! The hash-consed expression graph the optimizer works on.
//!
//! Nodes live in an arena and are addressed by [`NodeId`]. Adding a node equal to an existing
//! one returns the existing id, so common subexpressions are shared by construction (CSE for
//! free, as naga's `UniqueArena`). Every node is typed: binary operands already have the dtype
//! the operator computes in (the lowering inserted explicit casts), and constants are typed
//! 0-d values that broadcast.
use crate::dtype::DType;
use crate::kir::Const;
use crate::ops::{BinaryOp, ReduceOp, UnaryOp};
use crate::view::View;
use std::collections::HashMap;
use std::fmt;

/// Index of a node in a [`Graph`]. Prints as `%N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub u32);

impl NodeId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "%{}", self.0)
    }
}

/// An operation in the graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Node {
    /// Plan input number `n` (a symbol or bound data).
    Input(u32),
    /// A typed 0-d constant (broadcasts).
    Const(Const),
    Unary(UnaryOp, NodeId),
    Binary(BinaryOp, NodeId, NodeId),
    Where(NodeId, NodeId, NodeId),
    /// Convert to the node's dtype.
    Cast(NodeId),
    /// Reduction over the axes of the operand set in the mask (bit `d`: axis `d`); the node's
    /// shape says whether they are kept as length-1 axes (`keepdims`).
    Reduce(ReduceOp, NodeId, AxisMask),
    /// The operand read through view number `v` of the graph ([`Graph::view`]): a transpose,
    /// slice, reshape, ... of its elements. A kernel loads it as an input with other strides;
    /// its operand is an input or a materialized node (see `opt::fuse`).
    View(u32, NodeId),
}

/// A set of axes (at most 64, NumPy's limit), as a bit mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AxisMask(pub u64);

impl AxisMask {
    pub fn from_axes(axes: &[usize]) -> AxisMask {
        AxisMask(axes.iter().fold(0, |m, &a| m | (1u64 << a)))
    }
    pub fn contains(self, axis: usize) -> bool {
        axis < 64 && self.0 & (1u64 << axis) != 0
    }
    /// The axes, ascending.
    pub fn axes(self) -> Vec<usize> {
        (0..64).filter(|&a| self.contains(a)).collect()
    }
}

impl Node {
    /// Operands, in order.
    pub fn args(&self) -> Vec<NodeId> {
        match *self {
            Node::Input(_) | Node::Const(_) => vec![],
            Node::Unary(_, a) | Node::Cast(a) | Node::Reduce(_, a, _) | Node::View(_, a) => {
                vec![a]
            }
            Node::Binary(_, a, b) => vec![a, b],
            Node::Where(c, a, b) => vec![c, a, b],
        }
    }
}

/// A node with its dtype and shape.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NodeData {
    pub node: Node,
    pub dtype: DType,
    pub shape: Vec<usize>,
}

/// Arena of hash-consed nodes. Operands always have smaller ids than their users.
#[derive(Debug, Clone, Default)]
pub struct Graph {
    nodes: Vec<NodeData>,
    memo: HashMap<NodeData, NodeId>,
    /// The views [`Node::View`] names, interned.
    views: Vec<View>,
}

impl Graph {
    pub fn new() -> Graph {
        Graph::default()
    }
    /// Add a node, or return the id of an equal node already present.
    pub fn add(&mut self, node: Node, dtype: DType, shape: Vec<usize>) -> NodeId {
        let data = NodeData { node, dtype, shape };
        if let Some(id) = self.memo.get(&data) {
            return *id;
        }
        debug_assert!(data
            .node
            .args()
            .iter()
            .all(|a| a.index() < self.nodes.len()));
        let id = NodeId(self.nodes.len() as u32);
        self.nodes.push(data.clone());
        self.memo.insert(data, id);
        id
    }
    /// The number of `view` in this graph (interned: equal views share a number).
    pub fn intern_view(&mut self, view: View) -> u32 {
        if let Some(i) = self.views.iter().position(|v| *v == view) {
            return i as u32;
        }
        self.views.push(view);
        (self.views.len() - 1) as u32
    }
    /// View number `v`.
    pub fn view(&self, v: u32) -> &View {
        &self.views[v as usize]
    }
    pub fn get(&self, id: NodeId) -> &NodeData {
        &self.nodes[id.index()]
    }
    pub fn node(&self, id: NodeId) -> Node {
        self.nodes[id.index()].node
    }
    pub fn dtype(&self, id: NodeId) -> DType {
        self.nodes[id.index()].dtype
    }
    pub fn shape(&self, id: NodeId) -> &[usize] {
        &self.nodes[id.index()].shape
    }
    pub fn len(&self) -> usize {
        self.nodes.len()
    }
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
    /// The constant a node holds, if it is one.
    pub fn as_const(&self, id: NodeId) -> Option<Const> {
        match self.node(id) {
            Node::Const(c) => Some(c),
            _ => None,
        }
    }

    /// Copy the nodes reachable from `roots` into a fresh graph (dead-node removal), returning it
    /// and the new ids of the roots.
    pub fn compact(&self, roots: &[NodeId]) -> (Graph, Vec<NodeId>) {
        let mut live = vec![false; self.nodes.len()];
        let mut stack: Vec<NodeId> = roots.to_vec();
        while let Some(id) = stack.pop() {
            if !live[id.index()] {
                live[id.index()] = true;
                stack.extend(self.node(id).args());
            }
        }
        let mut out = Graph::new();
        out.views = self.views.clone();
        let mut map: Vec<Option<NodeId>> = vec![None; self.nodes.len()];
        for (i, d) in self.nodes.iter().enumerate() {
            if !live[i] {
                continue;
            }
            let m = |a: NodeId| map[a.index()].expect("operands precede users");
            let node = match d.node {
                Node::Input(n) => Node::Input(n),
                Node::Const(c) => Node::Const(c),
                Node::Unary(op, a) => Node::Unary(op, m(a)),
                Node::Binary(op, a, b) => Node::Binary(op, m(a), m(b)),
                Node::Where(c, a, b) => Node::Where(m(c), m(a), m(b)),
                Node::Cast(a) => Node::Cast(m(a)),
                Node::Reduce(op, a, axes) => Node::Reduce(op, m(a), axes),
                Node::View(v, a) => Node::View(v, m(a)),
            };
            map[i] = Some(out.add(node, d.dtype, d.shape.clone()));
        }
        let roots = roots.iter().map(|r| map[r.index()].unwrap()).collect();
        (out, roots)
    }

    /// Number of uses of each node by other nodes.
    pub fn use_counts(&self) -> Vec<u32> {
        let mut uses = vec![0; self.nodes.len()];
        for d in &self.nodes {
            for a in d.node.args() {
                uses[a.index()] += 1;
            }
        }
        uses
    }

    /// Text form, one node per line: `%3 = mul %1, %2 : float64[10]`. `names` labels inputs.
    pub fn to_text(&self, names: &[String]) -> String {
        let mut s = String::new();
        for (i, d) in self.nodes.iter().enumerate() {
            let rhs = match d.node {
                Node::Input(n) => format!(
                    "input {}",
                    names.get(n as usize).map(String::as_str).unwrap_or("?")
                ),
                Node::Const(c) => format!("const {c}"),
                Node::Unary(op, a) => format!("{op} {a}"),
                Node::Binary(op, a, b) => format!("{op} {a}, {b}"),
                Node::Where(c, a, b) => format!("where {c}, {a}, {b}"),
                Node::Cast(a) => format!("cast {a}"),
                Node::View(v, a) => format!("view {a}, {:?}", self.view(v)),
                Node::Reduce(op, a, axes) => {
                    if axes.axes().len() == self.shape(a).len() {
                        format!("{op} {a}")
                    } else {
                        format!("{op} {a}, axis={:?}", axes.axes())
                    }
                }
            };
            s.push_str(&format!("%{i} = {rhs} : {}{:?}\n", d.dtype, d.shape));
        }
        s
    }
}
