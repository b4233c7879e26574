//! Fusion: partition the graph into kernels, each one loop over its iteration space, and emit
//! their IR.
//!
//! A node is *materialized* (written to memory) when it is a root or a reduction; every other
//! element-wise node is computed inside the kernel of each materialized node that uses it, so a
//! chain of operators reads its inputs once and writes one output, and a reduction reads its
//! producers' inputs and writes nothing but its result (`sum(x*x)`: 8n bytes, not 24n).
//!
//! Plans of several kernels arise when a reduced value feeds back into element-wise work
//! (`(x - mean(x)) / std(x)`): kernels run in dependency order and read earlier results as
//! inputs. An element-wise subexpression used by several kernels (softmax's `exp(x - max(x))`)
//! is either recomputed in each or materialized once; the planner counts the bytes of both
//! choices and records them ([`SharedChoice`], shown by `explain`).
//!
//! Multi-output fusion: kernels with the same iteration space and kind (stores, or reductions
//! over the same axes) that do not depend on each other become one kernel with several outputs,
//! so `min(x)`, `max(x)` and `sum(x)` read `x` once.
//!
//! The unfused partition (Blaze's `optimize=False`, NumPy's way) materializes every operator
//! instead; casts stay inside their consumer, as inside a NumPy ufunc loop.
use super::graph::{Graph, Node, NodeId};
use super::lower::Lowered;
use crate::kir::{Inst, Kernel, KernelBuilder, Output, Value};
use crate::view::View;
use std::collections::{HashMap, HashSet};

/// A buffer a kernel reads: a plan input or an earlier step's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Buf {
    Input(u32),
    /// Result number `t` of the plan (numbered in order of production).
    Temp(u32),
}

/// One kernel launch of a plan.
#[derive(Debug, Clone)]
pub struct Step {
    pub kernel: Kernel,
    /// What each kernel input (`in0`, `in1`, ...) reads.
    pub args: Vec<Buf>,
    /// The shape each input is read as: its graph node's shape (a result is stored
    /// C-contiguous, so a reduction's result can be read with or without its length-1 axes).
    pub arg_shapes: Vec<Vec<usize>>,
    /// Per input, the views it is read through (`None`: as it is): the buffer, with the shape
    /// of the node the views start from, goes through each view in order (a transpose, a
    /// slice, ...), so the kernel reads it with other strides and an offset, never a copy (a
    /// reshape of data that is not C-contiguous excepted). The result has `arg_shapes`' shape.
    pub arg_views: Vec<Option<ArgViews>>,
    /// The iteration space: the outputs' shape for stores, the operand's for reductions.
    pub shape: Vec<usize>,
    /// The axes of `shape` the reductions combine (empty for stores).
    pub reduce_axes: Vec<usize>,
    /// Per output: the graph node it materializes, its result number (`Buf::Temp`), and its
    /// shape (for a reduction with `keepdims`, the length-1 axes are back).
    pub nodes: Vec<NodeId>,
    pub temps: Vec<u32>,
    pub out_shapes: Vec<Vec<usize>>,
}

/// The views one kernel input is read through (see [`Step::arg_views`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ArgViews {
    /// The shape the buffer is read as before the views apply.
    pub base_shape: Vec<usize>,
    /// Applied first to last; only the first may be a reshape.
    pub views: Vec<View>,
}

/// How to partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Partition {
    /// Fuse every element-wise chain into its consumers, and independent passes over the same
    /// iteration space into one kernel.
    Fused,
    /// One kernel per operator, with a temporary each.
    Unfused,
}

/// What the planner did with an element-wise subexpression that several kernels use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedChoice {
    pub node: NodeId,
    /// How many kernels use it.
    pub users: usize,
    /// Bytes the plan moves if each user recomputes it, and if it is materialized once.
    pub bytes_recompute: u64,
    pub bytes_materialize: u64,
    pub materialized: bool,
}

/// A partitioned plan.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Kernels in execution order.
    pub steps: Vec<Step>,
    /// Where each root's value is, in the order of [`Lowered::roots`], and its shape.
    pub results: Vec<(u32, Vec<usize>)>,
    /// The shared-subexpression decisions (fused partition only).
    pub shared: Vec<SharedChoice>,
    /// The same computation as passes over blocks of rows, where every pass of a block reads
    /// the rows while they are in cache ([`super::epilogue`]): offered to the CPU, which runs
    /// it instead of `steps` (the GPU runs `steps`). `None` where the rules do not apply.
    pub rows: Option<super::epilogue::RowPlan>,
}

