//! The session: owns device choice, backends, kernel caches and counters, and runs plans.
//!
//! `compute` = lower + optimize (cached by nothing: microseconds) -> partition into kernels ->
//! compile each kernel (cached by the backend, keyed by the IR's fingerprint) -> run the steps,
//! keeping temporaries only between the kernels that need them.
use crate::array::{ArgView, DynArray};
use crate::cpu::{CpuBackend, CpuKernel};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::expr::Expr;
use crate::gpu::{GpuArray, GpuBackend, GpuKernel};
use crate::opt::{self, Buf, Lowered, Partition, PlanInput, Step};
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Where plans run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Device {
    /// Let fusebox choose (today: the CPU; the cost model will choose per plan).
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
}

impl Default for Options {
    fn default() -> Self {
        Options {
            device: Device::Auto,
            optimize: true,
            threads: 0,
        }
    }
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
}

struct Inner {
    options: Options,
    cpu: OnceLock<std::result::Result<CpuBackend, Error>>,
    /// The GPU adapter of `options.device`, opened on first use.
    gpu: OnceLock<std::result::Result<GpuBackend, Error>>,
    stats: Mutex<Stats>,
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
    inputs: Vec<PlanInput>,
    /// Shapes of the symbol inputs, in parameter order (the plan's cache key).
    param_shapes: Vec<Vec<usize>>,
    steps: Vec<(Step, DeviceKernel)>,
    /// For each step, the temporaries no later step reads (dropped right after it runs, so an
    /// unfused plan holds no more temporaries than NumPy would).
    frees: Vec<Vec<u32>>,
    /// The result number and shape of each expression of the plan.
    results: Vec<(u32, Vec<usize>)>,
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
                gpu: OnceLock::new(),
                stats: Mutex::new(Stats::default()),
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
        if let Some(Ok(gpu)) = self.inner.gpu.get() {
            let c = gpu.counters();
            s.compilations += c.compilations;
            s.cache_hits += c.cache_hits;
            s.evictions += c.evictions;
            s.bytes_uploaded = c.bytes_uploaded;
            s.bytes_downloaded = c.bytes_downloaded;
        }
        s
    }

    /// The GPU backend of the configured adapter (opened on first use).
    fn gpu(&self, index: usize) -> Result<&GpuBackend> {
        self.inner
            .gpu
            .get_or_init(|| GpuBackend::new(index))
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

    /// The device plans run on. `Auto` is the CPU until the cost model chooses per plan.
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
                .map(|(n, v)| (n.to_string(), v.to_dyn_array()))
                .collect();
            return exprs
                .iter()
                .map(|e| crate::reference::evaluate(e, &map))
                .collect();
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
    /// with new shapes re-plan (microseconds) but compile nothing.
    pub fn compile(&self, expr: &Expr) -> Result<Compiled> {
        let plan = Arc::new(self.plan(std::slice::from_ref(expr), &|_| None)?);
        let params = plan
            .inputs
            .iter()
            .filter_map(|p| match p {
                PlanInput::Symbol { name, dtype } => Some((name.clone(), *dtype)),
                PlanInput::Data { .. } => None,
            })
            .collect();
        let shapes = plan.param_shapes.clone();
        Ok(Compiled {
            session: self.clone(),
            expr: expr.clone(),
            params,
            cache: Mutex::new(vec![(shapes, plan)]),
        })
    }

    /// Lower, optimize, partition and compile.
    fn plan(
        &self,
        exprs: &[Expr],
        shapes: &dyn Fn(&str) -> Option<Vec<usize>>,
    ) -> Result<ExecPlan> {
        let lowered = opt::lower_many(exprs, shapes, self.inner.options.optimize)?;
        let mode = if self.inner.options.optimize {
            Partition::Fused
        } else {
            Partition::Unfused
        };
        let partitioned = opt::partition(&lowered, mode);
        let device = self.device()?;
        let n_temps = partitioned.steps.iter().map(|s| s.temps.len()).sum();
        let mut compiled = Vec::with_capacity(partitioned.steps.len());
        for s in partitioned.steps {
            let k = match device {
                Device::Gpu(n) => DeviceKernel::Gpu(self.gpu(n)?.compile(&s.kernel)?),
                _ => DeviceKernel::Cpu(self.cpu()?.compile(&s.kernel)?),
            };
            compiled.push((s, k));
        }
        if let Ok(mut st) = self.inner.stats.lock() {
            st.plans += 1;
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
            inputs: lowered.inputs,
            param_shapes,
            steps: compiled,
            frees,
            results,
            n_temps,
        })
    }

    fn execute(&self, plan: &ExecPlan, inputs: &[ArgView<'_>]) -> Result<Vec<DynArray>> {
        let mut temps: Vec<Option<DynArray>> = vec![None; plan.n_temps];
        let (mut read, mut written) = (0u64, 0u64);
        let start = Instant::now();
        for ((step, kernel), frees) in plan.steps.iter().zip(&plan.frees) {
            let outs = {
                // Results read with another shape (a reduction's result with or without its
                // `keepdims` axes) are reshaped first; that shares the data.
                let mut reshaped: Vec<Option<DynArray>> = Vec::with_capacity(step.args.len());
                for (b, shape) in step.args.iter().zip(&step.arg_shapes) {
                    reshaped.push(match *b {
                        Buf::Temp(t) if temp(&temps, t)?.shape() != shape.as_slice() => {
                            Some(temp(&temps, t)?.reshaped(shape)?)
                        }
                        _ => None,
                    });
                }
                let mut views: Vec<ArgView<'_>> = Vec::with_capacity(step.args.len());
                for (b, r) in step.args.iter().zip(&reshaped) {
                    views.push(match (*b, r) {
                        (_, Some(r)) => r.view(),
                        (Buf::Input(i), None) => inputs[i as usize].reborrow(),
                        (Buf::Temp(t), None) => temp(&temps, t)?.view(),
                    });
                }
                read += views
                    .iter()
                    .map(|v| (v.len() * v.dtype().size()) as u64)
                    .sum::<u64>();
                let axes = &step.reduce_axes;
                match kernel {
                    DeviceKernel::Cpu(k) => self.cpu()?.run_many(k, &views, &step.shape, axes)?,
                    DeviceKernel::Gpu(k) => {
                        let n = match self.inner.options.device {
                            Device::Gpu(n) => n,
                            _ => 0,
                        };
                        self.gpu(n)?.run_many(k, &views, &step.shape, axes)?
                    }
                }
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
            match plan.steps.first() {
                Some((_, DeviceKernel::Gpu(_))) => st.gpu_time += start.elapsed(),
                _ => st.cpu_time += start.elapsed(),
            }
        }
        plan.results
            .iter()
            .map(|(t, shape)| temp(&temps, *t)?.reshaped(shape))
            .collect()
    }

    /// The plan for `expr` without running it: optimized graph, kernels, device, and the bytes a
    /// fused and an unfused evaluation move.
    pub fn explain(&self, expr: &Expr) -> Result<Explain> {
        self.explain_with(expr, &[])
    }

    /// [`Session::explain`] with symbols bound to arrays of the given shapes.
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
        let device = self.device_name(self.device()?);
        let fused = opt::lower_many(exprs, &shapes, true)?;
        let unfused = opt::lower_many(exprs, &shapes, false)?;
        let fused_plan = opt::partition(&fused, Partition::Fused);
        let unfused_plan = opt::partition(&unfused, Partition::Unfused);
        let fused_info = step_infos(&fused, &fused_plan, &device);
        let unfused_info = step_infos(&unfused, &unfused_plan, &device);
        let total = |ks: &[KernelInfo]| ks.iter().map(|k| k.bytes_read + k.bytes_written).sum();
        let (bytes_fused, bytes_unfused) = (total(&fused_info), total(&unfused_info));
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
            kernels: if self.inner.options.optimize {
                fused_info
            } else {
                unfused_info
            },
            shared: if self.inner.options.optimize {
                shared
            } else {
                vec![]
            },
        })
    }
}

