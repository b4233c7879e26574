//! The cost model: what a plan costs on each device, measured device parameters, and the choice
//! [`crate::Device::Auto`] makes.
//!
//! Three parts, in the order the session uses them:
//! - **Counting** ([`KernelCost::of`]): from a kernel's IR and its arguments' sizes, the bytes it
//!   reads and writes, and its instructions per element, split into arithmetic (everything a
//!   device does in a few cycles: add, mul, compare, select, casts, sqrt) and transcendental
//!   (calls to `sin`, `exp`, ... that cost tens of cycles). The CPU expands `exp` and `log` into
//!   primitives ([`crate::mathlib`]), so they count as arithmetic there; the GPU runs polyfills,
//!   counted as one transcendental each.
//! - **Device parameters** ([`DeviceParams`]): launch latency, thread start-up, memory bandwidth
//!   by size, arithmetic and transcendental throughput, transfer bandwidth each way, compile time
//!   and backend start-up. They are measured by short probes ([`calibrate_cpu`],
//!   [`calibrate_gpu`], well under a second each) the first time a device is a candidate, and
//!   kept in a per-machine file ([`cache_path`]) keyed by the device (CPU model and thread
//!   count; adapter name, backend and driver) and by the fusebox version: a new driver or a new
//!   release measures again. No threshold is written in code; the CPU's choice of threads is the
//!   backend's own rule ([`crate::cpu::threads::pool_pays`]) applied to the estimated
//!   single-thread time and the measured hand-off to its pool.
//! - **Estimating** ([`estimate_plan`]): per kernel and per candidate device,
//!   `total = transfer + launch + thread_start + compile + max(compute, memory)` (a roofline:
//!   a kernel is limited by its arithmetic or by its memory traffic, whichever is slower). Auto
//!   picks the device with the lowest sum over the plan's kernels. Where each input lives
//!   ([`Residence`]) decides the transfers: host data goes to the GPU and back, data already on
//!   the GPU costs nothing there but must come down to run on the CPU.
//!
//! Architecture invariant: this module reads kernels and device parameters; it never runs a
//! plan. The probes are the only code here that touches a backend.
use crate::array::ArgView;
use crate::cpu::CpuBackend;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::gpu::{AdapterInfo, GpuBackend};
use crate::kir::{Const, Inst, Kernel, KernelBuilder, Output, Value};
use crate::ops::{BinaryOp, UnaryOp};
use crate::target::{device_size, pool_pays};
use ndarray::Array1;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

/// Where a plan input lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Residence {
    /// Host memory (an ndarray).
    Host,
    /// On GPU adapter `n` (a [`crate::DeviceArray`]).
    Gpu(usize),
}

/// A device a plan can run on, for the cost model: the CPU JIT or GPU adapter `n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Cpu,
    Gpu(usize),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Cpu => f.write_str("cpu"),
            Target::Gpu(n) => write!(f, "gpu:{n}"),
        }
    }
}

/// Where a kernel argument comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgSource {
    /// Plan input `i`.
    Input(u32),
    /// The result of kernel `t` of the same plan.
    Temp(u32),
}

/// What one kernel does, counted from its IR and its arguments' sizes (device-independent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelCost {
    /// Elements of the iteration space.
    pub elements: u64,
    /// Loads per element (one per input).
    pub loads: u32,
    /// Arithmetic and transcendental instructions per element, as the GPU runs the kernel.
    pub arith: u32,
    pub transcendental: u32,
    /// The same after the CPU's math expansion (`exp`, `log` become arithmetic).
    pub cpu_arith: u32,
    pub cpu_transcendental: u32,
    /// Instructions the GPU and the CPU code generators see (compile time grows with them).
    pub insts: u32,
    pub cpu_insts: u32,
    /// Bytes read from the inputs and written to the output (host layout).
    pub bytes_read: u64,
    pub bytes_written: u64,
    /// Per argument: its bytes in host layout and in device layout (bool is 4 bytes there).
    pub arg_bytes: Vec<u64>,
    pub arg_device_bytes: Vec<u64>,
    /// Bytes of the result in device layout (one value for a reduction).
    pub out_device_bytes: u64,
    pub reduction: bool,
}

/// Instruction counts per element: (arithmetic, transcendental). Loads and constants are free
/// here (loads are memory traffic, constants are hoisted or folded into their instructions);
/// a fused multiply-add ([`Inst::Fma`]) and a table lookup ([`Inst::Lookup`]) are one
/// arithmetic instruction each.
pub fn op_counts(k: &Kernel) -> (u32, u32) {
    let (mut arith, mut transc) = (0u32, 0u32);
    for d in &k.insts {
        match d.inst {
            Inst::Load { .. } | Inst::Const(_) => {}
            Inst::Unary { op, .. } if op.is_transcendental() && op != UnaryOp::Sqrt => transc += 1,
            _ => arith += 1,
        }
    }
    // Each reduction accumulates once per element.
    arith += k
        .outputs
        .iter()
        .filter(|o| matches!(o, Output::Reduce { .. }))
        .count() as u32;
    (arith, transc)
}

