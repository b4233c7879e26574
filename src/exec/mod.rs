//! The executor: the one place where plans run and data moves between the host and a device.
//!
//! A plan ([`crate::opt::Plan`]) is a list of steps, each a kernel over an iteration space
//! reading plan inputs or results of earlier steps. [`prepare`] compiles every step for the
//! device placement chose ([`ExecPlan`]); [`execute`] runs the steps in order over
//! [`Buffer`]s, keeping each temporary only until its last reader has run, so an unfused plan
//! holds no more temporaries than NumPy would.
//!
//! Every caller goes through [`execute`]: `Session::compute*` (host inputs), compiled
//! functions (host inputs, plan cached), and `Session::compute_on_device` (inputs already on a
//! GPU). Where a buffer lives decides how a step runs:
//! - a CPU kernel reads host buffers (a device buffer would be downloaded first);
//! - a GPU plan of several kernels on host data runs resident whenever every array fits one
//!   storage binding: each input is uploaded once, temporaries and reduction partials stay on
//!   the device, only the results come down (`Stats` counts the bytes);
//! - otherwise a GPU kernel whose arguments are all on the host runs through the backend's
//!   host path (kernels of stores stream chunks through a ring of staging buffers);
//! - a GPU kernel with an argument already on the device runs resident: host arguments are
//!   uploaded (plan inputs once per run), results stay on the device.
//!
//! Under `Device::Auto` a plan whose GPU fails (shader rejected, out of memory, device lost)
//! runs again on the CPU ([`crate::Error::is_device_error`]); the session counts it.
//!
//! Architecture invariants: the executor sees plans and compiled kernels, never `Expr`; it
//! never decides placement ([`crate::place`] did); it is the only code that calls a backend's
//! `run*`, `upload` or `download` for a plan.
mod rows;
mod run;

pub(crate) use run::{execute, execute_into, Buffer, Residency};

use crate::cpu::CpuKernel;
use crate::devices::Devices;
use crate::error::{Error, Result};
use crate::gpu::GpuKernel;
use crate::opt::{Buf, PlanInput, RowPlan, Step};
use crate::options::Device;
use std::collections::HashMap;
use std::sync::Arc;

/// A kernel compiled for the device that runs it.
#[derive(Clone)]
pub(crate) enum DeviceKernel {
    Cpu(Arc<CpuKernel>),
    Gpu(Arc<GpuKernel>),
}

/// A plan with compiled kernels, ready to run on bound inputs.
pub(crate) struct ExecPlan {
    /// Where the kernels run (never `Auto`).
    pub device: Device,
    /// Whether `Auto` placed it (then a device failure falls back to the CPU).
    pub auto: bool,
    pub inputs: Vec<PlanInput>,
    /// Shapes of the symbol inputs, in parameter order (the plan's cache key).
    pub param_shapes: Vec<Vec<usize>>,
    pub steps: Vec<(Step, DeviceKernel)>,
    /// For each step, the temporaries no later step reads (dropped right after it runs).
    pub frees: Vec<Vec<u32>>,
    /// The result number and shape of each expression of the plan, then of each cast check
    /// (see [`crate::InvalidCast::Raise`]).
    pub results: Vec<(u32, Vec<usize>)>,
    /// The error each cast check raises (the last `checks.len()` results).
    pub checks: Vec<Error>,
    /// How many results the steps produce.
    pub n_temps: usize,
    /// Whether the plan holds for other lengths of its inputs (see [`resized_steps`]): no
    /// kernel embeds a number derived from a length (the count of a `mean`) and no step reads
    /// through a view (a view's strides and offsets are resolved for one shape).
    pub length_generic: bool,
    /// The plan's row form ([`crate::opt::epilogue`]), compiled where the plan runs on the
    /// CPU: it runs instead of `steps` on host inputs.
    pub rows: Option<RowExec>,
}

/// A row-form plan with its passes compiled for the CPU.
pub(crate) struct RowExec {
    pub plan: RowPlan,
    pub kernels: Vec<Arc<CpuKernel>>,
}

/// Compile every step for `device` (`Auto` and `Reference` compile for the CPU).
pub(crate) fn compile_steps(
    devices: &Devices,
    steps: &[Step],
    device: Device,
) -> Result<Vec<DeviceKernel>> {
    steps
        .iter()
        .map(|s| {
            Ok(match device {
                Device::Gpu(n) => DeviceKernel::Gpu(devices.gpu(n)?.compile(&s.kernel)?),
                _ => DeviceKernel::Cpu(devices.cpu()?.compile(&s.kernel)?),
            })
        })
        .collect()
}

/// What [`prepare`] needs besides the steps.
pub(crate) struct PlanParts {
    pub inputs: Vec<PlanInput>,
    pub input_shapes: Vec<Vec<usize>>,
    pub steps: Vec<Step>,
    pub results: Vec<(u32, Vec<usize>)>,
    pub checks: Vec<Error>,
    /// Whether lowering embedded a number derived from the input lengths in a kernel.
    pub length_constants: bool,
    /// The row form, if the optimizer offers one (compiled only for a CPU plan).
    pub rows: Option<RowPlan>,
}