fn step_infos(l: &Lowered, plan: &opt::Plan, device: &str) -> Vec<KernelInfo> {
    let labels = l.input_labels();
    plan.steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
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
                shape: s.shape.clone(),
                reduce_axes: s.reduce_axes.clone(),
                device: device.to_string(),
                reads,
                writes: s.temps.iter().map(|t| format!("t{t}")).collect(),
                bytes_read,
                bytes_written,
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

/// Resolve plan inputs to views: symbols from `lookup`, data from the expression.
fn bind<'a>(
    inputs: &'a [PlanInput],
    lookup: impl Fn(&str) -> Option<ArgView<'a>>,
) -> Result<Vec<ArgView<'a>>> {
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
            let outs = gpu.run_resident_many(k, &refs, &step.shape, &step.reduce_axes)?;
            for ((out, t), shape) in outs.into_iter().zip(&step.temps).zip(&step.out_shapes) {
                temps[*t as usize] = Some(Arc::new(out.reshaped(shape)?));
            }
            for t in frees {
                temps[*t as usize] = None;
            }
        }
        if let Ok(mut st) = self.inner.stats.lock() {
            st.kernels_launched += plan.steps.len() as u64;
            st.gpu_time += start.elapsed();
        }
        let (t, shape) = &plan.results[0];
        let array = Arc::new(temp(&temps, *t)?.reshaped(shape)?);
        Ok(DeviceArray { array })
    }
}