impl KernelCost {
    /// Count kernel `k` run over `n` elements with arguments of `arg_lens` elements each and
    /// outputs of `out_lens` elements each (a full reduction's result is one element).
    pub fn of(k: &Kernel, arg_lens: &[usize], n: usize, out_lens: &[usize]) -> KernelCost {
        let (arith, transcendental) = op_counts(k);
        let expanded = crate::mathlib::expand(k);
        let (cpu_arith, cpu_transcendental) = op_counts(&expanded);
        let arg_bytes: Vec<u64> = k
            .inputs
            .iter()
            .zip(arg_lens)
            .map(|(t, l)| (t.size() * l) as u64)
            .collect();
        let arg_device_bytes = k
            .inputs
            .iter()
            .zip(arg_lens)
            .map(|(t, l)| (device_size(*t) * l) as u64)
            .collect();
        let reduction = k.is_reduction();
        let bytes_read = arg_bytes.iter().sum();
        let out_device_bytes = k
            .output_dtypes()
            .iter()
            .zip(out_lens)
            .map(|(t, l)| (device_size(*t) * l) as u64)
            .sum();
        KernelCost {
            elements: n as u64,
            loads: k.inputs.len() as u32,
            arith,
            transcendental,
            cpu_arith,
            cpu_transcendental,
            insts: k.insts.len() as u32,
            cpu_insts: expanded.insts.len() as u32,
            bytes_read,
            bytes_written: k.bytes_moved(arg_lens, out_lens) - bytes_read,
            arg_bytes,
            arg_device_bytes,
            out_device_bytes,
            reduction,
        }
    }

    /// A one-line summary: `1e8 elements, 1 load, 4 arith + 0 transcendental per element,
    /// store f64`.
    pub fn summary(&self, k: &Kernel) -> String {
        let out = k
            .outputs
            .iter()
            .map(|o| match *o {
                Output::Store { .. } => format!("store {}", k.dtype_of(*o)),
                Output::Reduce { op, .. } => format!("reduce.{op} {}", k.dtype_of(*o)),
            })
            .collect::<Vec<_>>()
            .join(", ");
        let cpu = if (self.cpu_arith, self.cpu_transcendental) != (self.arith, self.transcendental)
        {
            format!(
                " (CPU after math expansion: {} + {})",
                self.cpu_arith, self.cpu_transcendental
            )
        } else {
            String::new()
        };
        format!(
            "{} elements, {} load{}, {} arith + {} transcendental per element{cpu}, {out}",
            self.elements,
            self.loads,
            if self.loads == 1 { "" } else { "s" },
            self.arith,
            self.transcendental
        )
    }
}

/// A kernel of a plan, for the estimate: its counts and where its arguments come from.
#[derive(Debug, Clone)]
pub struct PlanKernel {
    pub cost: KernelCost,
    pub args: Vec<ArgSource>,
}

/// Measured parameters of one device (see the module docs). Times in seconds, rates per second.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceParams {
    /// What the parameters were measured on (the cache key).
    pub key: String,
    /// Threads a kernel runs on when it goes parallel (1 on a GPU: its parallelism is in the
    /// measured rates).
    pub threads: usize,
    /// Fixed cost of one kernel call (on a GPU: dispatch and one read-back round trip).
    pub launch_s: f64,
    /// Extra fixed cost of handing a kernel to the thread pool (the backend's measured
    /// hand-off; a kernel goes parallel when [`pool_pays`]).
    pub thread_start_s: f64,
    /// Memory bandwidth by traffic size: `[bytes moved by one kernel, bytes per second]`,
    /// ascending in bytes.
    pub bandwidth: Vec<[f64; 2]>,
    /// Arithmetic instructions per second over elements (one thread on the CPU).
    pub arith_per_s: f64,
    /// Transcendental calls per second over elements (one thread on the CPU).
    pub transcendental_per_s: f64,
    /// Host -> device and device -> host bytes per second (0 on the CPU: nothing to move).
    pub h2d_per_s: f64,
    pub d2h_per_s: f64,
    /// Compile time of a kernel: `compile_base_s + compile_per_inst_s * instructions`.
    pub compile_base_s: f64,
    pub compile_per_inst_s: f64,
    /// Starting the backend (thread pool; GPU device and queue), paid once per session.
    pub startup_s: f64,
    /// How long the probes took.
    pub probe_s: f64,
}

impl DeviceParams {
    /// Bandwidth for a kernel moving `bytes`: log-linear interpolation in the measured table,
    /// the nearest measurement outside it.
    pub fn bandwidth_at(&self, bytes: f64) -> f64 {
        let t = &self.bandwidth;
        let Some(first) = t.first() else {
            return f64::INFINITY;
        };
        if bytes <= first[0] {
            return first[1];
        }
        for w in t.windows(2) {
            let ([b0, r0], [b1, r1]) = (w[0], w[1]);
            if bytes <= b1 {
                let f = (bytes.ln() - b0.ln()) / (b1.ln() - b0.ln()).max(f64::MIN_POSITIVE);
                return r0 + f * (r1 - r0);
            }
        }
        t[t.len() - 1][1]
    }

