//! `Device::Auto`: which device a plan runs on. The candidates are the CPU and every GPU
//! adapter that can run all of the plan's kernels; each gets an estimate from the model
//! ([`super::model`]) with its parameters (given by the caller, or measured once by the probes
//! and kept by the calibration store), and the lowest total wins. A plan with a row form
//! ([`crate::opt::epilogue`]) is estimated on the CPU with the row form's memory traffic,
//! since that is what the CPU runs.
//!
//! Cheap in the common case: a plan the CPU finishes before any GPU measured on this machine
//! could even launch its kernels stays on the CPU without listing the adapters (which loads
//! drivers).
use super::calibration::CalibrationCache;
use super::model::{
    self, ArgSource, Candidate, DeviceParams, Estimate, KernelCost, Mode, PlanKernel, Residence,
    Target,
};
use super::probes;
use crate::devices::{adapters, Devices, MAX_GPUS};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::kir::Kernel;
use crate::opt::{Buf, RowPlan, Step};
use crate::options::Device;
use std::sync::Mutex;

/// The placement state of a session: device parameters given by the caller, which replace the
/// calibration.
#[derive(Default)]
pub(crate) struct Placer {
    given: Mutex<Vec<(Target, DeviceParams)>>,
}

/// The plan's kernels as the cost model sees them.
pub(crate) fn plan_kernels(steps: &[Step]) -> Vec<PlanKernel> {
    let len = |shape: &Vec<usize>| shape.iter().fold(1usize, |a, &d| a.saturating_mul(d));
    steps
        .iter()
        .map(|s| {
            let args = s
                .args
                .iter()
                .map(|b| match *b {
                    Buf::Input(i) => ArgSource::Input(i),
                    Buf::Temp(t) => ArgSource::Temp(t),
                })
                .collect();
            let arg_lens: Vec<usize> = s.arg_shapes.iter().map(len).collect();
            let out_lens: Vec<usize> = s.out_shapes.iter().map(len).collect();
            PlanKernel {
                cost: KernelCost::of(&s.kernel, &arg_lens, len(&s.shape), &out_lens),
                args,
            }
        })
        .collect()
}

fn gpu_of(t: Target) -> Option<usize> {
    match t {
        Target::Cpu => None,
        Target::Gpu(n) => Some(n),
    }
}

impl Placer {
    /// Use `params` for `device` (`Device::Cpu` or `Device::Gpu(n)`) instead of measuring it.
    pub fn set_params(&self, device: Device, params: DeviceParams) -> Result<()> {
        let t = match device {
            Device::Cpu => Target::Cpu,
            Device::Gpu(n) => Target::Gpu(n),
            d => {
                return Err(Error::Argument {
                    message: format!("device parameters are for cpu or gpu:N, not {d}"),
                })
            }
        };
        let mut p = self.given.lock().map_err(|_| Error::Argument {
            message: "session poisoned by a panic".into(),
        })?;
        p.retain(|(d, _)| *d != t);
        p.push((t, params));
        Ok(())
    }

    /// The parameters of `t`: given ones, else the calibration (measured on first use).
    fn params(&self, devices: &Devices, t: Target) -> Result<DeviceParams> {
        if let Some(p) = self
            .given
            .lock()
            .ok()
            .and_then(|ps| ps.iter().find(|(d, _)| *d == t).map(|(_, p)| p.clone()))
        {
            return Ok(p);
        }
        let cache = CalibrationCache::global();
        match t {
            Target::Cpu => probes::cpu_params(cache, devices.cpu()?.threads()),
            Target::Gpu(n) => {
                let info = adapters().get(n).ok_or_else(|| Error::Device {
                    message: format!("no GPU adapter with index {n}"),
                })?;
                probes::gpu_params(cache, info)
            }
        }
    }

