//! Running kernels of stores, and the entry points of both paths (host inputs, device
//! arrays): argument checks, parameter blocks, bind groups and the dispatch grid.
use super::buffers::{bytes_to_array, c_strides, empty_array, GpuArray, HostInput, Kind};
use super::reduce::{Reduced, Src};
use super::{device_size, wgsl, GpuBackend, GpuKernel, MAX_GROUPS_X, WORKGROUP};
use crate::array::{broadcast_strides, ArgView, DynArray};
use crate::error::{Error, Result};
use crate::kir::Kernel;
use std::sync::atomic::Ordering;

impl GpuBackend {
    /// 2-D grid for `groups` workgroups: (x, y) with x <= 65,535.
    pub(super) fn grid(groups: u32) -> (u32, u32) {
        if groups <= MAX_GROUPS_X {
            (groups.max(1), 1)
        } else {
            (MAX_GROUPS_X, groups.div_ceil(MAX_GROUPS_X))
        }
    }

    /// Same contract as [`crate::cpu::CpuBackend::run_many`]: inputs broadcast to the iteration
    /// space `shape`; reductions combine over `axes` (sorted, distinct, any subset); one
    /// C-contiguous array per output (`shape` for stores, the kept axes' shape for reductions).
    pub fn run_many(
        &self,
        k: &GpuKernel,
        inputs: &[ArgView<'_>],
        shape: &[usize],
        axes: &[usize],
    ) -> Result<Vec<DynArray>> {
        self.injected(false)?;
        self.take_lost()?;
        let kern = &k.kernel;
        kern.check_args(inputs, shape)?;
        kern.check_axes(axes, shape.len())?;
        // Kernels of stores whose inputs all have the output's shape stream every input, and
        // their shaders index within a chunk: 64-bit element counts. Elsewhere 32-bit indices.
        let n = if !kern.is_reduction() && inputs.iter().all(|a| a.shape() == shape) {
            crate::array::checked_len(shape, 8)?
        } else {
            checked_len32(shape)?
        };
        let hosts: Vec<HostInput> = inputs.iter().map(HostInput::new).collect();
        let result = if kern.is_reduction() {
            let srcs: Vec<Src<'_>> = hosts.iter().map(Src::Host).collect();
            match self.reduce(k, &srcs, shape, axes) {
                Ok(Reduced::Host(v)) => Ok(v),
                Ok(Reduced::Device(bufs, kept)) => {
                    let len: usize = kept.iter().product();
                    let mut v = Vec::with_capacity(bufs.len());
                    for (b, t) in bufs {
                        let enc = self.device.create_command_encoder(&Default::default());
                        let bytes = self.download_buf(enc, &b, (len * device_size(t)) as u64)?;
                        v.push(bytes_to_array(t, &bytes, &kept)?);
                    }
                    Ok(v)
                }
                Err(e) => Err(e),
            }
        } else {
            if n == 0 {
                let ts = kern.output_dtypes();
                Ok(ts.iter().map(|t| empty_array(*t, shape)).collect())
            } else {
                self.run_streamed(k, &hosts, shape, n)
            }
        };
        self.take_lost()?;
        result
    }

    /// Same contract as [`GpuBackend::run_many`], on device arrays; the results stay on the
    /// device. Nothing is copied to or from the host but the small parameter blocks.
    pub fn run_resident_many(
        &self,
        k: &GpuKernel,
        inputs: &[&GpuArray],
        shape: &[usize],
        axes: &[usize],
    ) -> Result<Vec<GpuArray>> {
        self.injected(false)?;
        self.take_lost()?;
        let kern = &k.kernel;
        check_resident_args(kern, inputs, shape)?;
        kern.check_axes(axes, shape.len())?;
        let n = checked_len32(shape)?;
        let out = if kern.is_reduction() {
            let srcs: Vec<Src<'_>> = inputs.iter().map(|a| Src::Device(a)).collect();
            match self.reduce(k, &srcs, shape, axes)? {
                Reduced::Host(v) => v
                    .iter()
                    .map(|a| self.upload(&a.view()))
                    .collect::<Result<Vec<_>>>()?,
                Reduced::Device(bufs, kept) => bufs
                    .into_iter()
                    .map(|(buffer, dtype)| GpuArray {
                        buffer,
                        dtype,
                        shape: kept.clone(),
                    })
                    .collect(),
            }
        } else {
            self.run_resident_stores(k, inputs, shape, n)?
        };
        self.take_lost()?;
        Ok(out)
    }

    /// The first output of [`GpuBackend::run_many`], reducing every axis: `Store` -> fresh
    /// C-contiguous array of `out_shape`; `Reduce` -> 0-d array.
    pub fn run(
        &self,
        k: &GpuKernel,
        inputs: &[ArgView<'_>],
        out_shape: &[usize],
    ) -> Result<DynArray> {
        let axes = all_axes(&k.kernel, out_shape);
        first(self.run_many(k, inputs, out_shape, &axes)?)
    }

    /// Run `k` on device arrays (broadcast to `out_shape`, reducing every axis); the first
    /// output stays on the device.
    pub fn run_resident(
        &self,
        k: &GpuKernel,
        inputs: &[&GpuArray],
        out_shape: &[usize],
    ) -> Result<GpuArray> {
        let axes = all_axes(&k.kernel, out_shape);
        first(self.run_resident_many(k, inputs, out_shape, &axes)?)
    }

    /// Record one dispatch of `pipeline` into `enc`.
    pub(super) fn dispatch_into(
        &self,
        enc: &mut wgpu::CommandEncoder,
        pipeline: &wgpu::ComputePipeline,
        layout: &wgpu::BindGroupLayout,
        entries: &[wgpu::BindGroupEntry<'_>],
        grid: (u32, u32),
    ) {
        let bg = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("fusebox reduction"),
            layout,
            entries,
        });
        let mut pass = enc.begin_compute_pass(&Default::default());
        pass.set_pipeline(pipeline);
        pass.set_bind_group(0, &bg, &[]);
        pass.dispatch_workgroups(grid.0, grid.1, 1);
        self.dispatches.fetch_add(1, Ordering::Relaxed);
    }
    /// A command encoder holding one dispatch of `k` over the `grid` of workgroups, with
    /// `entries` bound (shared by the host and the resident paths).
    pub(super) fn encode_dispatch(
        &self,
        k: &GpuKernel,
        entries: &[wgpu::BindGroupEntry<'_>],
        grid: (u32, u32),
        label: &str,
    ) -> wgpu::CommandEncoder {
        let bg = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(label),
            layout: &k.layout,
            entries,
        });
        let mut enc = self.device.create_command_encoder(&Default::default());
        {
            let mut pass = enc.begin_compute_pass(&Default::default());
            pass.set_pipeline(&k.pipeline);
            pass.set_bind_group(0, &bg, &[]);
            pass.dispatch_workgroups(grid.0, grid.1, 1);
        }
        self.dispatches.fetch_add(1, Ordering::Relaxed);
        enc
    }