    fn compile_s(&self, insts: u32) -> f64 {
        self.compile_base_s + self.compile_per_inst_s * insts as f64
    }
}

/// The estimated time of one kernel on one device, by term (seconds), and the bytes it moves
/// between host and device.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Estimate {
    pub transfer_s: f64,
    pub launch_s: f64,
    pub thread_start_s: f64,
    pub compute_s: f64,
    pub memory_s: f64,
    pub compile_s: f64,
    pub bytes_to_device: u64,
    pub bytes_from_device: u64,
}

impl Estimate {
    /// `transfer + launch + thread_start + compile + max(compute, memory)`.
    pub fn total_s(&self) -> f64 {
        self.transfer_s
            + self.launch_s
            + self.thread_start_s
            + self.compile_s
            + self.compute_s.max(self.memory_s)
    }

    /// Term-by-term sum (a plan's estimate is the sum of its kernels').
    pub fn sum<'a>(it: impl IntoIterator<Item = &'a Estimate>) -> Estimate {
        let mut s = Estimate::default();
        for e in it {
            s.transfer_s += e.transfer_s;
            s.launch_s += e.launch_s;
            s.thread_start_s += e.thread_start_s;
            s.compute_s += e.compute_s;
            s.memory_s += e.memory_s;
            s.compile_s += e.compile_s;
            s.bytes_to_device += e.bytes_to_device;
            s.bytes_from_device += e.bytes_from_device;
        }
        s
    }

    /// The JSON form (`--explain --json`), with `total_s`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "total_s": self.total_s(),
            "transfer_s": self.transfer_s,
            "launch_s": self.launch_s,
            "thread_start_s": self.thread_start_s,
            "compute_s": self.compute_s,
            "memory_s": self.memory_s,
            "compile_s": self.compile_s,
            "bytes_to_device": self.bytes_to_device,
            "bytes_from_device": self.bytes_from_device,
        })
    }
}

/// One candidate device of an estimate.
#[derive(Debug, Clone)]
pub struct Candidate<'a> {
    pub target: Target,
    pub params: &'a DeviceParams,
    /// Per kernel: already compiled on this device (no compile cost).
    pub cached: Vec<bool>,
    /// Whether the backend is already running (no start-up cost).
    pub started: bool,
}

/// How the estimate treats one-time costs and the result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mode {
    /// Count compilation and backend start-up (`compute`: used once). `false` for compiled
    /// functions, called many times: one-time costs are amortized away.
    pub one_time_costs: bool,
    /// The caller wants the result on the host (`compute`), not left on a GPU.
    pub result_on_host: bool,
}

/// Per-kernel estimates of `plan` on `cand`, with inputs living at `residency`. `transfer`
/// gives the parameters of GPU `n` (for the cost of bringing its resident inputs to the CPU).
///
/// On a GPU, a plan whose inputs are all on the host runs through the host path (each kernel
/// uploads its arguments and reads its result back, as [`GpuBackend::run`] does); a plan with
/// an input already on that GPU runs resident (inputs uploaded once, temporaries stay there).
pub fn estimate_plan(
    plan: &[PlanKernel],
    residency: &[Residence],
    cand: &Candidate<'_>,
    transfer: &dyn Fn(usize) -> Option<DeviceParams>,
    mode: Mode,
) -> Vec<Estimate> {
    let p = cand.params;
    let mut moved = vec![false; residency.len()];
    let resident_path = match cand.target {
        Target::Gpu(g) => residency.contains(&Residence::Gpu(g)),
        Target::Cpu => false,
    };
    let last = plan.len().saturating_sub(1);
    plan.iter()
        .enumerate()
        .map(|(i, k)| {
            let c = &k.cost;
            let mut e = Estimate {
                launch_s: p.launch_s,
                ..Estimate::default()
            };
            if mode.one_time_costs && !cand.cached.get(i).copied().unwrap_or(false) {
                let insts = match cand.target {
                    Target::Cpu => c.cpu_insts,
                    Target::Gpu(_) => c.insts,
                };
                e.compile_s = p.compile_s(insts);
            }
            if mode.one_time_costs && !cand.started && i == 0 {
                e.compile_s += p.startup_s;
            }
            let n = c.elements as f64;
            match cand.target {
                Target::Cpu => {
                    let bytes = (c.bytes_read + c.bytes_written) as f64;
                    e.memory_s = bytes / p.bandwidth_at(bytes);
                    e.compute_s = n
                        * (c.cpu_arith as f64 / p.arith_per_s
                            + c.cpu_transcendental as f64 / p.transcendental_per_s);
                    // The backend's rule on the single-thread time (its pool shares the work).
                    if pool_pays(e.compute_s.max(e.memory_s), p.threads, p.thread_start_s) {
                        e.thread_start_s = p.thread_start_s;
                        e.compute_s /= p.threads as f64;
                    }
                    // Inputs resident on a GPU come down once, at their first use.
                    for (a, bytes) in k.args.iter().zip(&c.arg_device_bytes) {
                        if let ArgSource::Input(j) = *a {
                            let j = j as usize;
                            if let (Some(Residence::Gpu(g)), false) =
                                (residency.get(j), moved.get(j).copied().unwrap_or(true))
                            {
                                moved[j] = true;
                                let rate = transfer(*g).map_or(f64::INFINITY, |t| t.d2h_per_s);
                                e.bytes_from_device += bytes;
                                e.transfer_s += *bytes as f64 / rate;
                            }
                        }
                    }
                }
                Target::Gpu(g) => {
                    let bytes =
                        (c.arg_device_bytes.iter().sum::<u64>() + c.out_device_bytes) as f64;
                    e.memory_s = bytes / p.bandwidth_at(bytes);
                    e.compute_s = n
                        * (c.arith as f64 / p.arith_per_s
                            + c.transcendental as f64 / p.transcendental_per_s);
                    for (a, bytes) in k.args.iter().zip(&c.arg_device_bytes) {
                        let up = match *a {
                            ArgSource::Input(j) => {
                                let j = j as usize;
                                let here = residency.get(j) == Some(&Residence::Gpu(g));
                                let first = !moved.get(j).copied().unwrap_or(true);
                                if resident_path {
                                    if !here && first {
                                        moved[j] = true;
                                    }
                                    !here && first
                                } else {
                                    !here
                                }
                            }
                            ArgSource::Temp(_) => !resident_path,
                        };
                        if up {
                            e.bytes_to_device += bytes;
                        }
                    }
                    let down = !resident_path || (i == last && mode.result_on_host);
                    if down {
                        e.bytes_from_device += c.out_device_bytes;
                    }
                    e.transfer_s = e.bytes_to_device as f64 / p.h2d_per_s
                        + e.bytes_from_device as f64 / p.d2h_per_s;
                }
            }
            e
        })
        .collect()
}

