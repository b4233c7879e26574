//! [`Compiled`]: expressions compiled into a function of their symbols (`numba.vectorize`).
//!
//! A compiled function keeps one plan per distinct set of argument shapes, in a hash map keyed
//! by the shapes (no allocation on a hit), so calls cycling through many lengths stay on the
//! hot path. The map holds up to [`MAX_PLANS`] plans and starts over when full.
//!
//! A shape it has not seen does not plan again when a plan of the same *skeleton* exists: the
//! same ranks, the same dims of length 0 and 1 (broadcasting and empty arrays depend on them),
//! the same pattern of equal lengths (the planner compares lengths to fuse passes over one
//! iteration space and to broadcast), and the same dims pinned to the length of data bound in
//! the expressions. The kernels are length-generic (the loop bounds are arguments), so the
//! skeleton's steps and compiled kernels are reused with every length re-derived
//! (`exec::resized_steps`; `Stats::plans_resized` counts it): no lowering, no optimizing, no
//! compiling. Only placement is asked again (under `Auto` a longer array may belong on the
//! GPU; then it plans afresh). A plan whose kernels embed a length (the count of a `mean`) or
//! read through views (strides and offsets resolved for one shape) is not length-generic and
//! plans once per shape.
use super::plans::{hash_shapes, same_shapes};
use super::{bind, Session};
use crate::array::{ArgView, DynArray, Element};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::exec::{Buffer, ExecPlan};
use crate::expr::Expr;
use crate::opt::PlanInput;
use crate::options::Device;
use ndarray::{Array, Dimension};
use smallvec::SmallVec;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Plans a compiled function keeps (one per distinct argument shapes).
pub const MAX_PLANS: usize = 1024;

/// A plan, the argument shapes it was made for, and whether its inputs are the parameters
/// themselves, in order (then a call passes its arguments through as they are).
struct Entry {
    shapes: Vec<Vec<usize>>,
    plan: Arc<ExecPlan>,
    as_given: bool,
}

/// Skeletons a compiled function keeps (one per distinct skeleton of argument shapes).
pub const MAX_SKELETONS: usize = 64;

/// A length-generic plan, the argument shapes it was made for, and their skeleton.
struct Skeleton {
    signature: Vec<u64>,
    shapes: Vec<Vec<usize>>,
    plan: Arc<ExecPlan>,
    as_given: bool,
}

/// Plans by a hash of the argument shapes, and length-generic plans by skeleton.
#[derive(Default)]
struct Plans {
    by_hash: HashMap<u64, SmallVec<[Entry; 1]>>,
    len: usize,
    skeletons: Vec<Skeleton>,
}

/// The skeleton of argument shapes, in parameter order: per argument its rank, then per dim
/// its length if that is 0 or 1, or pinned to its length if data bound in the expressions has
/// a dim of that length (`pinned`), or else the position of the first dim of any argument with
/// the same length (so two argument shapes have the same skeleton when they agree on ranks,
/// lengths 0 and 1, pinned lengths, and which lengths are equal).
fn signature<'s>(shapes: impl Iterator<Item = &'s [usize]>, pinned: &[usize]) -> Vec<u64> {
    const RANK: u64 = 1 << 63;
    const PINNED: u64 = 1 << 62;
    const CLASS: u64 = 1 << 61;
    let mut sig = vec![];
    let mut seen: SmallVec<[usize; 8]> = SmallVec::new();
    for s in shapes {
        sig.push(RANK | s.len() as u64);
        for &d in s {
            sig.push(if d <= 1 {
                d as u64
            } else if pinned.contains(&d) {
                PINNED | d as u64
            } else if let Some(i) = seen.iter().position(|&e| e == d) {
                CLASS | i as u64
            } else {
                seen.push(d);
                CLASS | (seen.len() - 1) as u64
            });
        }
    }
    sig
}