    /// Devices `Auto` considers for these kernels: the CPU, and every GPU adapter that can run
    /// them all (plus GPUs whose parameters were given).
    pub fn auto_targets(&self, steps: &[Step]) -> Vec<Target> {
        let mut out = vec![Target::Cpu];
        for a in adapters().iter().filter(|a| a.index < MAX_GPUS) {
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
        if let Ok(ps) = self.given.lock() {
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
    fn gpu_floor(&self, devices: &Devices, kernels: usize, one_shot: bool) -> Option<f64> {
        let one_time = one_shot && !devices.any_gpu_started();
        let mut known = CalibrationCache::global().known_gpus();
        if let Ok(ps) = self.given.lock() {
            known.extend(
                ps.iter()
                    .filter(|(t, _)| matches!(t, Target::Gpu(_)))
                    .map(|(_, p)| p.clone()),
            );
        }
        known
            .iter()
            .map(|p| model::gpu_floor(p, kernels, one_time))
            .reduce(f64::min)
    }

    /// Per-kernel estimates on each target. A GPU whose calibration fails is dropped (with a
    /// warning); a CPU failure is an error. `rows`: the plan's row form, which the CPU runs
    /// instead of the kernels ([`row_form_memory`]).
    pub fn estimates(
        &self,
        devices: &Devices,
        steps: &[Step],
        rows: Option<&RowPlan>,
        targets: &[Target],
        residency: &[Residence],
        mode: Mode,
    ) -> Result<Vec<(Target, Vec<Estimate>)>> {
        let plan = plan_kernels(steps);
        let transfer = |g: usize| self.params(devices, Target::Gpu(g)).ok();
        let mut out = Vec::with_capacity(targets.len());
        for &t in targets {
            let started = devices.started(gpu_of(t));
            let params = match self.params(devices, t) {
                Ok(p) => p,
                Err(e) if t != Target::Cpu => {
                    tracing::warn!("fusebox: {t} is not a candidate: {e}");
                    continue;
                }
                Err(e) => return Err(e),
            };
            let cached = |k: &Kernel| devices.is_cached(gpu_of(t), k);
            let cand = Candidate {
                target: t,
                params: &params,
                cached: steps.iter().map(|s| cached(&s.kernel)).collect(),
                started,
            };
            let mut es = model::estimate_plan(&plan, residency, &cand, &transfer, mode);
            if let (Target::Cpu, Some(rp)) = (t, rows) {
                row_form_memory(&mut es, &plan, rp);
            }
            out.push((t, es));
        }
        Ok(out)
    }

    /// The device a plan of `steps` (with row form `rows`, which only the CPU runs) over
    /// `n_inputs` host inputs runs on: the pinned one, or `Auto`'s choice (calibrating only
    /// when there is more than one candidate).
    pub fn place(
        &self,
        devices: &Devices,
        pinned: Device,
        n_inputs: usize,
        steps: &[Step],
        rows: Option<&RowPlan>,
        one_shot: bool,
    ) -> Result<Device> {
        match pinned {
            Device::Auto => {}
            Device::Gpu(n) => {
                devices.gpu(n)?;
                return Ok(Device::Gpu(n));
            }
            d => return Ok(d),
        }
        let residency = vec![Residence::Host; n_inputs];
        let mode = Mode {
            one_time_costs: one_shot,
            result_on_host: true,
        };
        // A plan the CPU finishes before any GPU measured on this machine could even launch
        // (and, the first time, compile) its kernels stays on the CPU without listing the
        // adapters, which loads drivers (small arrays: the common case, kept cheap).
        if let Some(floor) = self.gpu_floor(devices, steps.len(), one_shot) {
            let cpu = self.estimates(devices, steps, rows, &[Target::Cpu], &residency, mode)?;
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
        let totals = totals(&self.estimates(devices, steps, rows, &targets, &residency, mode)?);
        Ok(match model::choose(&totals) {
            Some(Target::Gpu(n)) => Device::Gpu(n),
            _ => Device::Cpu,
        })
    }
}

/// The CPU runs a plan that has a row form block of rows by block of rows, each block kept in
/// cache across the passes: its memory traffic is the row form's (each input read once, each
/// result written once: [`RowPlan::memory_bytes`]), not the sum of its kernels' (which read
/// the input once per pass and write and read back the reductions). Each kernel's memory time
/// is scaled by that ratio; its compute is unchanged (the row form runs the same instructions).
fn row_form_memory(es: &mut [Estimate], plan: &[PlanKernel], rp: &RowPlan) {
    let (read, written) = rp.memory_bytes();
    let kernels: u64 = plan
        .iter()
        .map(|k| k.cost.bytes_read + k.cost.bytes_written)
        .sum();
    if kernels == 0 {
        return;
    }
    let f = ((read + written) as f64 / kernels as f64).min(1.0);
    for e in es {
        e.memory_s *= f;
    }
}

/// Each target's plan total.
pub(crate) fn totals(per_device: &[(Target, Vec<Estimate>)]) -> Vec<(Target, f64)> {
    per_device
        .iter()
        .map(|(t, es)| (*t, es.iter().map(Estimate::total_s).sum()))
        .collect()
}

/// `cpu`, or `gpu:N (adapter, backend)` from the adapter list (opens nothing).
pub(crate) fn target_name(t: Target) -> String {
    match t {
        Target::Cpu => "cpu".into(),
        Target::Gpu(n) => match adapters().get(n) {
            Some(a) => format!("gpu:{n} ({}, {})", a.name, a.backend),
            None => format!("gpu:{n}"),
        },
    }
}