/// A plan and the argument shapes it was made for.
type PlanByShapes = (Vec<Vec<usize>>, Arc<ExecPlan>);

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
        let plan = self.plan_for(args)?;
        let named: Vec<(&str, ArgView<'_>)> = self
            .params
            .iter()
            .map(|p| p.0.as_str())
            .zip(args.iter().cloned())
            .collect();
        let inputs = bind(&plan.inputs, |name| {
            lookup(&named, name).map(|v| v.reborrow())
        })?;
        let mut out = self.session.execute(&plan, &inputs)?;
        Ok(out.swap_remove(0))
    }

    fn plan_for(&self, args: &[ArgView<'_>]) -> Result<Arc<ExecPlan>> {
        let mut cache = self
            .cache
            .lock()
            .map_err(|_| Error::Argument("compiled function poisoned by a panic".into()))?;
        if let Some(p) = cache.iter().find(|(shapes, _)| {
            shapes.len() == args.len() && shapes.iter().zip(args).all(|(s, a)| s == a.shape())
        }) {
            return Ok(p.1.clone());
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
                .plan(std::slice::from_ref(&self.expr), &lookup)?,
        );
        cache.insert(0, (shapes, plan.clone()));
        cache.truncate(8);
        Ok(plan)
    }
}

/// One kernel of an [`Explain`] report.
#[derive(Debug, Clone)]
pub struct KernelInfo {
    pub index: usize,
    /// The kernel IR text.
    pub ir: String,
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
            "kernels": kernels,
            "shared": self.shared,
        })
        .to_string()
    }
}

/// Bytes in human units (decimal, like disk and bandwidth figures: 1 GB = 1e9 B).
pub fn human_bytes(b: u64) -> String {
    let b = b as f64;
    if b >= 1e9 {
        format!("{:.1} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.1} MB", b / 1e6)
    } else if b >= 1e3 {
        format!("{:.1} kB", b / 1e3)
    } else {
        format!("{b} B")
    }
}

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
            for line in k.ir.lines() {
                writeln!(f, "  {line}")?;
            }
        }
        for line in &self.shared {
            writeln!(f, "shared {line}")?;
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
