//! The cost model, pure: what a plan costs on each candidate device, from the kernels' IR and
//! measured device parameters, and the choice [`crate::Device::Auto`] makes.
//!
//! - **Counting** ([`KernelCost::of`]): from a kernel's IR and its arguments' sizes, the bytes it
//!   reads and writes, and its instructions per element, split into arithmetic (everything a
//!   device does in a few cycles: add, mul, compare, select, casts, sqrt) and transcendental
//!   (calls to `sin`, `exp`, ... that cost tens of cycles). The CPU expands `exp` and `log` into
//!   primitives ([`crate::mathlib`]), so they count as arithmetic there; the GPU expands every
//!   math function ([`crate::mathlib::Target::WGSL`]), so it counts no transcendental.
//! - **Device parameters** ([`DeviceParams`]): launch latency, thread start-up, memory bandwidth
//!   by size, arithmetic and transcendental throughput, transfer bandwidth each way, compile time
//!   and backend start-up, measured by [`super::probes`] and kept by [`super::calibration`].
//!   No threshold is written in code; the CPU's choice of threads is the backend's own rule
//!   ([`crate::target::pool_pays`]) applied to the estimated single-thread time and the measured
//!   hand-off to its pool.
//! - **Estimating** ([`estimate_plan`]): per kernel and per candidate device,
//!   `total = transfer + launch + sync + thread_start + compile + max(compute, memory) -
//!   overlap` (a roofline: a kernel is limited by its arithmetic or by its memory traffic,
//!   whichever is slower). Compute counts each instruction at its dtype's rate (float64 is
//!   1/2 to 1/64 of float32 on GPUs). Auto picks the device with the lowest sum over the plan's
//!   kernels. Where each input lives ([`Residence`]) decides the transfers: host data goes to
//!   the GPU and back, data already on the GPU costs nothing there but must come down to run
//!   on the CPU. On a GPU, a plan of several kernels on host data runs resident when every
//!   array fits one binding (inputs up once, only the result down, one wait for the device);
//!   otherwise each kernel runs through the host path, which waits for the device once per
//!   kernel and streams a kernel of stores in chunks through a ring of staging buffers, so
//!   that upload, compute and download overlap: `overlap` is what the pipeline hides,
//!   `(up + down + work - max(up, down, work)) * (1 - 1/chunks)`, so the kernel costs about
//!   `max(up, down, work)` once the chunks are many.
//!
//! Architecture invariant: this module imports no backend and runs nothing. It reads kernel IR
//! and numbers, so every estimate can be tested with made-up devices.
use crate::kir::{Inst, Kernel, Output};
use crate::ops::UnaryOp;
use crate::target::{device_size, pool_pays};
use serde::{Deserialize, Serialize};

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
    /// Arithmetic and transcendental instructions per element, as the GPU runs the kernel
    /// (every math function expanded into arithmetic for [`crate::mathlib::Target::WGSL`]).
    pub arith: u32,
    pub transcendental: u32,
    /// Of `arith`, the instructions on float64 values (the rest run at the float32 rate).
    pub arith_f64: u32,
    /// The same after the CPU's math expansion (`exp`, `log` become arithmetic).
    pub cpu_arith: u32,
    pub cpu_arith_f64: u32,
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

