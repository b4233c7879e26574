//! [`Compiled`]: an expression compiled into a function of its symbols (`numba.vectorize`).
use super::{bind, Session};
use crate::array::{ArgView, DynArray};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::exec::{Buffer, ExecPlan};
use crate::expr::Expr;
use crate::opt::PlanInput;
use crate::options::Device;
use smallvec::SmallVec;
use std::sync::{Arc, Mutex};

/// A plan, the argument shapes it was made for, and whether its inputs are the parameters
/// themselves, in order (then a call passes its arguments through as they are).
type PlanByShapes = (Vec<Vec<usize>>, Arc<ExecPlan>, bool);

/// A compiled expression: a function of its symbols.
pub struct Compiled {
    session: Session,
    expr: Expr,
    params: Vec<(String, DType)>,
    /// Plans by argument shapes (most recent first).
    cache: Mutex<Vec<PlanByShapes>>,
}

/// Whether the plan's inputs are exactly the parameters `params`, in order.
fn inputs_are_params(plan: &ExecPlan, params: &[(String, DType)]) -> bool {
    plan.inputs.len() == params.len()
        && plan.inputs.iter().zip(params).all(|(i, (name, dt))| {
            matches!(i, PlanInput::Symbol { name: n, dtype } if n == name && dtype == dt)
        })
}

impl Compiled {
    /// A function of `expr`'s symbols, with its first plan.
    pub(super) fn new(session: Session, expr: Expr, plan: Arc<ExecPlan>) -> Compiled {
        let params = plan
            .inputs
            .iter()
            .filter_map(|p| match p {
                PlanInput::Symbol { name, dtype } => Some((name.clone(), *dtype)),
                PlanInput::Data { .. } => None,
            })
            .collect::<Vec<_>>();
        let shapes = plan.param_shapes.clone();
        let as_given = inputs_are_params(&plan, &params);
        Compiled {
            session,
            expr,
            params,
            cache: Mutex::new(vec![(shapes, plan, as_given)]),
        }
    }

    /// Parameter names and dtypes, in call order.
    pub fn params(&self) -> &[(String, DType)] {
        &self.params
    }
    /// The expression this function computes.
    pub fn expr(&self) -> &Expr {
        &self.expr
    }

    /// Call with one array per parameter, in [`Compiled::params`] order.
    pub fn call(&self, args: &[ArgView<'_>]) -> Result<DynArray> {
        self.run_with(args, |s, plan, inputs| s.run_first_on_host(plan, inputs))
    }

    /// Check `args`, find their plan and bind its inputs, then `run` it.
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
        let mut cache = self.cache.lock().map_err(|_| Error::Argument {
            message: "compiled function poisoned by a panic".into(),
        })?;
        if let Some(p) = cache.iter().find(|(shapes, _, _)| {
            shapes.len() == args.len() && shapes.iter().zip(args).all(|(s, a)| s == a.shape())
        }) {
            return Ok((p.1.clone(), p.2));
        }
        let shapes: Vec<Vec<usize>> = args.iter().map(|a| a.shape().to_vec()).collect();
        let lookup = |name: &str| {
            self.params
                .iter()
                .position(|p| p.0 == name)
                .map(|i| shapes[i].clone())
        };
        let plan = Arc::new(
            self.session
                .plan(std::slice::from_ref(&self.expr), &lookup, false)?,
        );
        let as_given = inputs_are_params(&plan, &self.params);
        cache.insert(0, (shapes, plan.clone(), as_given));
        cache.truncate(8);
        Ok((plan, as_given))
    }
}