/// A lower bound of any plan of `kernels` kernels on a GPU with parameters `p`: one launch per
/// kernel, plus start-up and one compilation per kernel when one-time costs count.
pub fn gpu_floor(p: &DeviceParams, kernels: usize, one_time_costs: bool) -> f64 {
    let k = kernels as f64;
    k * p.launch_s
        + if one_time_costs {
            p.startup_s + k * p.compile_base_s
        } else {
            0.0
        }
}

/// The candidate with the lowest total (the first on ties). `None` for no candidates.
pub fn choose(totals: &[(Target, f64)]) -> Option<Target> {
    totals
        .iter()
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(t, _)| *t)
}

/// Errors that mean "this device failed", after which Auto retries on the CPU (as opposed to
/// errors in the user's expression or data, which every device would report).
pub fn is_device_error(e: &Error) -> bool {
    matches!(
        e,
        Error::Device(_)
            | Error::DeviceLost(_)
            | Error::OutOfMemory(_)
            | Error::Compile(_)
            | Error::UnsupportedDtype(_)
            | Error::TooLarge(_)
    )
}

// ---- adapters (listed once per process) ---------------------------------------------------

/// The GPU adapters, enumerated once per process (listing them loads drivers: milliseconds).
pub fn adapters() -> &'static [AdapterInfo] {
    static LIST: OnceLock<Vec<AdapterInfo>> = OnceLock::new();
    LIST.get_or_init(crate::gpu::adapters)
}

// ---- calibration cache ------------------------------------------------------------------

/// Where calibrations are kept: `$FUSEBOX_CALIBRATION` if set, else
/// `$XDG_CACHE_HOME/fusebox/calibration.json`, else `$HOME/.cache/fusebox/calibration.json`
/// (None when neither is set: calibrations then live for the process only).
pub fn cache_path() -> Option<PathBuf> {
    cache_path_from(&|k| std::env::var(k).ok())
}

