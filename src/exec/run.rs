//! The step loop: one for every caller and every device (see the module docs of
//! [`crate::exec`]).
use super::{compile_steps, fell_back, DeviceKernel, ExecPlan};
use crate::array::{ArgView, ArgViewMut, DynArray};
use crate::cpu::Alias;
use crate::devices::Devices;
use crate::error::{Error, Result};
use crate::gpu::{device_size, GpuArray};
use crate::opt::{Buf, Step};
use crate::options::Device;
use smallvec::SmallVec;
use std::sync::Arc;
use std::time::Instant;

/// A plan input or result, wherever it lives.
pub(crate) enum Buffer<'a> {
    /// The caller's host data, borrowed (never copied on the CPU).
    View(ArgView<'a>),
    /// A host array the plan owns (a result, or data bound inside the expression).
    Host(DynArray),
    /// An array on the plan's GPU.
    Gpu(Arc<GpuArray>),
}

/// The GPU adapter of a plan compiled for one.
fn gpu_index(plan: &ExecPlan) -> Result<usize> {
    match plan.device {
        Device::Gpu(n) => Ok(n),
        d => Err(Error::Device {
            message: format!("a GPU kernel in a plan placed on {d}"),
        }),
    }
}

/// Result `t` of a plan being executed.
fn temp<T>(temps: &[Option<T>], t: u32) -> Result<&T> {
    temps
        .get(t as usize)
        .and_then(Option::as_ref)
        .ok_or_else(|| Error::InvalidKernel {
            message: format!("result t{t} read before it was computed"),
        })
}

/// Where a GPU plan keeps its intermediate data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Residency {
    /// The caller's data is on the host. A GPU plan of several steps runs resident whenever
    /// its data fits device arrays ([`whole_plan_on_device`]): each input is uploaded once,
    /// temporaries and reduction partials stay on the device, and only the results come down
    /// (at the caller). A single step, or a plan too large for one binding per array, runs
    /// through the backend's host path (which streams chunks); a step with an argument already
    /// on the device runs resident.
    Host,
    /// Every GPU step runs resident: host arguments are uploaded, results stay on the device
    /// (`Session::compute_on_device`).
    Device,
}

/// The buffer a step argument reads: a plan input or an earlier result.
fn source<'s, 'a>(
    b: Buf,
    inputs: &'s [Buffer<'a>],
    temps: &'s [Option<Buffer<'a>>],
) -> Result<&'s Buffer<'a>> {
    match b {
        Buf::Input(i) => inputs.get(i as usize).ok_or_else(|| Error::InvalidKernel {
            message: format!("plan input {i} not bound"),
        }),
        Buf::Temp(t) => temp(temps, t),
    }
}

/// Run `plan` on `inputs` (one per plan input): the expressions' results, after the cast
/// checks of [`crate::InvalidCast::Raise`] passed. Under `Auto`, a plan that fails on its GPU
/// runs again on the CPU.
pub(crate) fn execute<'a>(
    devices: &Devices,
    plan: &ExecPlan,
    inputs: &[Buffer<'a>],
    residency: Residency,
) -> Result<Vec<Buffer<'a>>> {
    let results = run_checked(devices, plan, inputs, residency, &mut None)?;
    Ok(results)
}