/// Arithmetic instructions per element whose result is a float64 value (the part of
/// [`op_counts`]'s arithmetic that runs at a device's float64 rate).
pub fn f64_counts(k: &Kernel) -> u32 {
    k.insts
        .iter()
        .filter(|d| !matches!(d.inst, Inst::Load { .. } | Inst::Const(_)))
        .filter(|d| d.ty == crate::dtype::DType::F64)
        .filter(|d| !matches!(d.inst, Inst::Unary { op, .. } if op.is_transcendental() && op != UnaryOp::Sqrt))
        .count() as u32
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
        let gpu = crate::mathlib::expand_all_for(k, crate::mathlib::Target::WGSL);
        let (arith, transcendental) = op_counts(&gpu);
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
            arith_f64: f64_counts(&gpu),
            cpu_arith,
            cpu_arith_f64: f64_counts(&expanded),
            cpu_transcendental,
            insts: gpu.insts.len() as u32,
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
    /// Arithmetic instructions per second over elements (one thread on the CPU), measured on
    /// float64 values.
    pub arith_per_s: f64,
    /// The same on float32 (and integer) values; 0: as `arith_per_s` (calibrations written
    /// before it was measured).
    #[serde(default)]
    pub arith_f32_per_s: f64,
    /// Transcendental calls per second over elements (one thread on the CPU).
    pub transcendental_per_s: f64,
    /// Host -> device and device -> host bytes per second (0 on the CPU: nothing to move).
    pub h2d_per_s: f64,
    pub d2h_per_s: f64,
    /// One wait for the device: submit, then read a value back (0 on the CPU). `launch_s` is
    /// the rest of a kernel's fixed cost.
    #[serde(default)]
    pub sync_s: f64,
    /// Bytes of the largest device array (one storage binding); 0: no limit known.
    #[serde(default)]
    pub binding_bytes: f64,
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

    /// Seconds for `n` elements of `arith` arithmetic instructions, `wide` of them on float64
    /// values, and `transc` transcendental calls.
    pub fn compute_s(&self, n: f64, arith: u32, wide: u32, transc: u32) -> f64 {
        let narrow = if self.arith_f32_per_s > 0.0 {
            self.arith_f32_per_s
        } else {
            self.arith_per_s
        };
        n * (arith.saturating_sub(wide) as f64 / narrow
            + wide as f64 / self.arith_per_s
            + transc as f64 / self.transcendental_per_s)
    }
}

/// The estimated time of one kernel on one device, by term (seconds), and the bytes it moves
/// between host and device.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Estimate {
    pub transfer_s: f64,
    pub launch_s: f64,
    /// Waits for the device (GPU: once per kernel on the host path, once per resident plan
    /// whose result comes to the host).
    pub sync_s: f64,
    /// Time the streamed host path's pipeline hides (subtracted from the total).
    pub overlap_s: f64,
    pub thread_start_s: f64,
    pub compute_s: f64,
    pub memory_s: f64,
    pub compile_s: f64,
    pub bytes_to_device: u64,
    pub bytes_from_device: u64,
}

impl Estimate {
    /// `transfer + launch + sync + thread_start + compile + max(compute, memory) - overlap`.
    pub fn total_s(&self) -> f64 {
        self.transfer_s
            + self.launch_s
            + self.sync_s
            + self.thread_start_s
            + self.compile_s
            + self.compute_s.max(self.memory_s)
            - self.overlap_s
    }

    /// Term-by-term sum (a plan's estimate is the sum of its kernels').
    pub fn sum<'a>(it: impl IntoIterator<Item = &'a Estimate>) -> Estimate {
        let mut s = Estimate::default();
        for e in it {
            s.transfer_s += e.transfer_s;
            s.launch_s += e.launch_s;
            s.sync_s += e.sync_s;
            s.overlap_s += e.overlap_s;
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
            "sync_s": self.sync_s,
            "overlap_s": self.overlap_s,
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
/// On a GPU, as the executor does: a plan with an input already on that GPU, or of several
/// kernels whose arrays all fit one binding, runs resident (inputs uploaded once, temporaries
/// stay there, one wait for the result); otherwise each kernel runs through the host path
/// (uploads its arguments and reads its result back, waiting once; kernels of stores stream
/// through the pipeline).
pub fn estimate_plan(
    plan: &[PlanKernel],
    residency: &[Residence],
    cand: &Candidate<'_>,
    transfer: &dyn Fn(usize) -> Option<DeviceParams>,
    mode: Mode,
) -> Vec<Estimate> {
    let p = cand.params;
    let mut moved = vec![false; residency.len()];
    let fits = |bytes: u64| p.binding_bytes <= 0.0 || bytes as f64 <= p.binding_bytes;
    let resident_path = match cand.target {
        Target::Gpu(g) => {
            residency.contains(&Residence::Gpu(g))
                || (plan.len() > 1
                    && plan.iter().all(|k| {
                        k.cost.arg_device_bytes.iter().all(|b| fits(*b))
                            && fits(k.cost.out_device_bytes)
                    }))
        }
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
                    e.compute_s =
                        p.compute_s(n, c.cpu_arith, c.cpu_arith_f64, c.cpu_transcendental);
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
                    e.compute_s = p.compute_s(n, c.arith, c.arith_f64, c.transcendental);
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
                    let up = e.bytes_to_device as f64 / p.h2d_per_s;
                    let down = e.bytes_from_device as f64 / p.d2h_per_s;
                    e.transfer_s = up + down;
                    if !resident_path || down > 0.0 {
                        e.sync_s = p.sync_s;
                    }
                    e.overlap_s = if resident_path || c.reduction {
                        0.0
                    } else {
                        pipeline_overlap(up, down, e.compute_s.max(e.memory_s), c)
                    };
                }
            }
            e
        })
        .collect()
}