/// [`cache_path`] with the environment given as a function (testable without touching the
/// process environment).
pub fn cache_path_from(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let set = |k: &str| env(k).filter(|v| !v.is_empty());
    if let Some(p) = set("FUSEBOX_CALIBRATION") {
        return Some(PathBuf::from(p));
    }
    let dir = set("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| set("HOME").map(|h| Path::new(&h).join(".cache")))?;
    Some(dir.join("fusebox").join("calibration.json"))
}

/// The file's content.
#[derive(Debug, Default, Serialize, Deserialize)]
struct CacheFile {
    /// The fusebox version that measured (another version measures again).
    fusebox: String,
    devices: Vec<DeviceParams>,
}

/// A calibration file and what was read from or added to it.
pub struct CalibrationCache {
    path: Option<PathBuf>,
    /// `None` until the file is read.
    devices: Mutex<Option<Vec<DeviceParams>>>,
}

impl CalibrationCache {
    /// A cache backed by `path` (nothing is read until first use).
    pub fn at(path: Option<PathBuf>) -> CalibrationCache {
        CalibrationCache {
            path,
            devices: Mutex::new(None),
        }
    }

    /// The process-wide cache at [`cache_path`].
    pub fn global() -> &'static CalibrationCache {
        static C: OnceLock<CalibrationCache> = OnceLock::new();
        C.get_or_init(|| CalibrationCache::at(cache_path()))
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The parameters stored under `key`, or `measure()`'s, which are then stored (in memory
    /// and in the file; a file that cannot be written is reported by a `tracing` warning and
    /// the measurement is still used). Concurrent callers wait for one measurement.
    pub fn get_or_measure(
        &self,
        key: &str,
        measure: impl FnOnce() -> Result<DeviceParams>,
    ) -> Result<DeviceParams> {
        let mut guard = self
            .devices
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let devices = guard.get_or_insert_with(|| self.read());
        if let Some(p) = devices.iter().find(|d| d.key == key) {
            return Ok(p.clone());
        }
        let mut p = measure()?;
        p.key = key.to_string();
        devices.push(p.clone());
        if let Err(e) = self.write(devices) {
            tracing::warn!(
                "fusebox: cannot write the calibration file {:?}: {e}",
                self.path
            );
        }
        Ok(p)
    }

    /// The GPUs this cache has measured (on this machine, whether or not present now).
    pub fn known_gpus(&self) -> Vec<DeviceParams> {
        let mut guard = self
            .devices
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        guard
            .get_or_insert_with(|| self.read())
            .iter()
            .filter(|d| d.key.starts_with("gpu "))
            .cloned()
            .collect()
    }

    /// The file's devices, if it exists, parses, and was written by this version.
    fn read(&self) -> Vec<DeviceParams> {
        let Some(path) = &self.path else {
            return vec![];
        };
        let Ok(text) = std::fs::read_to_string(path) else {
            return vec![];
        };
        match serde_json::from_str::<CacheFile>(&text) {
            Ok(f) if f.fusebox == env!("CARGO_PKG_VERSION") => f.devices,
            Ok(_) => vec![],
            Err(e) => {
                tracing::warn!("fusebox: ignoring unreadable calibration file {path:?}: {e}");
                vec![]
            }
        }
    }

    fn write(&self, devices: &[DeviceParams]) -> std::io::Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = CacheFile {
            fusebox: env!("CARGO_PKG_VERSION").to_string(),
            devices: devices.to_vec(),
        };
        let text = serde_json::to_string_pretty(&file).map_err(std::io::Error::other)?;
        // Write beside, then rename: a reader never sees half a file.
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, path)
    }
}

/// The calibration key of the CPU running `threads` threads.
pub fn cpu_key(threads: usize) -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    format!("cpu {model}, {threads} threads{}", build())
}

/// The calibration key of a GPU adapter.
pub fn gpu_key(info: &AdapterInfo) -> String {
    format!(
        "gpu {} ({}, {}, driver {}){}",
        info.name,
        info.backend,
        info.device_type,
        info.driver,
        build()
    )
}

/// Debug builds of fusebox pay more per call on the host side: measured separately.
fn build() -> &'static str {
    if cfg!(debug_assertions) {
        ", debug build"
    } else {
        ""
    }
}

// ---- probes -----------------------------------------------------------------------------

/// `x -> x` over f64.
fn copy_kernel() -> Kernel {
    let mut b = KernelBuilder::new();
    let i = b.input(DType::F64);
    let v = b.push(Inst::Load { input: i }, DType::F64);
    b.finish(Output::Store { value: v })
}

/// `ops` dependent f64 multiply-adds per element (`ops` arithmetic instructions).
fn chain_kernel(ops: u32) -> Kernel {
    let mut b = KernelBuilder::new();
    let i = b.input(DType::F64);
    let mut v = b.push(Inst::Load { input: i }, DType::F64);
    let a = b.push(Inst::Const(Const::F64(0.999_999_9)), DType::F64);
    let c = b.push(Inst::Const(Const::F64(1e-7)), DType::F64);
    for j in 0..ops {
        let (op, rhs) = if j % 2 == 0 {
            (BinaryOp::Mul, a)
        } else {
            (BinaryOp::Add, c)
        };
        v = b.push(Inst::Binary { op, lhs: v, rhs }, DType::F64);
    }
    b.finish(Output::Store { value: v })
}

/// `reps` nested calls of `op` per element.
fn transcendental_kernel(op: UnaryOp, reps: u32) -> Kernel {
    let mut b = KernelBuilder::new();
    let i = b.input(DType::F64);
    let mut v: Value = b.push(Inst::Load { input: i }, DType::F64);
    for _ in 0..reps {
        v = b.push(Inst::Unary { op, arg: v }, DType::F64);
    }
    b.finish(Output::Store { value: v })
}

/// The fastest of 3 timed calls after one warm-up call, in seconds (the fastest: a probe
/// measures what the device can do, and other processes only ever slow it down); one timed
/// call when the warm-up took longer than 100 ms (the probes' budget is well under a second per
/// device).
fn time(mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    let warm = Instant::now();
    f()?;
    if warm.elapsed().as_secs_f64() > 0.1 {
        let start = Instant::now();
        f()?;
        return Ok(start.elapsed().as_secs_f64());
    }
    let mut t = [0.0f64; 3];
    for s in &mut t {
        let start = Instant::now();
        f()?;
        *s = start.elapsed().as_secs_f64();
    }
    Ok(t.into_iter().fold(f64::INFINITY, f64::min))
}

