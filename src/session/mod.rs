//! The session: the user-facing API. It builds nothing itself; each call walks the pipeline:
//!
//! `compute` = lower + optimize ([`crate::opt`]; tens of microseconds) -> partition into
//! kernels -> place ([`crate::place`]: the pinned device, or `Auto`'s estimate) -> compile each
//! kernel ([`crate::exec::prepare`]; cached by the backend, keyed by the IR's fingerprint) ->
//! run the steps ([`crate::exec::execute`]), keeping temporaries only between the kernels that
//! need them. The plan is kept (`plans.rs`): the same expression with bindings of the same
//! shapes runs it again without planning. `strings.rs` takes numexpr strings from code.
//!
//! [`Compiled`] functions keep their plans by argument shapes; [`DeviceArray`]s keep data on a
//! GPU between calls; [`crate::Explain`] shows a plan without running it.
mod compiled;
mod device;
mod into;
mod plans;
mod strings;

pub use compiled::Compiled;
pub use device::DeviceArray;

use crate::array::{ArgView, DynArray, Element};
use crate::devices::{Devices, Stats};
use crate::error::{Error, Result};
use crate::exec::{self, Buffer, ExecPlan, PlanParts, Residency};
use crate::explain::{self, Explain};
use crate::expr::Expr;
use crate::opt::{self, Partition, PlanInput};
use crate::options::{Device, InvalidCast, Options};
use crate::place::auto::Placer;
use crate::place::{DeviceParams, Residence};
use ndarray::{Array, Dimension};
use smallvec::SmallVec;
use std::collections::HashMap;
use std::sync::Arc;

struct Inner {
    options: Options,
    devices: Devices,
    placer: Placer,
    plans: plans::SessionPlans,
    parsed: strings::Parsed,
}

/// Entry point: build expressions, compute them, compile them. Cheap to clone (shared).
#[derive(Clone)]
pub struct Session {
    inner: Arc<Inner>,
}

impl Default for Session {
    fn default() -> Self {
        Session::new()
    }
}

impl Session {
    /// A session with default [`Options`] (`Device::Auto`, optimized, all cores).
    pub fn new() -> Session {
        Session::with_options(Options::default())
    }
    /// A session with the given options.
    pub fn with_options(options: Options) -> Session {
        Session {
            inner: Arc::new(Inner {
                devices: Devices::new(options.threads),
                options,
                placer: Placer::default(),
                plans: plans::SessionPlans::default(),
                parsed: strings::Parsed::default(),
            }),
        }
    }
    /// The options this session was made with.
    pub fn options(&self) -> &Options {
        &self.inner.options
    }

    /// A named placeholder of the given dtype and shape. [`Session::compute_with`] (and
    /// `explain_with`, `compute_on_device`) binds it to data of this shape
    /// ([`Error::BoundShape`] otherwise); a length of 0 means any length (`&[0]`: any 1-d
    /// array; note that a reduction without identity, such as `max`, of a symbol declared
    /// empty is an error when the expression is built). A [`Compiled`] function is generic over shapes: its
    /// symbols' declared shapes make the first plan, and calls may pass any shapes the
    /// expression accepts.
    pub fn symbol(&self, name: &str, dtype: crate::DType, shape: &[usize]) -> Expr {
        Expr::symbol(name, dtype, shape)
    }
    /// Bind data (any ndarray array; views are copied, owned and shared arrays are not). A
    /// view is copied because the expression owns its data and may outlive the borrow; to
    /// compute on borrowed data without a copy, use a [`Session::symbol`] bound by
    /// [`Session::compute_with`], or [`Session::evaluate`].
    pub fn data(&self, array: impl Into<DynArray>) -> Expr {
        Expr::data(array, None)
    }
    /// Bind data under a name (shown by `Display` and `explain`).
    pub fn named_data(&self, name: &str, array: impl Into<DynArray>) -> Expr {
        Expr::data(array, Some(name))
    }

    /// Counters of what this session did.
    pub fn stats(&self) -> Stats {
        self.inner.devices.stats()
    }

