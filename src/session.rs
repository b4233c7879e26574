//! The session: owns device choice, backends, kernel caches and counters, and runs plans.
//!
//! `compute` = lower + optimize (cached by nothing: microseconds) -> partition into kernels ->
//! compile each kernel (cached by the backend, keyed by the IR's fingerprint) -> run the steps,
//! keeping temporaries only between the kernels that need them.
use crate::array::{ArgView, DynArray};
use crate::cost::{self, DeviceEstimate, DeviceParams, Estimate, Mode, Residence, Target};
use crate::cpu::{CpuBackend, CpuKernel};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::expr::Expr;
use crate::fmt::{human_bytes, human_time};
use crate::gpu::{GpuArray, GpuBackend, GpuKernel};
use crate::opt::{self, Buf, Lowered, Partition, PlanInput, Step};
use smallvec::SmallVec;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Where plans run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Device {
    /// Let fusebox choose per plan: the device with the lowest estimated time, data movement
    /// included (see [`crate::cost`]). The CPU when no GPU adapter exists.
    #[default]
    Auto,
    /// The Cranelift JIT on the host.
    Cpu,
    /// GPU adapter number `n` (as listed by `fusebox devices`).
    Gpu(usize),
    /// The reference evaluator: plain ndarray, one operator at a time (the tests' oracle).
    Reference,
}

impl Device {
    /// Parse `auto`, `cpu`, `gpu`, `gpu:N`, `reference`.
    pub fn parse(s: &str) -> Result<Device> {
        Ok(match s {
            "auto" => Device::Auto,
            "cpu" => Device::Cpu,
            "gpu" => Device::Gpu(0),
            "reference" | "ref" => Device::Reference,
            _ => match s.strip_prefix("gpu:").and_then(|n| n.parse().ok()) {
                Some(n) => Device::Gpu(n),
                None => {
                    return Err(Error::Argument(format!(
                        "unknown device `{s}` (expected auto, cpu, gpu, gpu:N or reference)"
                    )))
                }
            },
        })
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Auto => f.write_str("auto"),
            Device::Cpu => f.write_str("cpu"),
            Device::Gpu(n) => write!(f, "gpu:{n}"),
            Device::Reference => f.write_str("reference"),
        }
    }
}

/// Session options.
#[derive(Debug, Clone)]
pub struct Options {
    pub device: Device,
    /// `false`: no folding or rewrites, one kernel per operator with a temporary each (Blaze's
    /// `compute(expr, optimize=False)`, the unfused baseline).
    pub optimize: bool,
    /// CPU threads; 0 = all cores.
    pub threads: usize,
    /// What float -> integer casts do with NaN, infinities and out-of-range values.
    pub invalid_cast: InvalidCast,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            device: Device::Auto,
            optimize: true,
            threads: 0,
            invalid_cast: InvalidCast::MinInt,
        }
    }
}

/// What a float -> integer `astype` does with a value the integer cannot hold (NaN, an
/// infinity, a value whose truncation is out of range): NumPy's `np.errstate(invalid=...)`
/// for casts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum InvalidCast {
    /// The integer's minimum, the value NumPy gives on x86-64 (where NumPy also warns).
    #[default]
    MinInt,
    /// [`Error::InvalidCast`] naming the cast, as under `np.errstate(invalid='raise')`. Every
    /// cast's operand is checked by a reduction the plan adds (`explain` shows it), on every
    /// element, also those a `where` discards, as NumPy does.
    Raise,
}

/// What actually happened in a session (counters only grow).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    /// Plans built (lowering + optimization + partition).
    pub plans: u64,
    pub kernels_launched: u64,
    /// Bytes kernels read from their inputs (each input counted once per launch).
    pub bytes_read: u64,
    /// Bytes kernels wrote to their outputs.
    pub bytes_written: u64,
    /// Kernel compilations, and compile requests answered from the cache.
    pub compilations: u64,
    pub cache_hits: u64,
    /// Kernels dropped from the backends' bounded caches (LRU; see [`crate::cache`]).
    pub evictions: u64,
    /// Wall time spent running kernels on the CPU.
    pub cpu_time: Duration,
    /// Wall time spent running kernels on the GPU (uploads and read-backs included).
    pub gpu_time: Duration,
    /// Bytes copied host -> GPU and GPU -> host.
    pub bytes_uploaded: u64,
    pub bytes_downloaded: u64,
    /// Plans `Device::Auto` placed on the CPU and on a GPU.
    pub auto_cpu: u64,
    pub auto_gpu: u64,
    /// Plans `Device::Auto` had placed on a GPU that failed there (shader rejected, device
    /// lost, out of memory) and ran on the CPU instead.
    pub gpu_fallbacks: u64,
}

/// GPU adapters a session can open (by index, as listed by `fusebox devices`).
const MAX_GPUS: usize = 8;

struct Inner {
    options: Options,
    cpu: OnceLock<std::result::Result<CpuBackend, Error>>,
    /// GPU adapters by index, each opened on first use.
    gpus: Vec<OnceLock<std::result::Result<GpuBackend, Error>>>,
    stats: Mutex<Stats>,
    /// Device parameters that replace the calibration ([`Session::set_device_params`]).
    params: Mutex<Vec<(Target, DeviceParams)>>,
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

/// A kernel compiled for the device that runs it.
enum DeviceKernel {
    Cpu(Arc<CpuKernel>),
    Gpu(Arc<GpuKernel>),
}

/// A plan with compiled kernels, ready to run on bound inputs.
struct ExecPlan {
    /// Where the kernels run (never `Auto`).
    device: Device,
    inputs: Vec<PlanInput>,
    /// Shapes of the symbol inputs, in parameter order (the plan's cache key).
    param_shapes: Vec<Vec<usize>>,
    steps: Vec<(Step, DeviceKernel)>,
    /// For each step, the temporaries no later step reads (dropped right after it runs, so an
    /// unfused plan holds no more temporaries than NumPy would).
    frees: Vec<Vec<u32>>,
    /// The result number and shape of each expression of the plan, then of each cast check
    /// (see [`InvalidCast::Raise`]).
    results: Vec<(u32, Vec<usize>)>,
    /// What each cast check checks (the last `checks.len()` results).
    checks: Vec<String>,
    /// How many results the steps produce.
    n_temps: usize,
}

impl Session {
    pub fn new() -> Session {
        Session::with_options(Options::default())
    }
    pub fn with_options(options: Options) -> Session {
        Session {
            inner: Arc::new(Inner {
                options,
                cpu: OnceLock::new(),
                gpus: (0..MAX_GPUS).map(|_| OnceLock::new()).collect(),
                stats: Mutex::new(Stats::default()),
                params: Mutex::new(Vec::new()),
            }),
        }
    }
    pub fn options(&self) -> &Options {
        &self.inner.options
    }