/// Seconds of one call (for compilations, which happen once).
fn once<T>(f: impl FnOnce() -> Result<T>) -> Result<(T, f64)> {
    let start = Instant::now();
    let r = f()?;
    Ok((r, start.elapsed().as_secs_f64()))
}

/// A floor for differences of measured times (a probe must never yield a negative or zero
/// time: noise on a loaded machine can make a difference vanish).
const MIN_S: f64 = 1e-9;

/// Input data in [-1, 0] (keeps nested `exp` finite).
fn probe_input(n: usize) -> Array1<f64> {
    Array1::linspace(-1.0, 0.0, n)
}

/// Compile cost as `base + per_inst * insts` from two compilations.
fn compile_fit(small: (u32, f64), large: (u32, f64)) -> (f64, f64) {
    let per = ((large.1 - small.1) / (large.0.saturating_sub(small.0)).max(1) as f64).max(0.0);
    ((small.1 - per * small.0 as f64).max(0.0), per)
}

/// Measure the CPU backend `cpu` (a fresh one, so that the probes do not show in a session's
/// counters); `startup_s` is what creating it took. About 0.1 s.
pub fn calibrate_cpu(cpu: &CpuBackend, startup_s: f64) -> Result<DeviceParams> {
    let start = Instant::now();
    const CHAIN: u32 = 64;
    const TRANSC: u32 = 4;
    let copy_k = copy_kernel();
    let chain_k = chain_kernel(CHAIN);
    // A function the JIT leaves to libm (see `mathlib::expands`): what `cpu_transcendental`
    // counts. The expanded ones are primitives, priced as arithmetic.
    let libm_k = transcendental_kernel(UnaryOp::Tanh, TRANSC);
    let (copy, t_copy) = once(|| cpu.compile(&copy_k))?;
    let (_, t_chain) = once(|| cpu.compile(&chain_k))?;
    let (compile_base_s, compile_per_inst_s) = compile_fit(
        (crate::mathlib::expand(&copy_k).insts.len() as u32, t_copy),
        (crate::mathlib::expand(&chain_k).insts.len() as u32, t_chain),
    );
    let threads = cpu.threads();
    let run = |k: &crate::cpu::CpuKernel, x: &Array1<f64>| -> Result<()> {
        cpu.run(k, &[ArgView::from(x)], &[x.len()]).map(drop)
    };
    let one = probe_input(1);
    let launch_s = time(|| run(&copy, &one))?;
    let thread_start_s = cpu.handoff_s();
    let mut bandwidth = vec![];
    for log2 in [10u32, 13, 16, 19, 22] {
        let n = 1usize << log2;
        let x = probe_input(n);
        let before = cpu.runs().parallel;
        let t = time(|| run(&copy, &x))?;
        // The backend chose its threads itself; the hand-off is its price when it used them.
        let fixed = launch_s
            + if cpu.runs().parallel > before {
                thread_start_s
            } else {
                0.0
            };
        let bytes = 16.0 * n as f64;
        bandwidth.push([bytes, bytes / (t - fixed).max(MIN_S)]);
    }
    let mut params = DeviceParams {
        key: String::new(),
        threads,
        launch_s,
        thread_start_s,
        bandwidth,
        arith_per_s: 1.0,
        transcendental_per_s: 1.0,
        h2d_per_s: 0.0,
        d2h_per_s: 0.0,
        compile_base_s,
        compile_per_inst_s,
        startup_s,
        probe_s: 0.0,
    };
    // Throughput on one thread, memory time subtracted: on a backend of one thread, so the
    // pool cannot take part.
    let single = CpuBackend::new(1)?;
    let (chain, libm) = (single.compile(&chain_k)?, single.compile(&libm_k)?);
    let run1 = |k: &crate::cpu::CpuKernel, x: &Array1<f64>| -> Result<()> {
        single.run(k, &[ArgView::from(x)], &[x.len()]).map(drop)
    };
    let n = 1 << 14;
    let x = probe_input(n);
    let mem = 16.0 * n as f64 / params.bandwidth_at(16.0 * n as f64);
    let t = time(|| run1(&chain, &x))?;
    params.arith_per_s = n as f64 * CHAIN as f64 / (t - launch_s - mem).max(MIN_S);
    let n = 1 << 12;
    let x = probe_input(n);
    let mem = 16.0 * n as f64 / params.bandwidth_at(16.0 * n as f64);
    let t = time(|| run1(&libm, &x))?;
    params.transcendental_per_s = n as f64 * TRANSC as f64 / (t - launch_s - mem).max(MIN_S);
    params.probe_s = start.elapsed().as_secs_f64();
    Ok(params)
}

