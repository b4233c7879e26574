//! [`Compiled`]: expressions compiled into a function of their symbols (`numba.vectorize`).
//!
//! A compiled function keeps one plan per distinct set of argument shapes, in a hash map keyed
//! by the shapes (no allocation on a hit), so calls cycling through many lengths stay on the
//! hot path: each new shape re-plans once (microseconds; the kernels come from the backend's
//! cache, nothing compiles), then hits. The map holds up to [`MAX_PLANS`] plans and starts over
//! when full.
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

/// Plans by a hash of the argument shapes.
#[derive(Default)]
struct Plans {
    by_hash: HashMap<u64, SmallVec<[Entry; 1]>>,
    len: usize,
}

/// Compiled expressions: a function of their symbols, with one result per expression.
pub struct Compiled {
    session: Session,
    exprs: Vec<Expr>,
    params: Vec<(String, DType)>,
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
            plans.insert(shapes, plan, as_given);
        }
        Compiled {
            session,
            exprs,
            params,
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
    /// order.
    fn plan_for(&self, args: &[ArgView<'_>]) -> Result<(Arc<ExecPlan>, bool)> {
        let key = hash_shapes(args.iter().map(|a| a.shape()));
        {
            let cache = self.lock()?;
            if let Some(e) = cache.find(key, args) {
                let found = (e.plan.clone(), e.as_given);
                drop(cache);
                self.session.count_reused(&found.0);
                return Ok(found);
            }
        }
        let shapes: Vec<Vec<usize>> = args.iter().map(|a| a.shape().to_vec()).collect();
        let lookup = |name: &str| {
            self.params
                .iter()
                .position(|p| p.0 == name)
                .map(|i| shapes[i].clone())
        };
        let plan = Arc::new(self.session.plan(&self.exprs, &lookup, false)?);
        let as_given = inputs_are_params(&plan, &self.params);
        self.lock()?.insert(shapes, plan.clone(), as_given);
        Ok((plan, as_given))
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

    fn insert(&mut self, shapes: Vec<Vec<usize>>, plan: Arc<ExecPlan>, as_given: bool) {
        if self.len >= MAX_PLANS {
            self.by_hash.clear();
            self.len = 0;
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