    /// A named placeholder of the given dtype and shape.
    pub fn symbol(&self, name: &str, dtype: DType, shape: &[usize]) -> Expr {
        Expr::symbol(name, dtype, shape)
    }
    /// Bind data (any ndarray array; views are copied, owned and shared arrays are not).
    pub fn data(&self, array: impl Into<DynArray>) -> Expr {
        Expr::data(array, None)
    }
    /// Bind data under a name (shown by `Display` and `explain`).
    pub fn named_data(&self, name: &str, array: impl Into<DynArray>) -> Expr {
        Expr::data(array, Some(name))
    }

    /// Counters of what this session did.
    pub fn stats(&self) -> Stats {
        let mut s = self
            .inner
            .stats
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default();
        if let Some(Ok(cpu)) = self.inner.cpu.get() {
            let c = cpu.counters();
            s.compilations += c.compilations;
            s.cache_hits += c.cache_hits;
            s.evictions += c.evictions;
        }
        for slot in &self.inner.gpus {
            if let Some(Ok(gpu)) = slot.get() {
                let c = gpu.counters();
                s.compilations += c.compilations;
                s.cache_hits += c.cache_hits;
                s.evictions += c.evictions;
                s.bytes_uploaded += c.bytes_uploaded;
                s.bytes_downloaded += c.bytes_downloaded;
            }
        }
        s
    }