/// Run `plan` on host inputs (one per plan input), writing its first result into `out`:
/// directly by its last kernel where that is a CPU store of `out`'s shape whose inputs do not
/// overlap `out` (or overlap it exactly: an in-place update), else into a fresh buffer that is
/// then copied. On error `out` may hold part of the result.
pub(crate) fn execute_into(
    devices: &Devices,
    plan: &ExecPlan,
    inputs: &[Buffer<'_>],
    out: &mut ArgViewMut<'_>,
) -> Result<()> {
    let Some((t, shape)) = plan.results.first() else {
        return Err(Error::InvalidKernel {
            message: "a plan without results".into(),
        });
    };
    if shape.as_slice() != out.shape() {
        return Err(Error::ShapeMismatch {
            lhs: out.shape().to_vec(),
            rhs: shape.clone(),
        });
    }
    let producer = plan
        .steps
        .iter()
        .enumerate()
        .find_map(|(i, (s, _))| Some((i, s, s.temps.iter().position(|u| u == t)?)));
    if let Some((_, s, o)) = producer {
        let dt = s.kernel.dtype_of(s.kernel.outputs[o]);
        if dt != out.dtype() {
            return Err(Error::DtypeMismatch {
                name: "out".into(),
                expected: dt,
                found: out.dtype(),
            });
        }
    }
    // Directly: the last step makes the result alone, as a CPU store of the result's shape,
    // and no other result is the same buffer.
    let direct = producer.is_some_and(|(i, s, _)| {
        i + 1 == plan.steps.len()
            && s.temps.len() == 1
            && !s.kernel.is_reduction()
            && s.shape.as_slice() == out.shape()
            && plan.device == Device::Cpu
            && plan.results.iter().filter(|(u, _)| u == t).count() == 1
    });
    let mut into = if direct {
        Some(IntoOut {
            temp: *t,
            out: &mut *out,
        })
    } else {
        None
    };
    let mut results = run_checked(devices, plan, inputs, Residency::Host, &mut into)?;
    if into.is_some() || !direct {
        // Not written directly: copy the result.
        let r = match results.swap_remove(0) {
            Buffer::Gpu(g) => Buffer::Host(devices.gpu(gpu_index(plan)?)?.download(&g)?),
            b => b,
        };
        match &r {
            Buffer::Host(a) => out.assign(&a.view())?,
            Buffer::View(v) => out.assign(v)?,
            Buffer::Gpu(_) => unreachable!("downloaded above"),
        }
    }
    Ok(())
}

/// Where [`execute_into`] writes a result: plan result `temp` into `out`.
pub(super) struct IntoOut<'o, 'a> {
    pub temp: u32,
    pub out: &'o mut ArgViewMut<'a>,
}

/// [`execute`], with the result `into` names written into its array where the step loop can
/// (then `into` is taken and the result is missing from the list).
fn run_checked<'a>(
    devices: &Devices,
    plan: &ExecPlan,
    inputs: &[Buffer<'a>],
    residency: Residency,
    into: &mut Option<IntoOut<'_, '_>>,
) -> Result<Vec<Buffer<'a>>> {
    let rows = match &plan.rows {
        Some(rx) if plan.device == Device::Cpu && residency == Residency::Host => {
            super::rows::run_rows(devices, rx, inputs, into)?
        }
        _ => None,
    };
    let kernels: SmallVec<[&DeviceKernel; 4]> = plan.steps.iter().map(|(_, k)| k).collect();
    let mut results = match rows
        .map(Ok)
        .unwrap_or_else(|| run_steps(devices, plan, &kernels, inputs, residency, into))
    {
        Err(e) if plan.device != Device::Cpu && plan.auto && e.is_device_error() => {
            fell_back(devices, plan.device, &e);
            let steps: Vec<Step> = plan.steps.iter().map(|(s, _)| s.clone()).collect();
            let cpu = compile_steps(devices, &steps, Device::Cpu)?;
            let kernels: SmallVec<[&DeviceKernel; 4]> = cpu.iter().collect();
            run_steps(devices, plan, &kernels, inputs, Residency::Host, into)?
        }
        r => r?,
    };
    let checked = results.split_off(results.len() - plan.checks.len());
    for (c, what) in checked.iter().zip(&plan.checks) {
        let flag = match c {
            Buffer::Gpu(g) => devices.gpu(gpu_index(plan)?)?.download(g)?.scalar_f64(),
            Buffer::Host(a) => a.scalar_f64(),
            Buffer::View(v) => v.try_to_dyn_array()?.scalar_f64(),
        };
        if flag != Some(0.0) {
            return Err(what.clone());
        }
    }
    Ok(results)
}