/// Measure GPU backend `gpu` (a fresh one); `startup_s` is what opening it took. Probes stay
/// inside one storage binding. Well under a second on lavapipe.
pub fn calibrate_gpu(gpu: &GpuBackend, startup_s: f64) -> Result<DeviceParams> {
    let start = Instant::now();
    const CHAIN: u32 = 64;
    const TRANSC: u32 = 3;
    let copy_k = copy_kernel();
    let chain_k = chain_kernel(CHAIN);
    let exp_k = transcendental_kernel(UnaryOp::Exp, TRANSC);
    let (copy, t_copy) = once(|| gpu.compile(&copy_k))?;
    let (chain, t_chain) = once(|| gpu.compile(&chain_k))?;
    let exp = gpu.compile(&exp_k)?;
    let (compile_base_s, compile_per_inst_s) = compile_fit(
        (copy_k.insts.len() as u32, t_copy),
        (chain_k.insts.len() as u32, t_chain),
    );
    let limit = gpu.info().max_binding_size.max(1 << 16);
    let fits = |n: usize| (8 * n) as u64 <= limit;
    let small = gpu.upload(&ArgView::from(&probe_input(1)))?;
    // Reading one value back waits for everything queued before it.
    let sync = || gpu.download(&small).map(drop);
    let t_sync = time(sync)?;
    let launch_s = time(|| {
        let out = gpu.run_resident(&copy, &[&small], &[1])?;
        gpu.download(&out).map(drop)
    })?;
    let resident = |k: &crate::gpu::GpuKernel, n: usize| -> Result<f64> {
        let a = gpu.upload(&ArgView::from(&probe_input(n)))?;
        time(|| {
            let out = gpu.run_resident(k, &[&a], &[n])?;
            drop(out);
            sync()
        })
    };
    let mut bandwidth = vec![];
    for log2 in [12u32, 16, 20, 22] {
        let n = 1usize << log2;
        if !fits(n) {
            break;
        }
        let t = resident(&copy, n)?;
        let bytes = 16.0 * n as f64;
        bandwidth.push([bytes, bytes / (t - launch_s).max(MIN_S)]);
    }
    let mut n = 1usize << 21;
    while !fits(n) && n > 1 {
        n /= 2;
    }
    let host = probe_input(n);
    let t_up = time(|| {
        let a = gpu.upload(&ArgView::from(&host))?;
        drop(a);
        sync()
    })?;
    let h2d_per_s = 8.0 * n as f64 / (t_up - t_sync).max(MIN_S);
    let a = gpu.upload(&ArgView::from(&host))?;
    let t_down = time(|| gpu.download(&a).map(drop))?;
    let d2h_per_s = 8.0 * n as f64 / (t_down - t_sync).max(MIN_S);
    let mut params = DeviceParams {
        key: String::new(),
        threads: 1,
        launch_s,
        thread_start_s: 0.0,
        bandwidth,
        arith_per_s: 1.0,
        transcendental_per_s: 1.0,
        h2d_per_s,
        d2h_per_s,
        compile_base_s,
        compile_per_inst_s,
        startup_s,
        probe_s: 0.0,
    };
    let n = (1usize << 18).min(limit as usize / 8);
    let mem = 16.0 * n as f64 / params.bandwidth_at(16.0 * n as f64);
    let t = resident(&chain, n)?;
    params.arith_per_s = n as f64 * CHAIN as f64 / (t - launch_s - mem).max(MIN_S);
    let n = (1usize << 16).min(limit as usize / 8);
    let mem = 16.0 * n as f64 / params.bandwidth_at(16.0 * n as f64);
    let t = resident(&exp, n)?;
    params.transcendental_per_s = n as f64 * TRANSC as f64 / (t - launch_s - mem).max(MIN_S);
    params.probe_s = start.elapsed().as_secs_f64();
    Ok(params)
}

/// The CPU's parameters for `threads` threads, from `cache` or measured (on a fresh backend).
pub fn cpu_params(cache: &CalibrationCache, threads: usize) -> Result<DeviceParams> {
    cache.get_or_measure(&cpu_key(threads), || {
        let (cpu, startup) = once(|| CpuBackend::new(threads))?;
        calibrate_cpu(&cpu, startup)
    })
}

/// GPU adapter `info`'s parameters, from `cache` or measured (on a freshly opened device).
pub fn gpu_params(cache: &CalibrationCache, info: &AdapterInfo) -> Result<DeviceParams> {
    cache.get_or_measure(&gpu_key(info), || {
        let (gpu, startup) = once(|| GpuBackend::new(info.index))?;
        calibrate_gpu(&gpu, startup)
    })
}