impl Plan {
    /// Every iteration space, argument and result of the plan fits the address space (checked
    /// before anything multiplies their lengths).
    pub fn check_sizes(&self) -> crate::error::Result<()> {
        for s in &self.steps {
            crate::array::checked_len(&s.shape, 8)?;
            for shape in s.arg_shapes.iter().chain(&s.out_shapes) {
                crate::array::checked_len(shape, 8)?;
            }
        }
        Ok(())
    }
}

/// Partition `l` into kernels (and, fused, offer the row form of [`super::epilogue`]).
pub fn partition(l: &Lowered, mode: Partition) -> Plan {
    let mut plan = partition_with(l, mode, false);
    if mode == Partition::Fused {
        plan.rows = super::epilogue::row_plan(l);
    }
    plan
}

/// Partition `l` into kernels; `share_all`: materialize every element-wise subexpression that
/// several kernels use and that computes a transcendental function (free when the kernels run
/// over one block of rows in cache; cheap arithmetic is recomputed), instead of weighing the
/// bytes.
pub(super) fn partition_with(l: &Lowered, mode: Partition, share_all: bool) -> Plan {
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
    for r in &l.roots {
        materialized[r.index()] = true;
    }
    // A view reads a buffer: its operand is an input, another view (read through both), or a
    // node materialized for it. A reshape reads C-order data, so the view under it is
    // materialized too (NumPy copies there as well).
    for i in 0..g.len() {
        if let Node::View(v, a) = g.node(NodeId(i as u32)) {
            let under_reshape = g.view(v).needs_contiguous();
            match g.node(a) {
                Node::Input(_) => {}
                Node::View(..) if !under_reshape => {}
                _ => materialized[a.index()] = true,
            }
        }
    }
    let live = live_nodes(g, &l.roots);
    let shared = if mode == Partition::Fused {
        choose_shared(l, &live, &mut materialized, share_all)
    } else {
        vec![]
    };

    // A reduction equal to an earlier one but for `keepdims` reads the earlier one's result.
    let mut canon: HashMap<NodeId, NodeId> = HashMap::new();
    let mut by_key: HashMap<Node, NodeId> = HashMap::new();
    for i in 0..g.len() {
        let id = NodeId(i as u32);
        if live[i] && materialized[i] {
            if let n @ Node::Reduce(..) = g.node(id) {
                let first = *by_key.entry(n).or_insert(id);
                canon.insert(id, first);
            }
        }
    }
    let canon_of = |id: NodeId| canon.get(&id).copied().unwrap_or(id);

    // Group materialized nodes into kernels, in id (= dependency) order.
    let mut groups: Vec<Vec<NodeId>> = vec![];
    for i in 0..g.len() {
        let id = NodeId(i as u32);
        if !live[i] || !materialized[i] || canon_of(id) != id {
            continue;
        }
        let joins = mode == Partition::Fused
            && groups.last().is_some_and(|last| {
                compatible(g, last[0], id) && {
                    let deps = body_deps(g, id, &materialized);
                    last.iter()
                        .all(|m| !deps.iter().any(|d| canon_of(*d) == *m))
                }
            });
        match groups.last_mut() {
            Some(last) if joins => last.push(id),
            _ => groups.push(vec![id]),
        }
    }

    let mut temp_of: HashMap<NodeId, u32> = HashMap::new();
    let mut steps = Vec::with_capacity(groups.len());
    let mut next_temp = 0u32;
    for group in &groups {
        let step = emit_group(g, group, &materialized, &temp_of, &canon_of, &mut next_temp);
        for (n, t) in step.nodes.iter().zip(&step.temps) {
            temp_of.insert(*n, *t);
        }
        steps.push(step);
    }
    let results = l
        .roots
        .iter()
        .map(|r| (temp_of[&canon_of(*r)], g.shape(*r).to_vec()))
        .collect();
    Plan {
        steps,
        results,
        shared,
        rows: None,
    }
}

/// Nodes reachable from the roots.
fn live_nodes(g: &Graph, roots: &[NodeId]) -> Vec<bool> {
    let mut live = vec![false; g.len()];
    let mut stack = roots.to_vec();
    while let Some(n) = stack.pop() {
        if !live[n.index()] {
            live[n.index()] = true;
            stack.extend(g.node(n).args());
        }
    }
    live
}

/// Whether two materialized nodes can share a kernel: same iteration space and same kind.
fn compatible(g: &Graph, a: NodeId, b: NodeId) -> bool {
    let space = |n: NodeId| match g.node(n) {
        Node::Reduce(_, x, axes) => (g.shape(x).to_vec(), Some(axes)),
        _ => (g.shape(n).to_vec(), None),
    };
    space(a) == space(b)
}

/// The operand a materialized node's kernel body starts from.
fn body_root(g: &Graph, id: NodeId) -> NodeId {
    match g.node(id) {
        Node::Reduce(_, a, _) => a,
        _ => id,
    }
}