/// The step loop proper, with `kernels` (the plan's, or the CPU's after a fallback).
fn run_steps<'a>(
    devices: &Devices,
    plan: &ExecPlan,
    kernels: &[&DeviceKernel],
    inputs: &[Buffer<'a>],
    residency: Residency,
    into: &mut Option<IntoOut<'_, '_>>,
) -> Result<Vec<Buffer<'a>>> {
    let mut temps: Vec<Option<Buffer<'a>>> = (0..plan.n_temps).map(|_| None).collect();
    let on_device =
        residency == Residency::Device || whole_plan_on_device(devices, plan, kernels, inputs);
    let wants_into = into.is_some();
    // Plan inputs uploaded for resident GPU steps, once per run (allocated on first upload).
    let mut uploads: Vec<Option<Arc<GpuArray>>> = Vec::new();
    let (mut read, mut written) = (0u64, 0u64);
    let start = Instant::now();
    for (((step, _), kernel), frees) in plan.steps.iter().zip(kernels).zip(&plan.frees) {
        let src = |b: Buf| source(b, inputs, &temps);
        let resident = matches!(kernel, DeviceKernel::Gpu(_))
            && (on_device
                || step
                    .args
                    .iter()
                    .any(|b| matches!(src(*b), Ok(Buffer::Gpu(_)))));
        if resident {
            let gpu = devices.gpu(gpu_index(plan)?)?;
            let DeviceKernel::Gpu(k) = kernel else {
                unreachable!("resident steps run GPU kernels")
            };
            let mut args: SmallVec<[Arc<GpuArray>; 4]> = SmallVec::new();
            for ((b, shape), views) in step.args.iter().zip(&step.arg_shapes).zip(&step.arg_views) {
                if let Some(views) = views {
                    // WGSL kernels read C-ordered device arrays: a view is gathered on the
                    // host and uploaded (a copy; the CPU reads views in place).
                    let host = match src(*b)? {
                        Buffer::Gpu(g) => devices.gpu(gpu_index(plan)?)?.download(g)?,
                        Buffer::View(v) => v.try_to_dyn_array()?,
                        Buffer::Host(h) => h.clone(),
                    };
                    let base = host.reshaped(&views.base_shape)?;
                    let viewed = apply_views(base.view(), views)?.try_to_dyn_array()?;
                    args.push(Arc::new(gpu.upload(&viewed.view())?));
                    continue;
                }
                let a = match (src(*b)?, *b) {
                    (Buffer::Gpu(g), _) => g.clone(),
                    (Buffer::View(v), Buf::Input(i)) => {
                        upload_input(gpu, &mut uploads, inputs.len(), i, v)?
                    }
                    (Buffer::Host(h), Buf::Input(i)) => {
                        upload_input(gpu, &mut uploads, inputs.len(), i, &h.view())?
                    }
                    (Buffer::View(v), Buf::Temp(_)) => Arc::new(gpu.upload(v)?),
                    (Buffer::Host(h), Buf::Temp(_)) => Arc::new(gpu.upload(&h.view())?),
                };
                args.push(if a.shape() == shape.as_slice() {
                    a
                } else {
                    Arc::new(a.reshaped(shape)?)
                });
            }
            read += args
                .iter()
                .map(|a| (a.len() * a.dtype().size()) as u64)
                .sum::<u64>();
            let refs: SmallVec<[&GpuArray; 4]> = args.iter().map(|a| &**a).collect();
            let outs = gpu.run_resident_many(k, &refs, &step.shape, &step.reduce_axes)?;
            for ((out, t), shape) in outs.into_iter().zip(&step.temps).zip(&step.out_shapes) {
                written += (out.len() * out.dtype().size()) as u64;
                temps[*t as usize] = Some(reshape(Buffer::Gpu(Arc::new(out)), shape)?);
            }
        } else {
            let outs = {
                // Host arrays for the arguments that are not host arrays of the shape the step
                // reads: results read with another shape (a reduction's result with or without its
                // `keepdims` axes share their data when reshaped), and device arrays a CPU step
                // must bring down. The common case (host data as it is) holds nothing.
                let as_they_are = step.arg_views.iter().all(Option::is_none)
                    && step
                        .args
                        .iter()
                        .zip(&step.arg_shapes)
                        .all(|(b, shape)| match src(*b) {
                            Ok(Buffer::View(v)) => v.shape() == shape.as_slice(),
                            Ok(Buffer::Host(h)) => h.shape() == shape.as_slice(),
                            _ => false,
                        });
                let mut held: SmallVec<[Option<DynArray>; 4]> = SmallVec::new();
                if !as_they_are {
                    for ((b, shape), views) in
                        step.args.iter().zip(&step.arg_shapes).zip(&step.arg_views)
                    {
                        // A view reads the buffer as its base shape (C-contiguous where its
                        // first view is a reshape): held only when the buffer is not that.
                        let (shape, contiguous) = match views {
                            Some(v) => (&v.base_shape, v.views[0].needs_contiguous()),
                            None => (shape, false),
                        };
                        let fits = |v: &ArgView<'_>| {
                            v.shape() == shape.as_slice() && (!contiguous || v.is_standard_layout())
                        };
                        held.push(match src(*b)? {
                            Buffer::View(v) if fits(v) => None,
                            Buffer::Host(h) if fits(&h.view()) => None,
                            Buffer::View(v) => Some(v.try_to_dyn_array()?.reshaped(shape)?),
                            Buffer::Host(h) if !contiguous => Some(h.reshaped(shape)?),
                            Buffer::Host(h) => Some(h.view().try_to_dyn_array()?.reshaped(shape)?),
                            Buffer::Gpu(g) => {
                                let host = devices.gpu(gpu_index(plan)?)?.download(g)?;
                                Some(host.reshaped(shape)?)
                            }
                        });
                    }
                }
                let mut views: SmallVec<[ArgView<'_>; 4]> = SmallVec::new();
                for (j, b) in step.args.iter().enumerate() {
                    let v = match (held.get(j).and_then(Option::as_ref), src(*b)?) {
                        (Some(h), _) => h.view(),
                        (None, Buffer::View(v)) => v.reborrow(),
                        (None, Buffer::Host(h)) => h.view(),
                        (None, Buffer::Gpu(_)) => {
                            unreachable!("device arrays are held on the host")
                        }
                    };
                    views.push(match &step.arg_views[j] {
                        Some(a) => apply_views(v, a)?,
                        None => v,
                    });
                }
                read = views.iter().fold(read, |r, v| {
                    r.saturating_add((v.len() as u64).saturating_mul(v.dtype().size() as u64))
                });
                let axes = &step.reduce_axes;
                let here = into.as_ref().is_some_and(|i| step.temps == [i.temp]);
                match kernel {
                    DeviceKernel::Cpu(k)
                        if here
                            && into.as_ref().is_some_and(|i| {
                                crate::cpu::alias(&views, &*i.out) != Alias::Partial
                            }) =>
                    {
                        let i = into.take().expect("checked above");
                        devices.cpu()?.run_into(k, &views, &step.shape, i.out)?;
                        written += i.out.len() as u64 * i.out.dtype().size() as u64;
                        vec![]
                    }
                    DeviceKernel::Cpu(k) => {
                        devices.cpu()?.run_many(k, &views, &step.shape, axes)?
                    }
                    DeviceKernel::Gpu(k) => {
                        let gpu = devices.gpu(gpu_index(plan)?)?;
                        gpu.run_many(k, &views, &step.shape, axes)?
                    }
                }
            };
            for ((out, t), shape) in outs.into_iter().zip(&step.temps).zip(&step.out_shapes) {
                written += out.nbytes() as u64;
                temps[*t as usize] = Some(reshape(Buffer::Host(out), shape)?);
            }
        }
        for t in frees {
            temps[*t as usize] = None;
        }
    }
    let wrote_into = wants_into && into.is_none();
    devices.record(|st| {
        st.kernels_launched += plan.steps.len() as u64;
        st.bytes_read += read;
        st.bytes_written += written;
        match kernels.first() {
            Some(DeviceKernel::Gpu(_)) => st.gpu_time += start.elapsed(),
            _ => st.cpu_time += start.elapsed(),
        }
    });
    // The results, moved out of the temporaries (shared only when a plan lists one result
    // twice), so a result owns its buffer alone when the caller gets it.
    let mut results = Vec::with_capacity(plan.results.len());
    for (i, (t, shape)) in plan.results.iter().enumerate() {
        if i == 0 && wrote_into {
            continue;
        }
        let again = plan.results[i + 1..].iter().any(|(u, _)| u == t);
        results.push(if again {
            share(temp(&temps, *t)?, shape)?
        } else {
            let b = temps.get_mut(*t as usize).and_then(Option::take);
            let b = b.ok_or_else(|| Error::InvalidKernel {
                message: format!("result t{t} read before it was computed"),
            })?;
            reshape(b, shape)?
        });
    }
    Ok(results)
}

