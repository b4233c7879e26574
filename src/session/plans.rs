//! The session's plan cache: `compute`, `compute_with` and `compute_many*` on an expression
//! they have seen (the same `Expr` node, bindings of the same names, dtypes and shapes) reuse
//! its plan instead of lowering, optimizing, placing and preparing it again (tens of
//! microseconds), so a repeated call costs about what its kernels do.
//!
//! Entries are keyed by the identity of the expressions' root nodes. An entry holds a weak
//! reference to each root, which keeps the node's address from being reused while the entry
//! lives, so an equal address is the same node. Entries whose expressions are gone are dropped
//! when the next plan is added. A plan holds the data bound inside its expression; plans whose
//! bound data is large ([`MAX_HELD_BYTES`]) are not kept, so the cache never keeps big arrays
//! alive (their kernels run for far longer than planning takes anyway).
use crate::array::ArgView;
use crate::dtype::DType;
use crate::exec::ExecPlan;
use crate::expr::{Expr, Node};
use crate::opt::PlanInput;
use smallvec::SmallVec;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

/// Plans a session keeps.
pub const MAX_SESSION_PLANS: usize = 256;
/// The most bytes of bound data a cached plan may hold.
pub const MAX_HELD_BYTES: usize = 1 << 20;

/// FNV-1a over a list of shapes (rank, then lengths), without allocating.
pub(super) fn hash_shapes<'s>(shapes: impl Iterator<Item = &'s [usize]>) -> u64 {
    let mut h = Fnv::default();
    for s in shapes {
        h.mix(s.len() as u64 | 1 << 63);
        for &d in s {
            h.mix(d as u64);
        }
    }
    h.0
}

/// Whether `have` lists exactly the shapes `shapes` yields.
pub(super) fn same_shapes<'s>(
    have: &[Vec<usize>],
    shapes: impl Iterator<Item = &'s [usize]>,
) -> bool {
    let mut n = 0;
    for (a, b) in have.iter().zip(shapes) {
        if a.as_slice() != b {
            return false;
        }
        n += 1;
    }
    n == have.len()
}

struct Fnv(u64);
impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}
impl Fnv {
    fn mix(&mut self, v: u64) {
        for b in v.to_le_bytes() {
            self.0 ^= b as u64;
            self.0 = self.0.wrapping_mul(0x100_0000_01b3);
        }
    }
}

/// A binding as the cache sees it: name, dtype, shape.
type BindingKey = (String, DType, Vec<usize>);

struct Entry {
    roots: SmallVec<[Weak<Node>; 2]>,
    bindings: Vec<BindingKey>,
    plan: Arc<ExecPlan>,
}

impl Entry {
    fn matches(&self, exprs: &[Expr], bindings: &[(&str, ArgView<'_>)]) -> bool {
        self.roots.len() == exprs.len()
            && self
                .roots
                .iter()
                .zip(exprs)
                .all(|(w, e)| std::ptr::eq(w.as_ptr(), Arc::as_ptr(&e.0)))
            && self.bindings.len() == bindings.len()
            && self
                .bindings
                .iter()
                .zip(bindings)
                .all(|((n, d, s), (m, v))| n == m && *d == v.dtype() && s.as_slice() == v.shape())
    }
    fn alive(&self) -> bool {
        self.roots.iter().all(|w| w.strong_count() > 0)
    }
}

/// Entries by key hash (collisions share a bucket).
type ByKey = HashMap<u64, SmallVec<[Entry; 1]>>;

/// The session's plans, by a hash of the expressions' identities and the bindings.
#[derive(Default)]
pub(super) struct SessionPlans {
    map: Mutex<(ByKey, usize)>,
}

fn key(exprs: &[Expr], bindings: &[(&str, ArgView<'_>)]) -> u64 {
    let mut h = Fnv::default();
    for e in exprs {
        h.mix(Arc::as_ptr(&e.0) as usize as u64);
    }
    for (n, v) in bindings {
        for b in n.bytes() {
            h.mix(b as u64);
        }
        h.mix(v.dtype() as u64);
        h.mix(hash_shapes(std::iter::once(v.shape())));
    }
    h.0
}

impl SessionPlans {
    /// The cached plan for `exprs` with these bindings.
    pub(super) fn get(
        &self,
        exprs: &[Expr],
        bindings: &[(&str, ArgView<'_>)],
    ) -> Option<Arc<ExecPlan>> {
        let k = key(exprs, bindings);
        let map = self.map.lock().ok()?;
        map.0
            .get(&k)?
            .iter()
            .find(|e| e.matches(exprs, bindings))
            .map(|e| e.plan.clone())
    }

    /// Keep `plan` for `exprs` with these bindings (unless it holds large bound data).
    pub(super) fn insert(
        &self,
        exprs: &[Expr],
        bindings: &[(&str, ArgView<'_>)],
        plan: Arc<ExecPlan>,
    ) {
        let held: usize = plan
            .inputs
            .iter()
            .map(|i| match i {
                PlanInput::Data { array, .. } => array.nbytes(),
                PlanInput::Symbol { .. } => 0,
            })
            .sum();
        if held > MAX_HELD_BYTES {
            return;
        }
        let Ok(mut map) = self.map.lock() else {
            return;
        };
        let (by_key, len) = &mut *map;
        // Drop the plans of expressions that are gone (and so the data they hold).
        by_key.retain(|_, v| {
            v.retain(|e| e.alive());
            !v.is_empty()
        });
        *len = by_key.values().map(SmallVec::len).sum();
        if *len >= MAX_SESSION_PLANS {
            by_key.clear();
            *len = 0;
        }
        by_key.entry(key(exprs, bindings)).or_default().push(Entry {
            roots: exprs.iter().map(|e| Arc::downgrade(&e.0)).collect(),
            bindings: bindings
                .iter()
                .map(|(n, v)| (n.to_string(), v.dtype(), v.shape().to_vec()))
                .collect(),
            plan,
        });
        *len += 1;
    }

    /// Forget every plan (the placement inputs changed).
    pub(super) fn clear(&self) {
        if let Ok(mut map) = self.map.lock() {
            map.0.clear();
            map.1 = 0;
        }
    }
}