    /// The pinned device plans run on (`Auto` resolves per plan, in placement; here it reads
    /// as the CPU). Opens a pinned GPU.
    fn device(&self) -> Result<Device> {
        match self.inner.options.device {
            Device::Auto | Device::Cpu => Ok(Device::Cpu),
            Device::Gpu(n) => {
                self.inner.devices.gpu(n)?;
                Ok(Device::Gpu(n))
            }
            Device::Reference => Ok(Device::Reference),
        }
    }

    /// Evaluate an expression whose inputs are all bound data.
    pub fn compute(&self, expr: &Expr) -> Result<DynArray> {
        self.compute_with(expr, &[])
    }

    /// Evaluate an expression into a typed ndarray of rank `D` (`Ix1`, `Ix2`, ..., `IxDyn`),
    /// moving the result's buffer (no copy): `let y: Array1<f64> = s.compute_as(&e)?;`.
    /// Another dtype or rank is an error ([`DynArray::into_array`]).
    pub fn compute_as<T: Element, D: Dimension>(&self, expr: &Expr) -> Result<Array<T, D>> {
        self.compute(expr)?.into_array()
    }

    /// Evaluate with symbols bound to arrays (any strides; not copied on the CPU), each of its
    /// symbol's declared shape. An expression computed before with bindings of the same names,
    /// dtypes and shapes reuses its plan (no lowering, no placement: a call costs about what its
    /// kernels do).
    pub fn compute_with(&self, expr: &Expr, bindings: &[(&str, ArgView<'_>)]) -> Result<DynArray> {
        let mut out = self.compute_many_with(std::slice::from_ref(expr), bindings)?;
        Ok(out.swap_remove(0))
    }

    /// Evaluate several expressions together, in as few passes over memory as possible: what
    /// they share is computed once, and independent passes over the same data are fused into
    /// one kernel with several outputs (`min(x)`, `max(x)` and `sum(x)` read `x` once).
    pub fn compute_many(&self, exprs: &[Expr]) -> Result<Vec<DynArray>> {
        self.compute_many_with(exprs, &[])
    }

    /// [`Session::compute_many`] with symbols bound to arrays.
    pub fn compute_many_with(
        &self,
        exprs: &[Expr],
        bindings: &[(&str, ArgView<'_>)],
    ) -> Result<Vec<DynArray>> {
        self.compute_bound(exprs, bindings, true)
    }

    /// [`Session::compute_many_with`]; `strict` checks the declared shapes against the bound
    /// data. Tables pass false: they declare a column's symbol with the whole column's length
    /// and bind it one chunk at a time.
    pub(crate) fn compute_bound(
        &self,
        exprs: &[Expr],
        bindings: &[(&str, ArgView<'_>)],
        strict: bool,
    ) -> Result<Vec<DynArray>> {
        let check = || match strict {
            true => check_declared(exprs, |name| lookup(bindings, name).map(|v| v.shape())),
            false => Ok(()),
        };
        if self.device()? == Device::Reference {
            check()?;
            let map: HashMap<String, DynArray> = bindings
                .iter()
                .map(|(n, v)| Ok((n.to_string(), v.try_to_dyn_array()?)))
                .collect::<Result<_>>()?;
            let (all, checks) = self.with_cast_checks(exprs)?;
            let mut results = all
                .iter()
                .map(|e| crate::reference::evaluate(e, &map))
                .collect::<Result<Vec<_>>>()?;
            let checked = results.split_off(exprs.len());
            for (c, w) in checked.iter().zip(&checks) {
                if c.scalar_f64() != Some(0.0) {
                    return Err(w.clone());
                }
            }
            return Ok(results);
        }
        let plan = match self.inner.plans.get(exprs, bindings) {
            Some(plan) => {
                self.count_reused(&plan);
                plan
            }
            None => {
                check()?;
                let shapes = |name: &str| lookup(bindings, name).map(|v| v.shape().to_vec());
                let plan = Arc::new(self.plan(exprs, &shapes, true)?);
                self.inner.plans.insert(exprs, bindings, plan.clone());
                plan
            }
        };
        let args = bind(&plan.inputs, &names(bindings), |name| {
            lookup(bindings, name).map(|v| Buffer::View(v.reborrow()))
        })?;
        self.run_on_host(&plan, &args)
    }

    /// Count a plan taken from a cache: its kernels were requested and answered from a cache.
    fn count_reused(&self, plan: &ExecPlan) {
        self.inner.devices.record(|st| {
            st.plans_reused += 1;
            st.cache_hits += plan.steps.len() as u64;
        });
    }

    /// Run a plan on host inputs; its results on the host.
    fn run_on_host(&self, plan: &ExecPlan, args: &[Buffer<'_>]) -> Result<Vec<DynArray>> {
        exec::execute(&self.inner.devices, plan, args, Residency::Host)?
            .into_iter()
            .map(|b| self.to_host_buffer(plan, b))
            .collect()
    }

    /// Run a plan on host inputs; its first result on the host.
    fn run_first_on_host(&self, plan: &ExecPlan, args: &[Buffer<'_>]) -> Result<DynArray> {
        let mut results = exec::execute(&self.inner.devices, plan, args, Residency::Host)?;
        if results.is_empty() {
            return Err(Error::InvalidKernel {
                message: "a plan without results".into(),
            });
        }
        self.to_host_buffer(plan, results.swap_remove(0))
    }

    /// A result as a host array (downloading it from the plan's GPU if it is there).
    fn to_host_buffer(&self, plan: &ExecPlan, b: Buffer<'_>) -> Result<DynArray> {
        match b {
            Buffer::Host(a) => Ok(a),
            Buffer::View(v) => v.try_to_dyn_array(),
            Buffer::Gpu(g) => match plan.device {
                Device::Gpu(n) => self.inner.devices.gpu(n)?.download(&g),
                d => Err(Error::Device {
                    message: format!("a GPU result of a plan placed on {d}"),
                }),
            },
        }
    }

    /// Compile `expr` into a function of its symbols (in order of first appearance), callable
    /// on new arrays of the same dtypes, like `numba.vectorize`. Kernels compile now; a call
    /// with new lengths of ranks seen before re-uses the plan with its sizes re-derived (see
    /// [`Compiled`]), other new shapes re-plan (microseconds) but compile nothing, unless
    /// `Auto` places the new shapes on another device (placement here ignores compile time: a
    /// compiled function is meant to be called many times).
    pub fn compile(&self, expr: &Expr) -> Result<Compiled> {
        self.compile_many(std::slice::from_ref(expr))
    }

    /// Compile several expressions into one function of their symbols with one result per
    /// expression ([`Compiled::call_many`]), computed in one plan like
    /// [`Session::compute_many`].
    pub fn compile_many(&self, exprs: &[Expr]) -> Result<Compiled> {
        self.compile_impl(exprs, None)
    }

    fn compile_impl(
        &self,
        exprs: &[Expr],
        params: Option<Vec<(String, crate::DType)>>,
    ) -> Result<Compiled> {
        if exprs.is_empty() {
            return Err(Error::Argument {
                message: "compile needs at least one expression".into(),
            });
        }
        let plan = Arc::new(self.plan(exprs, &|_| None, false)?);
        Ok(Compiled::new(self.clone(), exprs.to_vec(), plan, params))
    }

    /// Lower, optimize, partition, place and compile. `one_shot`: the plan runs once, so
    /// placement counts compile time (a compiled function's placement ignores one-time costs).
    pub(crate) fn plan(
        &self,
        exprs: &[Expr],
        shapes: &dyn Fn(&str) -> Option<Vec<usize>>,
        one_shot: bool,
    ) -> Result<ExecPlan> {
        let inner = &*self.inner;
        let (exprs, checks) = self.with_cast_checks(exprs)?;
        let lowered = opt::lower_many(&exprs, shapes, inner.options.optimize)?;
        let mode = if inner.options.optimize {
            Partition::Fused
        } else {
            Partition::Unfused
        };
        let partitioned = opt::partition(&lowered, mode);
        partitioned.check_sizes()?;
        let rows = partitioned.rows.filter(|_| inner.options.row_form);
        let device = inner.placer.place(
            &inner.devices,
            inner.options.device,
            lowered.inputs.len(),
            &partitioned.steps,
            rows.as_ref(),
            one_shot,
        )?;
        let auto = inner.options.device == Device::Auto;
        let plan = exec::prepare(
            &inner.devices,
            PlanParts {
                inputs: lowered.inputs,
                input_shapes: lowered.input_shapes,
                steps: partitioned.steps,
                results: partitioned.results,
                checks,
                length_constants: lowered.length_constants,
                rows,
            },
            device,
            auto,
        )?;
        inner.devices.record(|st| {
            st.plans += 1;
            if auto {
                match plan.device {
                    Device::Gpu(_) => st.auto_gpu += 1,
                    _ => st.auto_cpu += 1,
                }
            }
        });
        Ok(plan)
    }

    /// `exprs` followed by their cast checks under [`InvalidCast::Raise`], and what each check
    /// checks.
    /// A tree deeper than the planner accepts is refused first (each check prints its cast).
    fn with_cast_checks(&self, exprs: &[Expr]) -> Result<(Vec<Expr>, Vec<Error>)> {
        let mut all = exprs.to_vec();
        let mut what = vec![];
        if self.inner.options.invalid_cast == InvalidCast::Raise {
            if crate::expr::deeper_than(exprs, opt::lower::MAX_DEPTH) {
                return Err(Error::TooDeep {
                    limit: opt::lower::MAX_DEPTH,
                });
            }
            for (check, w) in crate::expr::invalid_cast_checks(exprs) {
                all.push(check);
                what.push(w);
            }
        }
        Ok((all, what))
    }

    /// The plan for `expr` without running it: optimized graph, kernels, the device each runs
    /// on and the estimate for every candidate device, and the bytes a fused and an unfused
    /// evaluation move.
    pub fn explain(&self, expr: &Expr) -> Result<Explain> {
        self.explain_with(expr, &[])
    }

    /// [`Session::explain`] with symbols bound to arrays of the given shapes (on the host).
    pub fn explain_with(&self, expr: &Expr, bindings: &[(&str, ArgView<'_>)]) -> Result<Explain> {
        self.explain_many_with(std::slice::from_ref(expr), bindings)
    }

    /// The plan [`Session::compute_many_with`] would run.
    pub fn explain_many_with(
        &self,
        exprs: &[Expr],
        bindings: &[(&str, ArgView<'_>)],
    ) -> Result<Explain> {
        check_declared(exprs, |name| lookup(bindings, name).map(|v| v.shape()))?;
        let shapes = |name: &str| lookup(bindings, name).map(|v| v.shape().to_vec());
        self.explain_impl(exprs, &shapes, &|_| Residence::Host)
    }

    /// [`Session::explain`] with symbols of the given shapes living where given: what `Auto`
    /// would choose if, say, `x` were already on the GPU (data bound inside the expression is
    /// on the host).
    pub fn explain_placed(
        &self,
        expr: &Expr,
        inputs: &[(&str, &[usize], Residence)],
    ) -> Result<Explain> {
        let find = |name: &str| inputs.iter().find(|(n, _, _)| *n == name);
        let shapes = |name: &str| find(name).map(|(_, s, _)| s.to_vec());
        self.explain_impl(std::slice::from_ref(expr), &shapes, &|name| {
            find(name).map_or(Residence::Host, |(_, _, r)| *r)
        })
    }

    /// The plan of `exprs` with every symbol of `shapes`' shape (on the host): a table's
    /// per-chunk plan.
    pub(crate) fn explain_shaped(
        &self,
        exprs: &[Expr],
        shapes: &dyn Fn(&str) -> Option<Vec<usize>>,
    ) -> Result<Explain> {
        self.explain_impl(exprs, shapes, &|_| Residence::Host)
    }

    fn explain_impl(
        &self,
        exprs: &[Expr],
        shapes: &dyn Fn(&str) -> Option<Vec<usize>>,
        residence: &dyn Fn(&str) -> Residence,
    ) -> Result<Explain> {
        let (exprs, _) = self.with_cast_checks(exprs)?;
        let cx = explain::Context {
            options: &self.inner.options,
            devices: &self.inner.devices,
            placer: &self.inner.placer,
        };
        explain::build(&cx, &exprs, shapes, residence)
    }

    /// Use `params` for `device` (`Device::Cpu` or `Device::Gpu(n)`) instead of measuring it:
    /// for tools that calibrate elsewhere, and for tests that need a known machine. A GPU given
    /// here is a candidate of `Auto` even without an adapter (running on it then fails and
    /// falls back to the CPU). The parameters are outside semver
    /// (`fusebox::unstable::place::DeviceParams`).
    #[doc(hidden)]
    pub fn set_device_params(&self, device: Device, params: DeviceParams) -> Result<()> {
        self.inner.plans.clear();
        self.inner.placer.set_params(device, params)
    }

    /// Simulate a failure of GPU `index` (opened if needed). Test support.
    #[doc(hidden)]
    pub fn inject_gpu_fault(&self, index: usize, fault: Option<crate::gpu::Fault>) -> Result<()> {
        self.inner.devices.gpu(index)?.inject_fault(fault);
        Ok(())
    }

    /// Turn subgroup operations in GPU `index`'s reductions on or off (opened if needed; on has
    /// no effect where the adapter lacks them). Test support: both paths on one adapter.
    #[doc(hidden)]
    pub fn set_gpu_subgroups(&self, index: usize, on: bool) -> Result<()> {
        self.inner.devices.gpu(index)?.set_subgroups(on);
        Ok(())
    }
}

/// The value bound to `name`.
fn lookup<'b, T>(bindings: &'b [(&str, T)], name: &str) -> Option<&'b T> {
    bindings.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
}

/// Check that every symbol of `exprs` that `shape_of` binds is bound to data of its declared
/// shape ([`Error::BoundShape`]): the same rank, and each length the declared one, or any
/// length where the declared one is 0. Each node is visited once.
fn check_declared<'b>(
    exprs: &[Expr],
    shape_of: impl Fn(&str) -> Option<&'b [usize]>,
) -> Result<()> {
    use crate::expr::ExprKind;
    let mut seen = std::collections::HashSet::new();
    let mut stack: Vec<&Expr> = exprs.iter().collect();
    while let Some(e) = stack.pop() {
        if !seen.insert(e.ptr_id()) {
            continue;
        }
        match e.kind() {
            ExprKind::Symbol(name) => {
                let declared = &e.meta()?.shape;
                if let Some(found) = shape_of(name) {
                    let fits = found.len() == declared.len()
                        && declared.iter().zip(found).all(|(d, f)| *d == 0 || d == f);
                    if !fits {
                        return Err(Error::BoundShape {
                            name: name.clone(),
                            declared: declared.clone(),
                            found: found.to_vec(),
                        });
                    }
                }
            }
            ExprKind::Data { .. } | ExprKind::Literal(_) => {}
            ExprKind::Unary(_, x)
            | ExprKind::Cast(_, x)
            | ExprKind::Reduce(_, x, _)
            | ExprKind::View(_, x) => stack.push(x),
            ExprKind::Binary(_, a, b) => stack.extend([a, b]),
            ExprKind::Where(c, a, b) => stack.extend([c, a, b]),
        }
    }
    Ok(())
}

/// The names `bindings` binds, in order (for [`Error::UnknownName`]).
fn names<T>(bindings: &[(&str, T)]) -> Vec<String> {
    bindings.iter().map(|(n, _)| n.to_string()).collect()
}

/// Resolve plan inputs to buffers: symbols from `lookup` (checked against their declared
/// dtype), data from the expression. `known` names what `lookup` binds.
fn bind<'a>(
    inputs: &'a [PlanInput],
    known: &[String],
    lookup: impl Fn(&str) -> Option<Buffer<'a>>,
) -> Result<SmallVec<[Buffer<'a>; 4]>> {
    inputs
        .iter()
        .map(|p| match p {
            PlanInput::Data { array, .. } => Ok(Buffer::View(array.view())),
            PlanInput::Symbol { name, dtype } => {
                let v = lookup(name).ok_or_else(|| Error::UnknownName {
                    name: name.clone(),
                    known: known.to_vec(),
                })?;
                let got = match &v {
                    Buffer::View(v) => v.dtype(),
                    Buffer::Host(a) => a.dtype(),
                    Buffer::Gpu(g) => g.dtype(),
                };
                if got != *dtype {
                    return Err(Error::DtypeMismatch {
                        name: name.clone(),
                        expected: *dtype,
                        found: got,
                    });
                }
                Ok(v)
            }
        })
        .collect()
}