/// The leaves a kernel body reads (inputs and materialized nodes), walking from `start`
/// through element-wise nodes.
fn leaves_from(g: &Graph, start: NodeId, materialized: &[bool]) -> Vec<NodeId> {
    let mut out = vec![];
    let mut seen = HashSet::new();
    let mut stack = vec![start];
    let mut first = true;
    while let Some(n) = stack.pop() {
        if !seen.insert(n) {
            continue;
        }
        match g.node(n) {
            Node::Input(_) => out.push(n),
            Node::Const(_) => {}
            Node::View(..) if first || !materialized[n.index()] => {
                out.push(view_base(g, n, materialized).0)
            }
            _ if !first && materialized[n.index()] => out.push(n),
            node => stack.extend(node.args()),
        }
        first = false;
    }
    out
}

/// The materialized nodes (and inputs) the kernel of `id` reads.
fn body_deps(g: &Graph, id: NodeId, materialized: &[bool]) -> Vec<NodeId> {
    let root = body_root(g, id);
    if root != id && materialized[root.index()] {
        return vec![root];
    }
    leaves_from(g, root, materialized)
}

/// The buffer a (not materialized) view node reads, and its views from the innermost out:
/// down the chain of views to an input or a materialized node.
fn view_base(g: &Graph, id: NodeId, materialized: &[bool]) -> (NodeId, Vec<u32>) {
    let mut views = vec![];
    let mut cur = id;
    while let Node::View(v, a) = g.node(cur) {
        views.push(v);
        cur = a;
        if materialized[a.index()] {
            break;
        }
    }
    views.reverse();
    (cur, views)
}

fn node_bytes(g: &Graph, n: NodeId) -> u64 {
    (g.shape(n).iter().product::<usize>() * g.dtype(n).size()) as u64
}

/// For each element-wise node that several kernels compute, compare the bytes of recomputing
/// it in each against materializing it once, outermost candidates first; materialize where
/// that moves fewer bytes (with `share_all`: where it computes a transcendental).
fn choose_shared(
    l: &Lowered,
    live: &[bool],
    materialized: &mut [bool],
    share_all: bool,
) -> Vec<SharedChoice> {
    let g = &l.graph;
    let mut choices = vec![];
    for i in (0..g.len()).rev() {
        let cand = NodeId(i as u32);
        if !live[i]
            || materialized[i]
            || matches!(g.node(cand), Node::Input(_) | Node::Const(_))
            || g.shape(cand).is_empty()
        {
            continue;
        }
        // The kernels whose bodies contain the candidate.
        let kernels: Vec<NodeId> = (0..g.len())
            .map(|k| NodeId(k as u32))
            .filter(|&k| live[k.index()] && materialized[k.index()])
            .filter(|&k| {
                let start = body_root(g, k);
                // A reduction of a materialized operand only loads it.
                (start == k || !materialized[start.index()])
                    && body_contains(g, start, cand, materialized)
            })
            .collect();
        if kernels.len() < 2 {
            continue;
        }
        let leaf_bytes = |ls: &[NodeId]| ls.iter().map(|&n| node_bytes(g, n)).sum::<u64>();
        let recompute: u64 = kernels
            .iter()
            .map(|&k| leaf_bytes(&body_deps(g, k, materialized)))
            .sum();
        materialized[i] = true;
        let with: u64 = kernels
            .iter()
            .map(|&k| leaf_bytes(&body_deps(g, k, materialized)))
            .sum::<u64>()
            + leaf_bytes(&leaves_from(g, cand, materialized))
            + node_bytes(g, cand);
        let materialize = if share_all {
            computes_transcendental(g, cand, materialized)
        } else {
            with < recompute
        };
        materialized[i] = materialize;
        choices.push(SharedChoice {
            node: cand,
            users: kernels.len(),
            bytes_recompute: recompute,
            bytes_materialize: with,
            materialized: materialize,
        });
    }
    choices.reverse();
    choices
}

/// Whether computing `start` (down to materialized nodes) evaluates a transcendental
/// function (`exp`, `log`, `sqrt`, ..., `**`, `arctan2`, `hypot`).
fn computes_transcendental(g: &Graph, start: NodeId, materialized: &[bool]) -> bool {
    use crate::ops::BinaryOp;
    let mut seen = HashSet::new();
    let mut stack = vec![start];
    while let Some(n) = stack.pop() {
        if (n != start && materialized[n.index()]) || !seen.insert(n) {
            continue;
        }
        match g.node(n) {
            Node::Unary(op, _) if op.is_transcendental() => return true,
            Node::Binary(BinaryOp::Pow | BinaryOp::Arctan2 | BinaryOp::Hypot, ..) => return true,
            Node::Reduce(..) => {}
            node => stack.extend(node.args()),
        }
    }
    false
}