    /// A kernel of stores on device arrays: fresh device arrays of `shape`, one per output.
    fn run_resident_stores(
        &self,
        k: &GpuKernel,
        inputs: &[&GpuArray],
        shape: &[usize],
        n: usize,
    ) -> Result<Vec<GpuArray>> {
        let kern = &k.kernel;
        let out_ts = kern.output_dtypes();
        for t in &out_ts {
            self.check_resident_size((n * device_size(*t)) as u64)?;
        }
        let outs: Vec<GpuArray> = out_ts
            .iter()
            .map(|&t| GpuArray {
                buffer: self.resident_buffer((n * device_size(t)) as u64),
                dtype: t,
                shape: shape.to_vec(),
            })
            .collect();
        if n == 0 {
            return Ok(outs);
        }
        let ndim = shape.len();
        let groups = (n as u32).div_ceil(WORKGROUP);
        let (gx, gy) = Self::grid(groups);
        let mut p: Vec<u32> = vec![n as u32, 0, gx * WORKGROUP, ndim as u32, 1];
        p.extend(shape.iter().map(|&d| d as u32));
        for a in inputs {
            p.extend([if a.shape == shape { 2 } else { 0 }, 0]);
            let st = broadcast_strides(&a.shape, &c_strides(&a.shape), shape);
            p.extend(st.iter().map(|&s| s as u32));
        }
        p.extend(wgsl::const_words(&k.lowered));
        let params = self.params(&p)?;
        let mut bufs: Vec<&wgpu::Buffer> = vec![&params];
        bufs.extend(outs.iter().map(|a| &a.buffer));
        bufs.extend(inputs.iter().map(|a| &a.buffer));
        let enc = self.encode_dispatch(k, &entries(&bufs), (gx, gy), "fusebox resident kernel");
        self.queue.submit([enc.finish()]);
        self.release(Kind::Storage, params);
        Ok(outs)
    }
}

/// Bind group entries for buffers bound whole, in binding order.
pub(super) fn entries<'a>(bufs: &[&'a wgpu::Buffer]) -> Vec<wgpu::BindGroupEntry<'a>> {
    bufs.iter()
        .enumerate()
        .map(|(i, b)| wgpu::BindGroupEntry {
            binding: i as u32,
            resource: b.as_entire_binding(),
        })
        .collect()
}

/// Every axis for a reduction kernel, none for stores (the single-output entry points).
fn all_axes(k: &Kernel, shape: &[usize]) -> Vec<usize> {
    if k.is_reduction() {
        (0..shape.len()).collect()
    } else {
        Vec::new()
    }
}

fn first<T>(v: Vec<T>) -> Result<T> {
    v.into_iter().next().ok_or_else(|| Error::Device {
        message: "internal: a kernel without outputs".into(),
    })
}

/// Elements of an iteration space, which must stay below 2^32 (32-bit indexing in shaders,
/// with room for a reduction's last segment past the end and its empty-slot marker).
fn checked_len32(shape: &[usize]) -> Result<usize> {
    let n = crate::array::checked_len(shape, 8)?;
    if n as u64 >= u32::MAX as u64 - 4 * WORKGROUP as u64 * 16 {
        return Err(Error::TooLarge {
            shape: Some(shape.to_vec()),
            reason: format!("has {n} elements: the GPU backend indexes with 32-bit integers"),
        });
    }
    Ok(n)
}

/// Device arrays must match the kernel's input dtypes and broadcast to `shape`.
fn check_resident_args(kern: &Kernel, inputs: &[&GpuArray], shape: &[usize]) -> Result<()> {
    if inputs.len() != kern.inputs.len() {
        return Err(Error::ArgumentCount {
            expected: kern.inputs.len(),
            found: inputs.len(),
            params: vec![],
        });
    }
    for (i, (a, t)) in inputs.iter().zip(&kern.inputs).enumerate() {
        if a.dtype != *t {
            return Err(Error::DtypeMismatch {
                name: format!("input {i}"),
                expected: *t,
                found: a.dtype,
            });
        }
        let s = &a.shape;
        let ok = s.len() <= shape.len()
            && s.iter()
                .rev()
                .zip(shape.iter().rev())
                .all(|(&x, &o)| x == o || x == 1);
        if !ok {
            return Err(Error::ShapeMismatch {
                lhs: s.clone(),
                rhs: shape.to_vec(),
            });
        }
    }
    Ok(())
}