/// The lengths (other than 0 and 1) of the dims of data bound in the plan's expressions.
fn data_lengths(plan: &ExecPlan) -> Vec<usize> {
    let mut v: Vec<usize> = plan
        .inputs
        .iter()
        .filter_map(|p| match p {
            PlanInput::Data { array, .. } => Some(array.shape().to_vec()),
            PlanInput::Symbol { .. } => None,
        })
        .flatten()
        .filter(|&d| d > 1)
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// Compiled expressions: a function of their symbols, with one result per expression.
pub struct Compiled {
    session: Session,
    exprs: Vec<Expr>,
    params: Vec<(String, DType)>,
    /// Lengths of the data bound in the expressions ([`signature`] pins them).
    pinned: Vec<usize>,
    cache: Mutex<Plans>,
}

/// Whether the plan's inputs are exactly the parameters `params`, in order.
fn inputs_are_params(plan: &ExecPlan, params: &[(String, DType)]) -> bool {
    plan.inputs.len() == params.len()
        && plan.inputs.iter().zip(params).all(|(i, (name, dt))| {
            matches!(i, PlanInput::Symbol { name: n, dtype } if n == name && dtype == dt)
        })
}

impl Compiled {
    /// A function of `exprs`' symbols with its first plan: parameters in the order given, or
    /// in order of first appearance in the plan.
    pub(super) fn new(
        session: Session,
        exprs: Vec<Expr>,
        plan: Arc<ExecPlan>,
        params: Option<Vec<(String, DType)>>,
    ) -> Compiled {
        let params = params.unwrap_or_else(|| {
            plan.inputs
                .iter()
                .filter_map(|p| match p {
                    PlanInput::Symbol { name, dtype } => Some((name.clone(), *dtype)),
                    PlanInput::Data { .. } => None,
                })
                .collect()
        });
        let as_given = inputs_are_params(&plan, &params);
        let pinned = data_lengths(&plan);
        let mut plans = Plans::default();
        // The first plan was made for the declared shapes; it is keyed by them when every
        // parameter is a plan input (else the first call plans for its shapes).
        let symbols: Vec<&str> = plan
            .inputs
            .iter()
            .filter_map(|p| match p {
                PlanInput::Symbol { name, .. } => Some(name.as_str()),
                PlanInput::Data { .. } => None,
            })
            .collect();
        let shapes: Option<Vec<Vec<usize>>> = params
            .iter()
            .map(|(n, _)| {
                let i = symbols.iter().position(|s| s == n)?;
                plan.param_shapes.get(i).cloned()
            })
            .collect();
        if let Some(shapes) = shapes {
            plans.insert(shapes, plan, as_given, &pinned);
        }
        Compiled {
            session,
            exprs,
            params,
            pinned,
            cache: Mutex::new(plans),
        }
    }

    /// Parameter names and dtypes, in call order.
    pub fn params(&self) -> &[(String, DType)] {
        &self.params
    }
    /// The (first) expression this function computes.
    pub fn expr(&self) -> &Expr {
        &self.exprs[0]
    }
    /// Every expression this function computes, in result order.
    pub fn exprs(&self) -> &[Expr] {
        &self.exprs
    }

    /// Call with one array per parameter, in [`Compiled::params`] order: the first result.
    pub fn call(&self, args: &[ArgView<'_>]) -> Result<DynArray> {
        self.run(args, |plan, inputs| {
            self.session.run_first_on_host(plan, inputs)
        })
    }

    /// [`Compiled::call`] into a typed ndarray of rank `D`, moving the result (no copy).
    pub fn call_as<T: Element, D: Dimension>(&self, args: &[ArgView<'_>]) -> Result<Array<T, D>> {
        self.call(args)?.into_array()
    }

    /// Call a function of several expressions: one result per expression, computed in one plan
    /// (shared subexpressions once, passes over the same data fused).
    pub fn call_many(&self, args: &[ArgView<'_>]) -> Result<Vec<DynArray>> {
        self.run(args, |plan, inputs| self.session.run_on_host(plan, inputs))
    }

    /// Check the arguments, find (or make) the plan for their shapes, bind them and hand both
    /// to `f`.
    fn run<R>(
        &self,
        args: &[ArgView<'_>],
        f: impl FnOnce(&ExecPlan, &[Buffer<'_>]) -> Result<R>,
    ) -> Result<R> {
        self.run_with(args, |_, plan, inputs| f(plan, inputs))
    }

    /// Check `args`, find their plan and bind its inputs, then `run` it with the session.
    pub(super) fn run_with<R>(
        &self,
        args: &[ArgView<'_>],
        run: impl FnOnce(&Session, &ExecPlan, &[Buffer<'_>]) -> Result<R>,
    ) -> Result<R> {
        if args.len() != self.params.len() {
            return Err(Error::ArgumentCount {
                expected: self.params.len(),
                found: args.len(),
                params: self.params.iter().map(|p| p.0.clone()).collect(),
            });
        }
        for ((name, dt), a) in self.params.iter().zip(args) {
            if a.dtype() != *dt {
                return Err(Error::DtypeMismatch {
                    name: name.clone(),
                    expected: *dt,
                    found: a.dtype(),
                });
            }
        }
        let (plan, as_given) = self.plan_for(args)?;
        let inputs: SmallVec<[Buffer<'_>; 4]> = if as_given {
            args.iter().map(|a| Buffer::View(a.reborrow())).collect()
        } else {
            let known: Vec<String> = self.params.iter().map(|p| p.0.clone()).collect();
            bind(&plan.inputs, &known, |name| {
                let i = self.params.iter().position(|p| p.0 == name)?;
                Some(Buffer::View(args[i].reborrow()))
            })?
        };
        run(&self.session, &plan, &inputs)
    }

    /// The device a call with these arguments runs on (`Auto` decides per argument shapes).
    pub fn placement(&self, args: &[ArgView<'_>]) -> Result<Device> {
        Ok(self.plan_for(args)?.0.device)
    }

    /// The plan for arguments of these shapes, and whether its inputs are the parameters in
    /// order: a plan made for these shapes, else a plan of the same skeleton with its lengths
    /// re-derived, else a new plan.
    fn plan_for(&self, args: &[ArgView<'_>]) -> Result<(Arc<ExecPlan>, bool)> {
        let key = hash_shapes(args.iter().map(|a| a.shape()));
        let resized = {
            let cache = self.lock()?;
            if let Some(e) = cache.find(key, args) {
                let found = (e.plan.clone(), e.as_given);
                drop(cache);
                self.session.count_reused(&found.0);
                return Ok(found);
            }
            let sig = signature(args.iter().map(|a| a.shape()), &self.pinned);
            cache
                .skeletons
                .iter()
                .find(|k| k.signature == sig)
                .map(|k| (k.plan.clone(), k.shapes.clone(), k.as_given))
        };
        let shapes: Vec<Vec<usize>> = args.iter().map(|a| a.shape().to_vec()).collect();
        if let Some((skeleton, old, as_given)) = resized {
            if let Some(plan) = self.resize(&skeleton, &old, &shapes)? {
                let plan = Arc::new(plan);
                self.lock()?
                    .insert(shapes, plan.clone(), as_given, &self.pinned);
                return Ok((plan, as_given));
            }
        }
        let lookup = |name: &str| {
            self.params
                .iter()
                .position(|p| p.0 == name)
                .map(|i| shapes[i].clone())
        };
        let plan = Arc::new(self.session.plan(&self.exprs, &lookup, false)?);
        let as_given = inputs_are_params(&plan, &self.params);
        self.lock()?
            .insert(shapes, plan.clone(), as_given, &self.pinned);
        Ok((plan, as_given))
    }

    /// `skeleton` (made for argument shapes `old`) for arguments of `new` shapes of the same
    /// [`signature`]: its steps and kernels with the lengths re-derived, if it is
    /// length-generic and placement picks the same device for the new lengths.
    fn resize(
        &self,
        skeleton: &ExecPlan,
        old: &[Vec<usize>],
        new: &[Vec<usize>],
    ) -> Result<Option<ExecPlan>> {
        // Same signature: equal old lengths have equal new ones, so the first old dim of a
        // length gives its new length; 0, 1 and pinned lengths stay. A length of the plan
        // that no argument has (only data's, when the plan is length-generic) stays too.
        let lengths = |d: usize| -> Option<usize> {
            if d <= 1 {
                return Some(d);
            }
            let at = old
                .iter()
                .zip(new)
                .find_map(|(o, n)| o.iter().position(|&e| e == d).map(|i| n[i]));
            match at {
                Some(n) => Some(n),
                None if self.pinned.contains(&d) => Some(d),
                None => None,
            }
        };
        let Some(r) = crate::exec::resized_steps(skeleton, &lengths) else {
            return Ok(None);
        };
        for s in &r.steps {
            for shape in std::iter::once(&s.shape)
                .chain(&s.arg_shapes)
                .chain(&s.out_shapes)
            {
                crate::array::checked_len(shape, 8)?;
            }
        }
        let inner = &*self.session.inner;
        let device = inner.placer.place(
            &inner.devices,
            inner.options.device,
            skeleton.inputs.len(),
            &r.steps,
            // Only a plan without a row form is resized (`ExecPlan::length_generic`).
            None,
            false,
        )?;
        if device != skeleton.device {
            return Ok(None);
        }
        let plan = crate::exec::with_steps(skeleton, r);
        inner.devices.record(|st| {
            st.plans_resized += 1;
            st.cache_hits += plan.steps.len() as u64;
        });
        Ok(Some(plan))
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Plans>> {
        self.cache.lock().map_err(|_| Error::Argument {
            message: "compiled function poisoned by a panic".into(),
        })
    }
}

impl Plans {
    fn find(&self, key: u64, args: &[ArgView<'_>]) -> Option<&Entry> {
        self.by_hash.get(&key)?.iter().find(|e| {
            e.shapes.len() == args.len() && same_shapes(&e.shapes, args.iter().map(|a| a.shape()))
        })
    }

    /// Keep `plan` for these shapes, and as the skeleton of their signature if it is the
    /// first length-generic plan of it.
    fn insert(
        &mut self,
        shapes: Vec<Vec<usize>>,
        plan: Arc<ExecPlan>,
        as_given: bool,
        pinned: &[usize],
    ) {
        if self.len >= MAX_PLANS {
            self.by_hash.clear();
            self.len = 0;
        }
        if plan.length_generic {
            let sig = signature(shapes.iter().map(Vec::as_slice), pinned);
            if !self.skeletons.iter().any(|k| k.signature == sig) {
                if self.skeletons.len() >= MAX_SKELETONS {
                    self.skeletons.clear();
                }
                self.skeletons.push(Skeleton {
                    signature: sig,
                    shapes: shapes.clone(),
                    plan: plan.clone(),
                    as_given,
                });
            }
        }
        let key = hash_shapes(shapes.iter().map(Vec::as_slice));
        self.by_hash.entry(key).or_default().push(Entry {
            shapes,
            plan,
            as_given,
        });
        self.len += 1;
    }
}