/// Whether the kernel body starting at `start` computes `target` (without crossing a
/// materialized node).
fn body_contains(g: &Graph, start: NodeId, target: NodeId, materialized: &[bool]) -> bool {
    if start < target {
        return false;
    }
    let mut seen = HashSet::new();
    let mut stack = vec![start];
    let mut first = true;
    while let Some(n) = stack.pop() {
        if n == target {
            return true;
        }
        let stop = !first && materialized[n.index()];
        first = false;
        if stop || !seen.insert(n) {
            continue;
        }
        stack.extend(g.node(n).args().into_iter().filter(|a| *a >= target));
    }
    false
}

struct Emitter<'a> {
    g: &'a Graph,
    materialized: &'a [bool],
    temp_of: &'a HashMap<NodeId, u32>,
    canon_of: &'a dyn Fn(NodeId) -> NodeId,
    b: KernelBuilder,
    args: Vec<Buf>,
    arg_shapes: Vec<Vec<usize>>,
    arg_views: Vec<Option<ArgViews>>,
    memo: HashMap<NodeId, Value>,
    /// The nodes this kernel computes as outputs (everything else materialized is loaded).
    body_roots: Vec<NodeId>,
}

impl Emitter<'_> {
    fn load(&mut self, buf: Buf, id: NodeId) -> Value {
        let input = self.b.input(self.g.dtype(id));
        self.args.push(buf);
        self.arg_shapes.push(self.g.shape(id).to_vec());
        self.arg_views.push(None);
        self.b.push(Inst::Load { input }, self.g.dtype(id))
    }

    /// Load view node `id`: its base buffer, read through the chain of views.
    fn load_view(&mut self, id: NodeId) -> Value {
        let (base, views) = view_base(self.g, id, self.materialized);
        let buf = match self.g.node(base) {
            Node::Input(n) => Buf::Input(n),
            _ => Buf::Temp(self.temp_of[&(self.canon_of)(base)]),
        };
        let v = self.load(buf, id);
        *self.arg_views.last_mut().expect("load pushed one") = Some(ArgViews {
            base_shape: self.g.shape(base).to_vec(),
            views: views.iter().map(|&v| self.g.view(v).clone()).collect(),
        });
        v
    }

    fn emit(&mut self, id: NodeId) -> Value {
        if let Some(v) = self.memo.get(&id) {
            return *v;
        }
        let ty = self.g.dtype(id);
        let v = match self.g.node(id) {
            Node::Input(n) => self.load(Buf::Input(n), id),
            _ if !self.body_roots.contains(&id) && self.materialized[id.index()] => {
                let t = self.temp_of[&(self.canon_of)(id)];
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
            Node::View(..) => self.load_view(id),
            Node::Reduce(..) => unreachable!("reductions are always materialized"),
        };
        self.memo.insert(id, v);
        v
    }
}

/// One kernel computing every node of `group` (one output each).
fn emit_group(
    g: &Graph,
    group: &[NodeId],
    materialized: &[bool],
    temp_of: &HashMap<NodeId, u32>,
    canon_of: &dyn Fn(NodeId) -> NodeId,
    next_temp: &mut u32,
) -> Step {
    // Stores compute their own node; reductions compute (or load) their operand.
    let body_roots: Vec<NodeId> = group
        .iter()
        .copied()
        .filter(|&id| !matches!(g.node(id), Node::Reduce(..)))
        .collect();
    let mut e = Emitter {
        g,
        materialized,
        temp_of,
        canon_of,
        b: KernelBuilder::new(),
        args: vec![],
        arg_shapes: vec![],
        arg_views: vec![],
        memo: HashMap::new(),
        body_roots,
    };
    let mut outputs = Vec::with_capacity(group.len());
    for &id in group {
        let value = e.emit(body_root(g, id));
        outputs.push(match g.node(id) {
            Node::Reduce(op, _, _) => Output::Reduce { op, value },
            _ => Output::Store { value },
        });
    }
    let reduce_axes = match g.node(group[0]) {
        Node::Reduce(_, _, axes) => axes.axes(),
        _ => vec![],
    };
    let temps = (0..group.len())
        .map(|_| {
            *next_temp += 1;
            *next_temp - 1
        })
        .collect();
    Step {
        kernel: e.b.finish_many(outputs),
        args: e.args,
        arg_shapes: e.arg_shapes,
        arg_views: e.arg_views,
        shape: g.shape(body_root(g, group[0])).to_vec(),
        reduce_axes,
        nodes: group.to_vec(),
        temps,
        out_shapes: group.iter().map(|&n| g.shape(n).to_vec()).collect(),
    }
}