/// Whether a GPU plan on host data runs every step resident: it has several steps, all on the
/// GPU, and every plan input and every step's outputs fit one storage binding (the host path
/// streams larger arrays in chunks; device arrays must fit one binding).
fn whole_plan_on_device(
    devices: &Devices,
    plan: &ExecPlan,
    kernels: &[&DeviceKernel],
    inputs: &[Buffer<'_>],
) -> bool {
    if plan.steps.len() < 2 || !kernels.iter().all(|k| matches!(k, DeviceKernel::Gpu(_))) {
        return false;
    }
    let Some(gpu) = gpu_index(plan).ok().and_then(|n| devices.open_gpu(n)) else {
        return false;
    };
    let limit = gpu.binding_limit();
    let fits = |t: crate::dtype::DType, len: usize| {
        (device_size(t) as u64).saturating_mul(len as u64) <= limit
    };
    let inputs_fit = inputs.iter().all(|b| match b {
        Buffer::View(v) => fits(v.dtype(), v.len()),
        Buffer::Host(h) => fits(h.dtype(), h.len()),
        Buffer::Gpu(_) => true,
    });
    inputs_fit
        && plan.steps.iter().all(|(step, _)| {
            step.kernel
                .output_dtypes()
                .iter()
                .zip(&step.out_shapes)
                .all(|(t, shape)| fits(*t, shape.iter().product()))
        })
}

/// `v` (of the views' base shape) read through the views: a borrow with other strides.
pub(super) fn apply_views<'v>(v: ArgView<'v>, views: &crate::opt::ArgViews) -> Result<ArgView<'v>> {
    views.views.iter().try_fold(v, |v, view| view.apply(v))
}

