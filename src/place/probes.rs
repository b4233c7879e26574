//! Probes: short measurements of a device (well under a second each) that fill in its
//! [`DeviceParams`], run the first time the device is a candidate and then kept by
//! [`super::calibration`]. The only code of `place` that runs a backend.
use super::calibration::CalibrationCache;
use super::model::DeviceParams;
use crate::array::ArgView;
use crate::cpu::CpuBackend;
use crate::dtype::{Const, DType};
use crate::error::Result;
use crate::gpu::{AdapterInfo, GpuBackend};
use crate::kir::{Inst, Kernel, KernelBuilder, Output, Value};
use crate::ops::{BinaryOp, UnaryOp};
use ndarray::Array1;
use std::time::Instant;

/// The calibration key of the CPU running `threads` threads.
pub fn cpu_key(threads: usize) -> String {
    format!("cpu {}, {threads} threads{}", cpu_model(), build())
}

/// The CPU's model name, read from `/proc/cpuinfo` once per process: every plan asks (through
/// the calibration lookup), and reading the file cost about half of a new shape's planning
/// (~15 of ~33 us at n = 1e3, `examples/small_call`).
fn cpu_model() -> &'static str {
    static MODEL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    MODEL.get_or_init(|| {
        std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, m)| m.trim().to_string())
            })
            .unwrap_or_else(|| std::env::consts::ARCH.to_string())
    })
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

/// `x -> x` over f64.
fn copy_kernel() -> Kernel {
    let mut b = KernelBuilder::new();
    let i = b.input(DType::F64);
    let v = b.push(Inst::Load { input: i }, DType::F64);
    b.finish(Output::Store { value: v })
}

/// `ops` dependent f64 multiply-adds per element (`ops` arithmetic instructions).
pub(crate) fn chain_kernel(ops: u32) -> Kernel {
    chain_kernel_of(DType::F64, ops)
}

/// `ops` dependent multiply-adds per element in float type `t`.
pub(crate) fn chain_kernel_of(t: DType, ops: u32) -> Kernel {
    let mut b = KernelBuilder::new();
    let i = b.input(t);
    let mut v = b.push(Inst::Load { input: i }, t);
    let (ca, cc) = match t {
        DType::F32 => (Const::F32(0.999_999), Const::F32(1e-7)),
        _ => (Const::F64(0.999_999_9), Const::F64(1e-7)),
    };
    let a = b.push(Inst::Const(ca), t);
    let c = b.push(Inst::Const(cc), t);
    for j in 0..ops {
        let (op, rhs) = if j % 2 == 0 {
            (BinaryOp::Mul, a)
        } else {
            (BinaryOp::Add, c)
        };
        v = b.push(Inst::Binary { op, lhs: v, rhs }, t);
    }
    b.finish(Output::Store { value: v })
}

/// `reps` nested calls of `op` per element.
pub(crate) fn transcendental_kernel(op: UnaryOp, reps: u32) -> Kernel {
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
        arith_f32_per_s: 0.0,
        sync_s: 0.0,
        binding_bytes: 0.0,
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
    let chain32 = gpu.compile(&chain_kernel_of(DType::F32, CHAIN))?;
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
        let input = probe_input(n);
        let a = if k.kernel().inputs.first() == Some(&DType::F32) {
            gpu.upload(&ArgView::from(&input.mapv(|x| x as f32)))?
        } else {
            gpu.upload(&ArgView::from(&input))?
        };
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
        // A launch as measured includes one wait for the device: the rest is the launch.
        launch_s: (launch_s - t_sync).max(MIN_S),
        thread_start_s: 0.0,
        bandwidth,
        arith_per_s: 1.0,
        transcendental_per_s: 1.0,
        h2d_per_s,
        d2h_per_s,
        arith_f32_per_s: 0.0,
        sync_s: t_sync,
        binding_bytes: limit as f64,
        compile_base_s,
        compile_per_inst_s,
        startup_s,
        probe_s: 0.0,
    };
    let n = (1usize << 18).min(limit as usize / 8);
    let mem = 16.0 * n as f64 / params.bandwidth_at(16.0 * n as f64);
    let t = resident(&chain, n)?;
    params.arith_per_s = n as f64 * CHAIN as f64 / (t - launch_s - mem).max(MIN_S);
    let mem32 = 8.0 * n as f64 / params.bandwidth_at(8.0 * n as f64);
    let t = resident(&chain32, n)?;
    params.arith_f32_per_s = n as f64 * CHAIN as f64 / (t - launch_s - mem32).max(MIN_S);
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