/// A device's estimate, labelled (`cpu`, `gpu:0`), for [`crate::Explain`].
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceEstimate {
    pub device: String,
    pub estimate: Estimate,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fma_counts_as_one_arithmetic_op() {
        let mut b = KernelBuilder::new();
        let i = b.input(DType::F64);
        let x = b.push(Inst::Load { input: i }, DType::F64);
        let c = b.push(Inst::Const(Const::F64(2.0)), DType::F64);
        let f = b.push(Inst::Fma { a: x, b: c, c: x }, DType::F64);
        let k = b.finish(Output::Store { value: f });
        assert_eq!(op_counts(&k), (1, 0));
    }

    fn params(bandwidth: Vec<[f64; 2]>) -> DeviceParams {
        DeviceParams {
            key: "t".into(),
            threads: 1,
            launch_s: 1e-6,
            thread_start_s: 0.0,
            bandwidth,
            arith_per_s: 1e9,
            transcendental_per_s: 1e8,
            h2d_per_s: 1e9,
            d2h_per_s: 1e9,
            compile_base_s: 1e-3,
            compile_per_inst_s: 1e-5,
            startup_s: 0.1,
            probe_s: 0.0,
        }
    }

    #[test]
    fn counts_split_arithmetic_from_transcendentals() {
        // chain_kernel(6): 6 arithmetic instructions, no call.
        assert_eq!(op_counts(&chain_kernel(6)), (6, 0));
        // exp is a call on the GPU, primitives after the CPU's expansion.
        let k = transcendental_kernel(UnaryOp::Exp, 2);
        assert_eq!(op_counts(&k), (0, 2));
        let c = KernelCost::of(&k, &[10], 10, &[10]);
        assert_eq!((c.transcendental, c.cpu_transcendental), (2, 0));
        assert!(c.cpu_arith > 10, "{c:?}");
        assert_eq!((c.bytes_read, c.bytes_written), (80, 80));
        // tanh stays a call on both (libm on the CPU: see `mathlib::expands`).
        let c = KernelCost::of(&transcendental_kernel(UnaryOp::Tanh, 1), &[4], 4, &[4]);
        assert_eq!((c.transcendental, c.cpu_transcendental), (1, 1));
    }

    #[test]
    fn bandwidth_interpolates_in_log_size_and_clamps() {
        let p = params(vec![[1e3, 10.0], [1e5, 30.0]]);
        assert_eq!(p.bandwidth_at(1.0), 10.0);
        assert_eq!(p.bandwidth_at(1e9), 30.0);
        assert!((p.bandwidth_at(1e4) - 20.0).abs() < 1e-9);
        assert_eq!(params(vec![]).bandwidth_at(5.0), f64::INFINITY);
    }

    #[test]
    fn one_time_costs_count_once_and_only_when_asked() {
        let p = params(vec![[1.0, 1e9]]);
        let k = PlanKernel {
            cost: KernelCost::of(&chain_kernel(2), &[100], 100, &[100]),
            args: vec![ArgSource::Input(0)],
        };
        let plan = vec![
            k.clone(),
            PlanKernel {
                args: vec![ArgSource::Temp(0)],
                ..k
            },
        ];
        let cand = Candidate {
            target: Target::Cpu,
            params: &p,
            cached: vec![false, true],
            started: false,
        };
        let none = |_| None;
        let one = Mode {
            one_time_costs: true,
            result_on_host: true,
        };
        let es = estimate_plan(&plan, &[Residence::Host], &cand, &none, one);
        let insts = plan[0].cost.cpu_insts as f64;
        assert!((es[0].compile_s - (0.1 + 1e-3 + 1e-5 * insts)).abs() < 1e-12);
        assert_eq!(es[1].compile_s, 0.0, "cached");
        let many = Mode {
            one_time_costs: false,
            ..one
        };
        let es = estimate_plan(&plan, &[Residence::Host], &cand, &none, many);
        assert!(es.iter().all(|e| e.compile_s == 0.0));
        assert!(gpu_floor(&p, 2, false) < gpu_floor(&p, 2, true));
    }

    #[test]
    fn gpu_resident_plans_keep_temporaries_on_the_device() {
        let p = params(vec![[1.0, 1e9]]);
        let k = PlanKernel {
            cost: KernelCost::of(&chain_kernel(2), &[100], 100, &[100]),
            args: vec![ArgSource::Input(0)],
        };
        let plan = vec![
            k.clone(),
            PlanKernel {
                args: vec![ArgSource::Temp(0)],
                ..k
            },
        ];
        let cand = Candidate {
            target: Target::Gpu(0),
            params: &p,
            cached: vec![true, true],
            started: true,
        };
        let mode = Mode {
            one_time_costs: true,
            result_on_host: true,
        };
        let none = |_| None;
        let host = Estimate::sum(&estimate_plan(
            &plan,
            &[Residence::Host],
            &cand,
            &none,
            mode,
        ));
        // Host path: each kernel moves its argument up and its result down.
        assert_eq!((host.bytes_to_device, host.bytes_from_device), (1600, 1600));
        let res = Estimate::sum(&estimate_plan(
            &plan,
            &[Residence::Gpu(0)],
            &cand,
            &none,
            mode,
        ));
        // Resident: only the final result comes down.
        assert_eq!((res.bytes_to_device, res.bytes_from_device), (0, 800));
        assert_eq!(
            choose(&[(Target::Cpu, 2.0), (Target::Gpu(0), 1.0)]),
            Some(Target::Gpu(0))
        );
    }
}