/// `b` with shape `shape` (moved as it is when it has that shape already).
fn reshape<'a>(b: Buffer<'a>, shape: &[usize]) -> Result<Buffer<'a>> {
    let same = match &b {
        Buffer::Host(a) => a.shape() == shape,
        Buffer::Gpu(g) => g.shape() == shape,
        Buffer::View(v) => v.shape() == shape,
    };
    if same {
        Ok(b)
    } else {
        share(&b, shape)
    }
}

/// Another handle on result `b`, with shape `shape` (shares the data).
fn share<'a>(b: &Buffer<'_>, shape: &[usize]) -> Result<Buffer<'a>> {
    Ok(match b {
        Buffer::Host(a) => Buffer::Host(a.reshaped(shape)?),
        Buffer::Gpu(g) if g.shape() == shape => Buffer::Gpu(g.clone()),
        Buffer::Gpu(g) => Buffer::Gpu(Arc::new(g.reshaped(shape)?)),
        Buffer::View(v) => Buffer::Host(v.try_to_dyn_array()?.reshaped(shape)?),
    })
}

/// Plan input `i` on the GPU, uploaded on first use in this run.
fn upload_input(
    gpu: &crate::gpu::GpuBackend,
    uploads: &mut Vec<Option<Arc<GpuArray>>>,
    n_inputs: usize,
    i: u32,
    v: &ArgView<'_>,
) -> Result<Arc<GpuArray>> {
    if uploads.is_empty() {
        uploads.resize(n_inputs, None);
    }
    let slot = uploads
        .get_mut(i as usize)
        .ok_or_else(|| Error::InvalidKernel {
            message: format!("plan input {i} not bound"),
        })?;
    if let Some(a) = slot {
        return Ok(a.clone());
    }
    let a = Arc::new(gpu.upload(v)?);
    *slot = Some(a.clone());
    Ok(a)
}