/// Time the streamed host path hides for a kernel of stores moving `up` and `down` seconds of
/// data around `work` seconds on the device: with `chunks` chunks through the ring, the kernel
/// takes about `max + (sum - max) / chunks`, so `(sum - max) * (1 - 1/chunks)` is hidden.
pub fn pipeline_overlap(up: f64, down: f64, work: f64, c: &KernelCost) -> f64 {
    let largest = c
        .arg_device_bytes
        .iter()
        .copied()
        .chain([c.out_device_bytes])
        .max()
        .unwrap_or(0);
    let chunks = crate::target::stream_chunks(largest) as f64;
    let (sum, max) = (up + down + work, up.max(down).max(work));
    (sum - max) * (1.0 - 1.0 / chunks)
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

/// A device's estimate, labelled (`cpu`, `gpu:0`), for [`crate::Explain`].
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceEstimate {
    pub device: String,
    pub estimate: Estimate,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dtype::{Const, DType};
    use crate::kir::KernelBuilder;
    use crate::place::probes::{chain_kernel, transcendental_kernel};

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
            arith_f32_per_s: 0.0,
            sync_s: 0.0,
            binding_bytes: 0.0,
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
        // exp is a call in the IR, primitives after either device's expansion.
        let k = transcendental_kernel(UnaryOp::Exp, 2);
        assert_eq!(op_counts(&k), (0, 2));
        let c = KernelCost::of(&k, &[10], 10, &[10]);
        assert_eq!((c.transcendental, c.cpu_transcendental), (0, 0));
        assert!(c.cpu_arith > 10 && c.arith > 10, "{c:?}");
        assert!(c.insts as usize > k.insts.len(), "{c:?}");
        assert_eq!((c.bytes_read, c.bytes_written), (80, 80));
        // tanh stays a call on the CPU (libm: see `mathlib::expands`), arithmetic on the GPU.
        let c = KernelCost::of(&transcendental_kernel(UnaryOp::Tanh, 1), &[4], 4, &[4]);
        assert_eq!((c.transcendental, c.cpu_transcendental), (0, 1));
        assert!(c.arith > 10, "{c:?}");
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
        let whole = Estimate::sum(&estimate_plan(
            &plan,
            &[Residence::Host],
            &cand,
            &none,
            mode,
        ));
        // Host data, every array fits one binding: the plan runs resident (the input up once,
        // the result down once, one wait for the device).
        assert_eq!((whole.bytes_to_device, whole.bytes_from_device), (800, 800));
        let small = DeviceParams {
            binding_bytes: 100.0,
            sync_s: 1e-4,
            ..p.clone()
        };
        let cand_small = Candidate {
            params: &small,
            ..cand.clone()
        };
        let host = Estimate::sum(&estimate_plan(
            &plan,
            &[Residence::Host],
            &cand_small,
            &none,
            mode,
        ));
        // Arrays larger than a binding: host path, each kernel moves its argument up and its
        // result down, and waits for the device.
        assert_eq!((host.bytes_to_device, host.bytes_from_device), (1600, 1600));
        assert!((host.sync_s - 2e-4).abs() < 1e-12, "{host:?}");
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

    fn gpu_params() -> DeviceParams {
        DeviceParams {
            arith_f32_per_s: 32e9,
            arith_per_s: 1e9,
            h2d_per_s: 10e9,
            d2h_per_s: 10e9,
            sync_s: 50e-6,
            ..params(vec![[1.0, 1e12]])
        }
    }

    fn gpu_cand(p: &DeviceParams) -> Candidate<'_> {
        Candidate {
            target: Target::Gpu(0),
            params: p,
            cached: vec![true],
            started: true,
        }
    }

    const ONE: Mode = Mode {
        one_time_costs: false,
        result_on_host: true,
    };

    #[test]
    fn float64_arithmetic_runs_at_its_own_rate() {
        let p = gpu_params();
        let n = 1000;
        let est = |t: DType| {
            let k = crate::place::probes::chain_kernel_of(t, 64);
            let pk = PlanKernel {
                cost: KernelCost::of(&k, &[n], n, &[n]),
                args: vec![ArgSource::Input(0)],
            };
            assert_eq!(pk.cost.arith, 64);
            assert_eq!(pk.cost.arith_f64, if t == DType::F64 { 64 } else { 0 });
            estimate_plan(&[pk], &[Residence::Gpu(0)], &gpu_cand(&p), &|_| None, ONE)[0]
        };
        let (e32, e64) = (est(DType::F32), est(DType::F64));
        assert!(
            (e32.compute_s - 1000.0 * 64.0 / 32e9).abs() < 1e-15,
            "{e32:?}"
        );
        assert!(
            (e64.compute_s - 1000.0 * 64.0 / 1e9).abs() < 1e-15,
            "{e64:?}"
        );
        // Calibrations without a float32 rate count everything at the measured one.
        let old = DeviceParams {
            arith_f32_per_s: 0.0,
            ..p.clone()
        };
        assert_eq!(old.compute_s(10.0, 4, 0, 0), old.compute_s(10.0, 4, 4, 0));
    }

    #[test]
    fn streamed_kernels_cost_the_slowest_stage_not_the_sum() {
        let p = gpu_params();
        // 2^24 f64 elements: 128 MiB in, 128 MiB out, 8 chunks of 16 MiB each way.
        let n = 1usize << 24;
        let k = PlanKernel {
            cost: KernelCost::of(&chain_kernel(2), &[n], n, &[n]),
            args: vec![ArgSource::Input(0)],
        };
        let chunks = crate::target::stream_chunks(8 * n as u64);
        assert_eq!(chunks, 8);
        let e = estimate_plan(&[k], &[Residence::Host], &gpu_cand(&p), &|_| None, ONE)[0];
        let (up, down) = (8.0 * n as f64 / 10e9, 8.0 * n as f64 / 10e9);
        assert!((e.transfer_s - (up + down)).abs() < 1e-12);
        let work = e.compute_s.max(e.memory_s);
        let (sum, max) = (up + down + work, up.max(down).max(work));
        assert!(
            (e.overlap_s - (sum - max) * (1.0 - 1.0 / 8.0)).abs() < 1e-12,
            "{e:?}"
        );
        // The total: the slowest stage plus an eighth of the rest, launch and one wait.
        let want = max + (sum - max) / 8.0 + p.launch_s + p.sync_s;
        assert!(
            (e.total_s() - want).abs() < 1e-9,
            "{} vs {want}",
            e.total_s()
        );
        assert!(e.total_s() < up + down + work);
        // One chunk hides nothing; reductions are not streamed through the ring.
        let small = PlanKernel {
            cost: KernelCost::of(&chain_kernel(2), &[1000], 1000, &[1000]),
            args: vec![ArgSource::Input(0)],
        };
        let e = estimate_plan(&[small], &[Residence::Host], &gpu_cand(&p), &|_| None, ONE);
        assert_eq!(e[0].overlap_s, 0.0);
    }

    #[test]
    fn resident_plans_wait_once() {
        let p = gpu_params();
        let k = PlanKernel {
            cost: KernelCost::of(&chain_kernel(2), &[100], 100, &[100]),
            args: vec![ArgSource::Input(0)],
        };
        let plan = vec![
            k.clone(),
            PlanKernel {
                args: vec![ArgSource::Temp(0)],
                ..k.clone()
            },
            PlanKernel {
                args: vec![ArgSource::Temp(1)],
                ..k
            },
        ];
        let cand = Candidate {
            cached: vec![true; 3],
            ..gpu_cand(&p)
        };
        let es = estimate_plan(&plan, &[Residence::Host], &cand, &|_| None, ONE);
        let syncs: Vec<f64> = es.iter().map(|e| e.sync_s).collect();
        assert_eq!(syncs, vec![0.0, 0.0, p.sync_s]);
        let kept = Mode {
            result_on_host: false,
            ..ONE
        };
        let es = estimate_plan(&plan, &[Residence::Host], &cand, &|_| None, kept);
        assert!(es.iter().all(|e| e.sync_s == 0.0));
    }
}