    /// The GPU backend of adapter `index` (opened on first use).
    fn gpu(&self, index: usize) -> Result<&GpuBackend> {
        let slot = self.inner.gpus.get(index).ok_or_else(|| {
            Error::Device(format!(
                "no GPU adapter with index {index} (a session opens adapters 0 to {})",
                MAX_GPUS - 1
            ))
        })?;
        slot.get_or_init(|| GpuBackend::new(index))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Human-readable name of the device plans run on.
    fn device_name(&self, device: Device) -> String {
        match device {
            Device::Gpu(n) => match self.gpu(n) {
                Ok(g) => format!("gpu:{n} ({}, {})", g.info().name, g.info().backend),
                Err(_) => format!("gpu:{n}"),
            },
            d => d.to_string(),
        }
    }

    fn cpu(&self) -> Result<&CpuBackend> {
        self.inner
            .cpu
            .get_or_init(|| CpuBackend::new(self.inner.options.threads))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The pinned device plans run on (`Auto` resolves per plan, in `place`; here it reads as
    /// the CPU).
    fn device(&self) -> Result<Device> {
        match self.inner.options.device {
            Device::Auto | Device::Cpu => Ok(Device::Cpu),
            Device::Gpu(n) => {
                self.gpu(n)?;
                Ok(Device::Gpu(n))
            }
            Device::Reference => Ok(Device::Reference),
        }
    }

    /// Evaluate an expression whose inputs are all bound data.
    pub fn compute(&self, expr: &Expr) -> Result<DynArray> {
        self.compute_with(expr, &[])
    }

    /// Evaluate with symbols bound to arrays (any strides; not copied on the CPU).
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
        if self.device()? == Device::Reference {
            let map: HashMap<String, DynArray> = bindings
                .iter()
                .map(|(n, v)| Ok((n.to_string(), v.try_to_dyn_array()?)))
                .collect::<Result<_>>()?;
            let (all, checks) = self.with_cast_checks(exprs);
            let mut results = all
                .iter()
                .map(|e| crate::reference::evaluate(e, &map))
                .collect::<Result<Vec<_>>>()?;
            let checked = results.split_off(exprs.len());
            cast_checks_pass(&checked, &checks)?;
            return Ok(results);
        }
        let shapes = |name: &str| lookup(bindings, name).map(|v| v.shape().to_vec());
        let plan = self.plan(exprs, &shapes)?;
        let args = bind(&plan.inputs, |name| {
            lookup(bindings, name).map(|v| v.reborrow())
        })?;
        self.execute(&plan, &args)
    }

    /// Compile `expr` into a function of its symbols (in order of first appearance), callable
    /// on new arrays of the same dtypes, like `numba.vectorize`. Kernels compile now; calls
    /// with new shapes re-plan (microseconds) but compile nothing, unless `Auto` places the new
    /// shapes on another device (placement here ignores compile time: a compiled function is
    /// meant to be called many times).
    pub fn compile(&self, expr: &Expr) -> Result<Compiled> {
        let plan = Arc::new(self.plan_reused(std::slice::from_ref(expr), &|_| None)?);
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
        Ok(Compiled {
            session: self.clone(),
            expr: expr.clone(),
            params,
            cache: Mutex::new(vec![(shapes, plan, as_given)]),
        })
    }

    /// Lower, optimize, partition, place and compile, for one use (placement counts compile
    /// time).
    fn plan(
        &self,
        exprs: &[Expr],
        shapes: &dyn Fn(&str) -> Option<Vec<usize>>,
    ) -> Result<ExecPlan> {
        self.plan_placed(exprs, shapes, true)
    }

    /// [`Session::plan`] for a function called many times: placement ignores one-time costs.
    fn plan_reused(
        &self,
        exprs: &[Expr],
        shapes: &dyn Fn(&str) -> Option<Vec<usize>>,
    ) -> Result<ExecPlan> {
        self.plan_placed(exprs, shapes, false)
    }

    fn plan_placed(
        &self,
        exprs: &[Expr],
        shapes: &dyn Fn(&str) -> Option<Vec<usize>>,
        one_shot: bool,
    ) -> Result<ExecPlan> {
        let (exprs, checks) = self.with_cast_checks(exprs);
        let lowered = opt::lower_many(&exprs, shapes, self.inner.options.optimize)?;
        let mode = if self.inner.options.optimize {
            Partition::Fused
        } else {
            Partition::Unfused
        };
        let partitioned = opt::partition(&lowered, mode);
        check_sizes(&partitioned)?;
        let mut device = self.place(&lowered, &partitioned.steps, one_shot)?;
        let n_temps = partitioned.steps.iter().map(|s| s.temps.len()).sum();
        let kernels = match self.compile_steps(&partitioned.steps, device) {
            Err(e) if device != Device::Cpu && self.is_auto() && cost::is_device_error(&e) => {
                self.fell_back(device, &e);
                device = Device::Cpu;
                self.compile_steps(&partitioned.steps, device)?
            }
            r => r?,
        };
        let compiled: Vec<(Step, DeviceKernel)> =
            partitioned.steps.into_iter().zip(kernels).collect();
        if let Ok(mut st) = self.inner.stats.lock() {
            st.plans += 1;
            if self.is_auto() {
                match device {
                    Device::Gpu(_) => st.auto_gpu += 1,
                    _ => st.auto_cpu += 1,
                }
            }
        }
        let param_shapes = lowered
            .inputs
            .iter()
            .zip(&lowered.input_shapes)
            .filter(|(p, _)| matches!(p, PlanInput::Symbol { .. }))
            .map(|(_, s)| s.clone())
            .collect();
        let results = partitioned.results;
        let frees = last_uses(compiled.iter().map(|(s, _)| s), &results);
        Ok(ExecPlan {
            device,
            inputs: lowered.inputs,
            param_shapes,
            steps: compiled,
            frees,
            results,
            checks,
            n_temps,
        })
    }

    /// `exprs` followed by their cast checks under [`InvalidCast::Raise`], and what each check
    /// checks.
    fn with_cast_checks(&self, exprs: &[Expr]) -> (Vec<Expr>, Vec<String>) {
        let mut all = exprs.to_vec();
        let mut what = vec![];
        if self.inner.options.invalid_cast == InvalidCast::Raise {
            for (check, w) in crate::expr::invalid_cast_checks(exprs) {
                all.push(check);
                what.push(w);
            }
        }
        (all, what)
    }

    /// Run a plan; under `Auto`, a plan that fails on its GPU runs again on the CPU. Returns
    /// the expressions' results, or the first failed cast check.
    fn execute(&self, plan: &ExecPlan, inputs: &[ArgView<'_>]) -> Result<Vec<DynArray>> {
        let mut results = self.execute_all(plan, inputs)?;
        let checked = results.split_off(results.len() - plan.checks.len());
        cast_checks_pass(&checked, &plan.checks)?;
        Ok(results)
    }

    fn execute_all(&self, plan: &ExecPlan, inputs: &[ArgView<'_>]) -> Result<Vec<DynArray>> {
        let kernels: Vec<&DeviceKernel> = plan.steps.iter().map(|(_, k)| k).collect();
        match self.execute_kernels(plan, &kernels, inputs) {
            Err(e) if plan.device != Device::Cpu && self.is_auto() && cost::is_device_error(&e) => {
                self.fell_back(plan.device, &e);
                let steps: Vec<Step> = plan.steps.iter().map(|(s, _)| s.clone()).collect();
                let cpu = self.compile_steps(&steps, Device::Cpu)?;
                let kernels: Vec<&DeviceKernel> = cpu.iter().collect();
                self.execute_kernels(plan, &kernels, inputs)
            }
            r => r,
        }
    }

    fn execute_kernels(
        &self,
        plan: &ExecPlan,
        kernels: &[&DeviceKernel],
        inputs: &[ArgView<'_>],
    ) -> Result<Vec<DynArray>> {
        let mut temps: Vec<Option<DynArray>> = vec![None; plan.n_temps];
        let (mut read, mut written) = (0u64, 0u64);
        let start = Instant::now();
        for (((step, _), kernel), frees) in plan.steps.iter().zip(kernels).zip(&plan.frees) {
            // A step that reads the plan's inputs as they are, in order (a single fused kernel
            // called on its arguments), gets them without building views.
            let as_given = step.args.len() == inputs.len()
                && step
                    .args
                    .iter()
                    .zip(&step.arg_shapes)
                    .enumerate()
                    .all(|(j, (b, s))| {
                        *b == Buf::Input(j as u32) && inputs[j].shape() == s.as_slice()
                    });
            let outs = if as_given {
                self.run_step(plan, kernel, inputs, step, &mut read)?
            } else {
                // Results read with another shape (a reduction's result with or without its
                // `keepdims` axes) are reshaped first; that shares the data.
                let mut reshaped: SmallVec<[Option<DynArray>; 4]> =
                    SmallVec::with_capacity(step.args.len());
                for (b, shape) in step.args.iter().zip(&step.arg_shapes) {
                    reshaped.push(match *b {
                        Buf::Temp(t) if temp(&temps, t)?.shape() != shape.as_slice() => {
                            Some(temp(&temps, t)?.reshaped(shape)?)
                        }
                        _ => None,
                    });
                }
                let mut views: SmallVec<[ArgView<'_>; 4]> =
                    SmallVec::with_capacity(step.args.len());
                for (b, r) in step.args.iter().zip(&reshaped) {
                    views.push(match (*b, r) {
                        (_, Some(r)) => r.view(),
                        (Buf::Input(i), None) => inputs[i as usize].reborrow(),
                        (Buf::Temp(t), None) => temp(&temps, t)?.view(),
                    });
                }
                self.run_step(plan, kernel, &views, step, &mut read)?
            };
            for ((out, t), shape) in outs.into_iter().zip(&step.temps).zip(&step.out_shapes) {
                written += out.nbytes() as u64;
                temps[*t as usize] = Some(out.reshaped(shape)?);
            }
            for t in frees {
                temps[*t as usize] = None;
            }
        }
        if let Ok(mut st) = self.inner.stats.lock() {
            st.kernels_launched += plan.steps.len() as u64;
            st.bytes_read += read;
            st.bytes_written += written;
            match kernels.first() {
                Some(DeviceKernel::Gpu(_)) => st.gpu_time += start.elapsed(),
                _ => st.cpu_time += start.elapsed(),
            }
        }
        plan.results
            .iter()
            .map(|(t, shape)| temp(&temps, *t)?.reshaped(shape))
            .collect()
    }

    /// Run one step's kernel on its argument views, adding the bytes they hold to `read`.
    fn run_step(
        &self,
        plan: &ExecPlan,
        kernel: &DeviceKernel,
        views: &[ArgView<'_>],
        step: &Step,
        read: &mut u64,
    ) -> Result<Vec<DynArray>> {
        *read = views.iter().fold(*read, |r, v| {
            r.saturating_add((v.len() as u64).saturating_mul(v.dtype().size() as u64))
        });
        let axes = &step.reduce_axes;
        match kernel {
            DeviceKernel::Cpu(k) => self.cpu()?.run_many(k, views, &step.shape, axes),
            DeviceKernel::Gpu(k) => {
                let n = match plan.device {
                    Device::Gpu(n) => n,
                    _ => 0,
                };
                self.gpu(n)?.run_many(k, views, &step.shape, axes)
            }
        }
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

    fn explain_impl(
        &self,
        exprs: &[Expr],
        shapes: &dyn Fn(&str) -> Option<Vec<usize>>,
        residence: &dyn Fn(&str) -> Residence,
    ) -> Result<Explain> {
        let pinned = self.device()?;
        let (exprs, _) = self.with_cast_checks(exprs);
        let fused = opt::lower_many(&exprs, shapes, true)?;
        let unfused = opt::lower_many(&exprs, shapes, false)?;
        let fused_plan = opt::partition(&fused, Partition::Fused);
        check_sizes(&fused_plan)?;
        let unfused_plan = opt::partition(&unfused, Partition::Unfused);
        check_sizes(&unfused_plan)?;
        let total = |ks: &[KernelInfo]| ks.iter().map(|k| k.bytes_read + k.bytes_written).sum();
        let (bytes_fused, bytes_unfused) = (
            total(&step_infos(&fused, &fused_plan, "")),
            total(&step_infos(&unfused, &unfused_plan, "")),
        );
        let shared = fused_plan
            .shared
            .iter()
            .map(|c| {
                format!(
                    "{} used by {} kernels: {} (its users move {} B recomputing it, {} B if it is \
                     materialized once)",
                    c.node,
                    c.users,
                    if c.materialized {
                        "materialized"
                    } else {
                        "recomputed"
                    },
                    c.bytes_recompute,
                    c.bytes_materialize
                )
            })
            .collect();
        let (lowered, plan) = if self.inner.options.optimize {
            (&fused, &fused_plan)
        } else {
            (&unfused, &unfused_plan)
        };
        let steps = &plan.steps;
        let residency: Vec<Residence> = lowered
            .inputs
            .iter()
            .map(|p| match p {
                PlanInput::Symbol { name, .. } => residence(name),
                PlanInput::Data { .. } => Residence::Host,
            })
            .collect();
        let targets = match self.inner.options.device {
            Device::Auto => self.auto_targets(steps),
            Device::Cpu => vec![Target::Cpu],
            Device::Gpu(n) => vec![Target::Gpu(n)],
            Device::Reference => vec![],
        };
        let mode = Mode {
            one_time_costs: true,
            result_on_host: true,
        };
        let per_device = self.estimates(steps, &targets, &residency, mode)?;
        let device = match self.inner.options.device {
            Device::Auto => {
                let totals: Vec<(Target, f64)> = per_device
                    .iter()
                    .map(|(t, es)| (*t, es.iter().map(Estimate::total_s).sum()))
                    .collect();
                self.target_name(cost::choose(&totals).unwrap_or(Target::Cpu))
            }
            _ => self.device_name(pinned),
        };
        let mut kernels = step_infos(lowered, plan, &device);
        for (i, k) in kernels.iter_mut().enumerate() {
            k.estimates = per_device
                .iter()
                .filter_map(|(t, es)| {
                    es.get(i).map(|e| DeviceEstimate {
                        device: t.to_string(),
                        estimate: *e,
                    })
                })
                .collect();
        }
        let estimates = per_device
            .iter()
            .map(|(t, es)| DeviceEstimate {
                device: t.to_string(),
                estimate: Estimate::sum(es),
            })
            .collect();
        let expression = exprs
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("; ");
        Ok(Explain {
            expression,
            graph: fused.graph.to_text(&fused.input_labels()),
            device,
            optimize: self.inner.options.optimize,
            bytes_fused,
            bytes_unfused,
            kernels,
            shared: if self.inner.options.optimize {
                shared
            } else {
                vec![]
            },
            estimates,
        })
    }
}

// ---- placement: Device::Auto ------------------------------------------------------------

impl Session {
    fn is_auto(&self) -> bool {
        self.inner.options.device == Device::Auto
    }

    /// Use `params` for `device` (`Device::Cpu` or `Device::Gpu(n)`) instead of measuring it:
    /// for tools that calibrate elsewhere, and for tests that need a known machine. A GPU given
    /// here is a candidate of `Auto` even without an adapter (running on it then fails and
    /// falls back to the CPU).
    pub fn set_device_params(&self, device: Device, params: DeviceParams) -> Result<()> {
        let t = match device {
            Device::Cpu => Target::Cpu,
            Device::Gpu(n) => Target::Gpu(n),
            d => {
                return Err(Error::Argument(format!(
                    "device parameters are for cpu or gpu:N, not {d}"
                )))
            }
        };
        let mut p = self
            .inner
            .params
            .lock()
            .map_err(|_| Error::Argument("session poisoned by a panic".into()))?;
        p.retain(|(d, _)| *d != t);
        p.push((t, params));
        Ok(())
    }

    /// Simulate a failure of GPU `index` (opened if needed). Test support.
    #[doc(hidden)]
    pub fn inject_gpu_fault(&self, index: usize, fault: Option<crate::gpu::Fault>) -> Result<()> {
        self.gpu(index)?.inject_fault(fault);
        Ok(())
    }

    /// Turn subgroup operations in GPU `index`'s reductions on or off (opened if needed; on has
    /// no effect where the adapter lacks them). Test support: both paths on one adapter.
    #[doc(hidden)]
    pub fn set_gpu_subgroups(&self, index: usize, on: bool) -> Result<()> {
        self.gpu(index)?.set_subgroups(on);
        Ok(())
    }

    /// The parameters of `t`: given ones, else the calibration (measured on first use).
    fn device_params(&self, t: Target) -> Result<DeviceParams> {
        if let Some(p) = self
            .inner
            .params
            .lock()
            .ok()
            .and_then(|ps| ps.iter().find(|(d, _)| *d == t).map(|(_, p)| p.clone()))
        {
            return Ok(p);
        }
        let cache = cost::CalibrationCache::global();
        match t {
            Target::Cpu => cost::cpu_params(cache, self.cpu()?.threads()),
            Target::Gpu(n) => {
                let info = cost::adapters()
                    .get(n)
                    .ok_or_else(|| Error::Device(format!("no GPU adapter with index {n}")))?;
                cost::gpu_params(cache, info)
            }
        }
    }

    /// Devices `Auto` considers for these kernels: the CPU, and every GPU adapter that can run
    /// them all (plus GPUs given by [`Session::set_device_params`]).
    fn auto_targets(&self, steps: &[Step]) -> Vec<Target> {
        let mut out = vec![Target::Cpu];
        for a in cost::adapters().iter().filter(|a| a.index < MAX_GPUS) {
            let ok = steps.iter().all(|s| {
                let lens: Vec<(DType, usize)> = s
                    .kernel
                    .inputs
                    .iter()
                    .zip(&s.arg_shapes)
                    .map(|(t, sh)| (*t, sh.iter().product()))
                    .collect();
                crate::gpu::supports(a, &s.kernel, s.shape.iter().product())
                    && (!s.kernel.is_reduction()
                        || s.reduce_axes.len() == s.shape.len()
                        || crate::gpu::fits_axis_reduction(a, &lens))
            });
            if ok {
                out.push(Target::Gpu(a.index));
            }
        }
        if let Ok(ps) = self.inner.params.lock() {
            for (t, _) in ps.iter() {
                if !out.contains(t) {
                    out.push(*t);
                }
            }
        }
        out
    }

    /// The least any known GPU (given to this session, or measured on this machine) could
    /// take for a plan of `kernels` kernels. One-time costs count only while no GPU of this
    /// session is open (an open one may have the kernels cached).
    fn gpu_floor(&self, kernels: usize, one_shot: bool) -> Option<f64> {
        let one_time = one_shot && !self.inner.gpus.iter().any(|g| g.get().is_some());
        let mut known = cost::CalibrationCache::global().known_gpus();
        if let Ok(ps) = self.inner.params.lock() {
            known.extend(
                ps.iter()
                    .filter(|(t, _)| matches!(t, Target::Gpu(_)))
                    .map(|(_, p)| p.clone()),
            );
        }
        known
            .iter()
            .map(|p| cost::gpu_floor(p, kernels, one_time))
            .reduce(f64::min)
    }

    fn started(&self, t: Target) -> bool {
        match t {
            Target::Cpu => self.inner.cpu.get().is_some(),
            Target::Gpu(n) => self.inner.gpus.get(n).is_some_and(|g| g.get().is_some()),
        }
    }

    fn is_cached(&self, t: Target, k: &crate::kir::Kernel) -> bool {
        match t {
            Target::Cpu => matches!(self.inner.cpu.get(), Some(Ok(c)) if c.is_cached(k)),
            Target::Gpu(n) => {
                matches!(self.inner.gpus.get(n).and_then(|g| g.get()), Some(Ok(g)) if g.is_cached(k))
            }
        }
    }

    /// Per-kernel estimates on each target. A GPU whose calibration fails is dropped (with a
    /// warning); a CPU failure is an error.
    fn estimates(
        &self,
        steps: &[Step],
        targets: &[Target],
        residency: &[Residence],
        mode: Mode,
    ) -> Result<Vec<(Target, Vec<Estimate>)>> {
        let plan = plan_kernels(steps);
        let transfer = |g: usize| self.device_params(Target::Gpu(g)).ok();
        let mut out = Vec::with_capacity(targets.len());
        for &t in targets {
            let started = self.started(t);
            let params = match self.device_params(t) {
                Ok(p) => p,
                Err(e) if t != Target::Cpu => {
                    tracing::warn!("fusebox: {t} is not a candidate: {e}");
                    continue;
                }
                Err(e) => return Err(e),
            };
            let cand = cost::Candidate {
                target: t,
                params: &params,
                cached: steps.iter().map(|s| self.is_cached(t, &s.kernel)).collect(),
                started,
            };
            out.push((
                t,
                cost::estimate_plan(&plan, residency, &cand, &transfer, mode),
            ));
        }
        Ok(out)
    }

    /// The device a plan runs on: the pinned one, or `Auto`'s choice (calibrating only when
    /// there is more than one candidate).
    fn place(&self, lowered: &Lowered, steps: &[Step], one_shot: bool) -> Result<Device> {
        match self.inner.options.device {
            Device::Auto => {}
            Device::Gpu(n) => {
                self.gpu(n)?;
                return Ok(Device::Gpu(n));
            }
            d => return Ok(d),
        }
        let residency = vec![Residence::Host; lowered.inputs.len()];
        let mode = Mode {
            one_time_costs: one_shot,
            result_on_host: true,
        };
        // A plan the CPU finishes before any GPU measured on this machine could even launch
        // (and, the first time, compile) its kernels stays on the CPU without listing the
        // adapters, which loads drivers (small arrays: the common case, kept cheap).
        if let Some(floor) = self.gpu_floor(steps.len(), one_shot) {
            let cpu = self.estimates(steps, &[Target::Cpu], &residency, mode)?;
            let cpu_total: f64 = cpu
                .iter()
                .flat_map(|(_, es)| es)
                .map(Estimate::total_s)
                .sum();
            if cpu_total <= floor {
                return Ok(Device::Cpu);
            }
        }
        let targets = self.auto_targets(steps);
        if targets.len() < 2 {
            return Ok(Device::Cpu);
        }
        let totals: Vec<(Target, f64)> = self
            .estimates(steps, &targets, &residency, mode)?
            .iter()
            .map(|(t, es)| (*t, es.iter().map(Estimate::total_s).sum()))
            .collect();
        Ok(match cost::choose(&totals) {
            Some(Target::Gpu(n)) => Device::Gpu(n),
            _ => Device::Cpu,
        })
    }

    /// Compile every step for `device`.
    fn compile_steps(&self, steps: &[Step], device: Device) -> Result<Vec<DeviceKernel>> {
        steps
            .iter()
            .map(|s| {
                Ok(match device {
                    Device::Gpu(n) => DeviceKernel::Gpu(self.gpu(n)?.compile(&s.kernel)?),
                    _ => DeviceKernel::Cpu(self.cpu()?.compile(&s.kernel)?),
                })
            })
            .collect()
    }

    /// Count and report an `Auto` plan that failed on `device` and goes to the CPU.
    fn fell_back(&self, device: Device, e: &Error) {
        tracing::warn!("fusebox: {device} failed ({e}); running the plan on the CPU");
        if let Ok(mut st) = self.inner.stats.lock() {
            st.gpu_fallbacks += 1;
        }
    }

    /// `cpu`, or `gpu:N (adapter, backend)` from the adapter list (opens nothing).
    fn target_name(&self, t: Target) -> String {
        match t {
            Target::Cpu => "cpu".into(),
            Target::Gpu(n) => match cost::adapters().get(n) {
                Some(a) => format!("gpu:{n} ({}, {})", a.name, a.backend),
                None => format!("gpu:{n}"),
            },
        }
    }
}

/// The plan's kernels as the cost model sees them.
/// Every iteration space, input and result of a plan must fit the address space (checked
/// before anything multiplies their lengths).
/// `Err` for the first cast check (a bool scalar, true where a cast met an invalid value)
/// that failed; `what` describes each.
fn cast_checks_pass(checked: &[DynArray], what: &[String]) -> Result<()> {
    for (c, w) in checked.iter().zip(what) {
        if c.scalar_f64() != Some(0.0) {
            return Err(Error::InvalidCast(w.clone()));
        }
    }
    Ok(())
}

fn check_sizes(plan: &opt::Plan) -> Result<()> {
    for s in &plan.steps {
        crate::array::checked_len(&s.shape, 8)?;
        for shape in s.arg_shapes.iter().chain(&s.out_shapes) {
            crate::array::checked_len(shape, 8)?;
        }
    }
    Ok(())
}

fn plan_kernels(steps: &[Step]) -> Vec<cost::PlanKernel> {
    let len = |shape: &Vec<usize>| shape.iter().fold(1usize, |a, &d| a.saturating_mul(d));
    steps
        .iter()
        .map(|s| {
            let args = s
                .args
                .iter()
                .map(|b| match *b {
                    Buf::Input(i) => cost::ArgSource::Input(i),
                    Buf::Temp(t) => cost::ArgSource::Temp(t),
                })
                .collect();
            let arg_lens: Vec<usize> = s.arg_shapes.iter().map(len).collect();
            let out_lens: Vec<usize> = s.out_shapes.iter().map(len).collect();
            cost::PlanKernel {
                cost: cost::KernelCost::of(&s.kernel, &arg_lens, len(&s.shape), &out_lens),
                args,
            }
        })
        .collect()
}

fn step_infos(l: &Lowered, plan: &opt::Plan, device: &str) -> Vec<KernelInfo> {
    let labels = l.input_labels();
    let costs = plan_kernels(&plan.steps);
    plan.steps
        .iter()
        .zip(costs)
        .enumerate()
        .map(|(i, (s, c))| {
            let reads: Vec<String> = s
                .args
                .iter()
                .map(|b| match *b {
                    Buf::Input(n) => labels[n as usize].clone(),
                    Buf::Temp(t) => format!("t{t}"),
                })
                .collect();
            let bytes_read: u64 = s
                .kernel
                .inputs
                .iter()
                .zip(&s.arg_shapes)
                .map(|(t, shape)| (t.size() * shape.iter().product::<usize>()) as u64)
                .sum();
            let bytes_written: u64 = s
                .kernel
                .output_dtypes()
                .iter()
                .zip(&s.out_shapes)
                .map(|(t, shape)| (t.size() * shape.iter().product::<usize>()) as u64)
                .sum();
            KernelInfo {
                index: i,
                ir: s.kernel.to_string(),
                summary: c.cost.summary(&s.kernel),
                shape: s.shape.clone(),
                reduce_axes: s.reduce_axes.clone(),
                device: device.to_string(),
                reads,
                writes: s.temps.iter().map(|t| format!("t{t}")).collect(),
                bytes_read,
                bytes_written,
                estimates: vec![],
            }
        })
        .collect()
}

/// Result `t` of a plan being executed.
fn temp<T>(temps: &[Option<T>], t: u32) -> Result<&T> {
    temps
        .get(t as usize)
        .and_then(Option::as_ref)
        .ok_or_else(|| Error::InvalidKernel(format!("result t{t} read before it was computed")))
}

/// The value bound to `name`.
fn lookup<'b, T>(bindings: &'b [(&str, T)], name: &str) -> Option<&'b T> {
    bindings.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
}

/// For each step, the temporaries whose last reader it is (results of the plan are kept).
fn last_uses<'a>(
    steps: impl Iterator<Item = &'a Step>,
    results: &[(u32, Vec<usize>)],
) -> Vec<Vec<u32>> {
    let steps: Vec<&Step> = steps.collect();
    let mut last: HashMap<u32, usize> = HashMap::new();
    for (i, s) in steps.iter().enumerate() {
        for b in &s.args {
            if let Buf::Temp(t) = b {
                last.insert(*t, i);
            }
        }
    }
    let mut frees = vec![vec![]; steps.len()];
    for (t, i) in last {
        if !results.iter().any(|(r, _)| *r == t) {
            frees[i].push(t);
        }
    }
    frees
}

/// Whether the plan's inputs are exactly the parameters `params`, in order.
fn inputs_are_params(plan: &ExecPlan, params: &[(String, DType)]) -> bool {
    plan.inputs.len() == params.len()
        && plan.inputs.iter().zip(params).all(|(i, (name, dt))| {
            matches!(i, PlanInput::Symbol { name: n, dtype } if n == name && dtype == dt)
        })
}

/// Resolve plan inputs to views: symbols from `lookup`, data from the expression.
fn bind<'a>(
    inputs: &'a [PlanInput],
    lookup: impl Fn(&str) -> Option<ArgView<'a>>,
) -> Result<SmallVec<[ArgView<'a>; 4]>> {
    inputs
        .iter()
        .map(|p| match p {
            PlanInput::Data { array, .. } => Ok(array.view()),
            PlanInput::Symbol { name, dtype } => {
                let v = lookup(name).ok_or_else(|| Error::UnknownName(name.clone()))?;
                if v.dtype() != *dtype {
                    return Err(Error::Type(format!(
                        "`{name}` is declared {dtype} but bound to {} data",
                        v.dtype()
                    )));
                }
                Ok(v)
            }
        })
        .collect()
}

/// An array held on a GPU session's device. It feeds later expressions (bound to a symbol in
/// [`Session::compute_on_device`]) without being uploaded again; [`Session::to_host`] brings it
/// back. Cheap to clone (shared).
#[derive(Clone)]
pub struct DeviceArray {
    array: Arc<GpuArray>,
}

impl DeviceArray {
    pub fn dtype(&self) -> DType {
        self.array.dtype()
    }
    pub fn shape(&self) -> &[usize] {
        self.array.shape()
    }
}

impl Session {
    /// The adapter of a GPU session, or an error naming what is needed.
    fn gpu_index(&self, what: &str) -> Result<usize> {
        match self.inner.options.device {
            Device::Gpu(n) => Ok(n),
            d => Err(Error::Device(format!(
                "{what} needs a session pinned to a GPU (device is {d})"
            ))),
        }
    }

    /// Upload an array to this session's GPU, once.
    pub fn to_device(&self, a: &ArgView<'_>) -> Result<DeviceArray> {
        let gpu = self.gpu(self.gpu_index("to_device")?)?;
        Ok(DeviceArray {
            array: Arc::new(gpu.upload(a)?),
        })
    }

    /// Copy a device array back to the host.
    pub fn to_host(&self, d: &DeviceArray) -> Result<DynArray> {
        let gpu = self.gpu(self.gpu_index("to_host")?)?;
        gpu.download(&d.array)
    }

    /// Evaluate `expr` on the GPU with its symbols bound to device arrays. Temporaries and the
    /// result stay on the device; only data bound inside the expression itself is uploaded (once
    /// per call). Arrays must fit one storage binding (host `compute` streams larger ones).
    pub fn compute_on_device(
        &self,
        expr: &Expr,
        bindings: &[(&str, &DeviceArray)],
    ) -> Result<DeviceArray> {
        let gpu = self.gpu(self.gpu_index("compute_on_device")?)?;
        let shapes = |name: &str| lookup(bindings, name).map(|v| v.shape().to_vec());
        let plan = self.plan(std::slice::from_ref(expr), &shapes)?;
        let mut inputs: Vec<Arc<GpuArray>> = Vec::with_capacity(plan.inputs.len());
        for p in &plan.inputs {
            inputs.push(match p {
                PlanInput::Data { array, .. } => Arc::new(gpu.upload(&array.view())?),
                PlanInput::Symbol { name, dtype } => {
                    let d =
                        lookup(bindings, name).ok_or_else(|| Error::UnknownName(name.clone()))?;
                    if d.dtype() != *dtype {
                        return Err(Error::Type(format!(
                            "`{name}` is declared {dtype} but bound to {} data",
                            d.dtype()
                        )));
                    }
                    d.array.clone()
                }
            });
        }
        let mut temps: Vec<Option<Arc<GpuArray>>> = vec![None; plan.n_temps];
        let (mut read, mut written) = (0u64, 0u64);
        let start = Instant::now();
        for ((step, kernel), frees) in plan.steps.iter().zip(&plan.frees) {
            let DeviceKernel::Gpu(k) = kernel else {
                return Err(Error::Device("plan was not compiled for the GPU".into()));
            };
            let mut args: Vec<Arc<GpuArray>> = Vec::with_capacity(step.args.len());
            for (b, shape) in step.args.iter().zip(&step.arg_shapes) {
                let a = match *b {
                    Buf::Input(i) => inputs[i as usize].clone(),
                    Buf::Temp(t) => temp(&temps, t)?.clone(),
                };
                args.push(if a.shape() == shape.as_slice() {
                    a
                } else {
                    Arc::new(a.reshaped(shape)?)
                });
            }
            let refs: Vec<&GpuArray> = args.iter().map(|a| &**a).collect();
            read += refs
                .iter()
                .map(|a| (a.len() * a.dtype().size()) as u64)
                .sum::<u64>();
            let outs = gpu.run_resident_many(k, &refs, &step.shape, &step.reduce_axes)?;
            for ((out, t), shape) in outs.into_iter().zip(&step.temps).zip(&step.out_shapes) {
                written += (out.len() * out.dtype().size()) as u64;
                temps[*t as usize] = Some(Arc::new(out.reshaped(shape)?));
            }
            for t in frees {
                temps[*t as usize] = None;
            }
        }
        if let Ok(mut st) = self.inner.stats.lock() {
            st.kernels_launched += plan.steps.len() as u64;
            st.bytes_read += read;
            st.bytes_written += written;
            st.gpu_time += start.elapsed();
        }
        let checked = plan.results[plan.results.len() - plan.checks.len()..]
            .iter()
            .map(|(t, _)| gpu.download(temp(&temps, *t)?))
            .collect::<Result<Vec<_>>>()?;
        cast_checks_pass(&checked, &plan.checks)?;
        let (t, shape) = &plan.results[0];
        let array = Arc::new(temp(&temps, *t)?.reshaped(shape)?);
        Ok(DeviceArray { array })
    }
}

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

impl Compiled {
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
        if args.len() != self.params.len() {
            return Err(Error::Argument(format!(
                "expected {} arguments ({}), got {}",
                self.params.len(),
                self.params
                    .iter()
                    .map(|p| p.0.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                args.len()
            )));
        }
        for ((name, dt), a) in self.params.iter().zip(args) {
            if a.dtype() != *dt {
                return Err(Error::Type(format!(
                    "argument `{name}` must be {dt}, got {}",
                    a.dtype()
                )));
            }
        }
        let (plan, as_given) = self.plan_for(args)?;
        let mut out = if as_given {
            self.session.execute(&plan, args)?
        } else {
            let inputs = bind(&plan.inputs, |name| {
                let i = self.params.iter().position(|p| p.0 == name)?;
                Some(args[i].reborrow())
            })?;
            self.session.execute(&plan, &inputs)?
        };
        Ok(out.swap_remove(0))
    }

    /// The device a call with these arguments runs on (`Auto` decides per argument shapes).
    pub fn placement(&self, args: &[ArgView<'_>]) -> Result<Device> {
        Ok(self.plan_for(args)?.0.device)
    }

    /// The plan for arguments of these shapes, and whether its inputs are the parameters in
    /// order.
    fn plan_for(&self, args: &[ArgView<'_>]) -> Result<(Arc<ExecPlan>, bool)> {
        let mut cache = self
            .cache
            .lock()
            .map_err(|_| Error::Argument("compiled function poisoned by a panic".into()))?;
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
                .plan_reused(std::slice::from_ref(&self.expr), &lookup)?,
        );
        let as_given = inputs_are_params(&plan, &self.params);
        cache.insert(0, (shapes, plan.clone(), as_given));
        cache.truncate(8);
        Ok((plan, as_given))
    }
}

/// One kernel of an [`Explain`] report.
#[derive(Debug, Clone)]
pub struct KernelInfo {
    pub index: usize,
    /// The kernel IR text.
    pub ir: String,
    /// The IR in one line: elements, loads, arithmetic and transcendental instructions per
    /// element, outputs.
    pub summary: String,
    /// Iteration space.
    pub shape: Vec<usize>,
    /// The axes of `shape` its reductions combine.
    pub reduce_axes: Vec<usize>,
    pub device: String,
    /// What each kernel input reads (input names, or `tN` for result N).
    pub reads: Vec<String>,
    /// The results it writes (`tN`), one per output.
    pub writes: Vec<String>,
    pub bytes_read: u64,
    pub bytes_written: u64,
    /// The estimate on every candidate device (empty on the reference device).
    pub estimates: Vec<DeviceEstimate>,
}

/// A plan, explained: what runs where and what it moves.
#[derive(Debug, Clone)]
pub struct Explain {
    pub expression: String,
    /// The optimized graph, one node per line.
    pub graph: String,
    pub device: String,
    pub optimize: bool,
    /// The kernels that run (fused, or one per operator with `optimize: false`).
    pub kernels: Vec<KernelInfo>,
    /// Bytes read + written by the fused plan.
    pub bytes_fused: u64,
    /// Bytes read + written evaluating one operator at a time with temporaries.
    pub bytes_unfused: u64,
    /// What the planner did with element-wise subexpressions several kernels use (recompute
    /// in each, or materialize once: whichever moves fewer bytes).
    pub shared: Vec<String>,
    /// The whole plan's estimate on every candidate device (sums of the kernels'); `device`
    /// is the one with the lowest total under `Auto`, the pinned one otherwise.
    pub estimates: Vec<DeviceEstimate>,
}

impl Explain {
    pub fn bytes_saved(&self) -> u64 {
        self.bytes_unfused.saturating_sub(self.bytes_fused)
    }
    pub fn saved_percent(&self) -> f64 {
        if self.bytes_unfused == 0 {
            0.0
        } else {
            100.0 * self.bytes_saved() as f64 / self.bytes_unfused as f64
        }
    }
    /// Machine-readable form (`fusebox eval --explain --json`).
    pub fn to_json(&self) -> String {
        let kernels: Vec<serde_json::Value> = self
            .kernels
            .iter()
            .map(|k| {
                serde_json::json!({
                    "index": k.index,
                    "device": k.device,
                    "shape": k.shape,
                    "reads": k.reads,
                    "writes": k.writes,
                    "reduce_axes": k.reduce_axes,
                    "bytes_read": k.bytes_read,
                    "bytes_written": k.bytes_written,
                    "summary": k.summary,
                    "estimates": estimates_json(&k.estimates),
                    "ir": k.ir,
                })
            })
            .collect();
        serde_json::json!({
            "expression": self.expression,
            "device": self.device,
            "optimize": self.optimize,
            "graph": self.graph,
            "bytes_fused": self.bytes_fused,
            "bytes_unfused": self.bytes_unfused,
            "bytes_saved": self.bytes_saved(),
            "saved_percent": self.saved_percent(),
            "estimates": estimates_json(&self.estimates),
            "kernels": kernels,
            "shared": self.shared,
        })
        .to_string()
    }
}

/// `{"cpu": {...}, "gpu:0": {...}}`.
fn estimates_json(es: &[DeviceEstimate]) -> serde_json::Value {
    serde_json::Value::Object(
        es.iter()
            .map(|e| (e.device.clone(), e.estimate.to_json()))
            .collect(),
    )
}

/// `cpu 1.2 ms = transfer 0 + launch 2.0 us + ...`.
fn estimate_line(e: &DeviceEstimate) -> String {
    let x = &e.estimate;
    let mut s = format!(
        "{} {} = transfer {} + launch {} + compile {} + max(compute {}, memory {})",
        e.device,
        human_time(x.total_s()),
        human_time(x.transfer_s),
        human_time(x.launch_s),
        human_time(x.compile_s),
        human_time(x.compute_s),
        human_time(x.memory_s)
    );
    if x.thread_start_s > 0.0 {
        s.push_str(&format!(" + threads {}", human_time(x.thread_start_s)));
    }
    if x.bytes_to_device + x.bytes_from_device > 0 {
        s.push_str(&format!(
            " [{} to device, {} back]",
            human_bytes(x.bytes_to_device),
            human_bytes(x.bytes_from_device)
        ));
    }
    s
}

/// `{}` prints the plan (graph, kernels, bytes): text that depends only on the expression.
/// `{:#}` adds, per kernel, its one-line summary and the estimate on every candidate device,
/// and the plan's estimates (measured numbers: they vary by machine), as `fusebox eval
/// --explain` prints it.
impl fmt::Display for Explain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "expression: {}", self.expression)?;
        writeln!(f, "optimized graph:")?;
        for line in self.graph.lines() {
            writeln!(f, "  {line}")?;
        }
        let mode = if self.optimize {
            "fused"
        } else {
            "unfused: one per operator"
        };
        writeln!(
            f,
            "kernels: {} ({mode}), device: {}",
            self.kernels.len(),
            self.device
        )?;
        for k in &self.kernels {
            let axes = if k.reduce_axes.is_empty() {
                String::new()
            } else {
                format!(" reducing axes {:?}", k.reduce_axes)
            };
            writeln!(
                f,
                "kernel {} over {:?}{axes}, reads [{}], writes [{}], moves {} read + {} written",
                k.index,
                k.shape,
                k.reads.join(", "),
                k.writes.join(", "),
                human_bytes(k.bytes_read),
                human_bytes(k.bytes_written)
            )?;
            if f.alternate() {
                writeln!(f, "  summary: {}", k.summary)?;
                for e in &k.estimates {
                    writeln!(f, "  estimate {}", estimate_line(e))?;
                }
            }
            for line in k.ir.lines() {
                writeln!(f, "  {line}")?;
            }
        }
        for line in &self.shared {
            writeln!(f, "shared {line}")?;
        }
        if f.alternate() && !self.estimates.is_empty() {
            writeln!(f, "placement: {}; estimated time of the plan:", self.device)?;
            for e in &self.estimates {
                writeln!(f, "  {}", estimate_line(e))?;
            }
        }
        write!(
            f,
            "bytes moved: fused {} ({} B), unfused {} ({} B), saved {} ({:.0}%)",
            human_bytes(self.bytes_fused),
            self.bytes_fused,
            human_bytes(self.bytes_unfused),
            self.bytes_unfused,
            human_bytes(self.bytes_saved()),
            self.saved_percent()
        )
    }
}