/// Compile a placed plan. Under `Auto` (`auto`), a GPU that cannot compile it hands it to the
/// CPU.
pub(crate) fn prepare(
    devices: &Devices,
    parts: PlanParts,
    mut device: Device,
    auto: bool,
) -> Result<ExecPlan> {
    let kernels = match compile_steps(devices, &parts.steps, device) {
        Err(e) if device != Device::Cpu && auto && e.is_device_error() => {
            fell_back(devices, device, &e);
            device = Device::Cpu;
            compile_steps(devices, &parts.steps, device)?
        }
        r => r?,
    };
    let n_temps = parts.steps.iter().map(|s| s.temps.len()).sum();
    let param_shapes = parts
        .inputs
        .iter()
        .zip(&parts.input_shapes)
        .filter(|(p, _)| matches!(p, PlanInput::Symbol { .. }))
        .map(|(_, s)| s.clone())
        .collect();
    let frees = last_uses(&parts.steps, &parts.results);
    // A row form is laid out for one shape (its row length and blocks), so a plan
    // that has one is re-planned for other lengths.
    let length_generic = !parts.length_constants
        && parts.rows.is_none()
        && parts
            .steps
            .iter()
            .all(|s| s.arg_views.iter().all(Option::is_none));
    let rows = match parts.rows {
        Some(plan) if device == Device::Cpu && parts.checks.is_empty() => {
            let cpu = devices.cpu()?;
            let kernels = plan
                .steps
                .iter()
                .map(|s| cpu.compile(&s.kernel))
                .collect::<Result<Vec<_>>>()?;
            Some(RowExec { plan, kernels })
        }
        _ => None,
    };
    Ok(ExecPlan {
        device,
        auto,
        inputs: parts.inputs,
        param_shapes,
        steps: parts.steps.into_iter().zip(kernels).collect(),
        frees,
        results: parts.results,
        checks: parts.checks,
        n_temps,
        length_generic,
        rows,
    })
}

/// The steps and results of a length-generic `plan` ([`ExecPlan::length_generic`]) with every
/// length `d` of its shapes replaced by `lengths(d)`: the same kernels over other lengths.
/// `None` when the plan is not length-generic, or a length has no image (then the caller
/// plans afresh). The caller makes `lengths` consistent: lengths 0 and 1 map to themselves
/// (broadcasting and empty arrays depend on them), and equal lengths to equal lengths.
pub(crate) fn resized_steps(
    plan: &ExecPlan,
    lengths: &dyn Fn(usize) -> Option<usize>,
) -> Option<Resized> {
    if !plan.length_generic {
        return None;
    }
    let map = |s: &[usize]| -> Option<Vec<usize>> { s.iter().map(|&d| lengths(d)).collect() };
    let map_all =
        |v: &[Vec<usize>]| -> Option<Vec<Vec<usize>>> { v.iter().map(|s| map(s)).collect() };
    let steps = plan
        .steps
        .iter()
        .map(|(s, _)| {
            Some(Step {
                kernel: s.kernel.clone(),
                args: s.args.clone(),
                arg_shapes: map_all(&s.arg_shapes)?,
                arg_views: s.arg_views.clone(),
                shape: map(&s.shape)?,
                reduce_axes: s.reduce_axes.clone(),
                nodes: s.nodes.clone(),
                temps: s.temps.clone(),
                out_shapes: map_all(&s.out_shapes)?,
            })
        })
        .collect::<Option<Vec<Step>>>()?;
    let results = plan
        .results
        .iter()
        .map(|(t, s)| Some((*t, map(s)?)))
        .collect::<Option<Vec<_>>>()?;
    Some(Resized {
        steps,
        results,
        param_shapes: map_all(&plan.param_shapes)?,
    })
}

/// A plan's steps, results and parameter shapes for other lengths ([`resized_steps`]).
pub(crate) struct Resized {
    pub steps: Vec<Step>,
    pub results: Vec<(u32, Vec<usize>)>,
    pub param_shapes: Vec<Vec<usize>>,
}

/// `plan` with the same kernels over other lengths (from [`resized_steps`]): nothing compiles.
pub(crate) fn with_steps(plan: &ExecPlan, r: Resized) -> ExecPlan {
    let Resized {
        steps,
        results,
        param_shapes,
    } = r;
    ExecPlan {
        device: plan.device,
        auto: plan.auto,
        inputs: plan.inputs.clone(),
        param_shapes,
        steps: steps
            .into_iter()
            .zip(plan.steps.iter().map(|(_, k)| k.clone()))
            .collect(),
        frees: plan.frees.clone(),
        results,
        checks: plan.checks.clone(),
        n_temps: plan.n_temps,
        length_generic: true,
        // Only a plan without a row form is length-generic (see `prepare`).
        rows: None,
    }
}

/// Count and report an `Auto` plan that failed on `device` and goes to the CPU.
pub(crate) fn fell_back(devices: &Devices, device: Device, e: &Error) {
    tracing::warn!("fusebox: {device} failed ({e}); running the plan on the CPU");
    devices.record(|st| st.gpu_fallbacks += 1);
}

/// For each step, the temporaries whose last reader it is (results of the plan are kept).
fn last_uses(steps: &[Step], results: &[(u32, Vec<usize>)]) -> Vec<Vec<u32>> {
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
