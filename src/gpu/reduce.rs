//! Reductions: the first pass writes one partial result per workgroup and output element,
//! combine passes reduce the partials (see the module docs of [`crate::gpu`]).
use super::buffers::{c_strides, empty_array, GpuArray, HostInput, Kind};
use super::dispatch::entries;
use super::{device_size, round_up, wgsl, GpuBackend, GpuKernel, WORKGROUP};
use crate::array::{broadcast_strides, DynArray};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::kir::{Const, Output};
use crate::ops::ReduceOp;
use ndarray::{ArrayD, IxDyn};
use std::sync::atomic::Ordering;

impl GpuBackend {
    /// Run a reduction kernel: the first pass over the inputs writes per-workgroup partial
    /// results, combine passes reduce them until one group per output element is left (see
    /// [`wgsl`] for the mapping of threads to elements). Inputs larger than one binding are
    /// streamed in chunks of whole segments (reductions of every non-trivial axis only).
    pub(super) fn reduce(
        &self,
        k: &GpuKernel,
        srcs: &[Src<'_>],
        shape: &[usize],
        axes: &[usize],
    ) -> Result<Reduced> {
        let kern = &k.kernel;
        let ndim = shape.len();
        let kept: Vec<usize> = (0..ndim).filter(|d| !axes.contains(d)).collect();
        let kept_shape: Vec<usize> = kept.iter().map(|&d| shape[d]).collect();
        let kn: usize = kept_shape.iter().product();
        let rn: usize = axes.iter().map(|&d| shape[d]).product();
        let outs: Vec<(ReduceOp, DType, DType)> = kern
            .outputs
            .iter()
            .filter_map(|o| match *o {
                Output::Reduce { op, value } => Some((op, kern.ty(value), kern.dtype_of(*o))),
                Output::Store { .. } => None,
            })
            .collect();
        if kn == 0 || rn == 0 {
            let mut v = Vec::with_capacity(outs.len());
            for &(op, acc, res) in &outs {
                if kn == 0 {
                    v.push(empty_array(res, &kept_shape));
                    continue;
                }
                let id = op.identity(acc).ok_or_else(|| Error::EmptyReduction {
                    op: op.name().into(),
                })?;
                v.push(filled(id, &kept_shape));
            }
            return Ok(Reduced::Host(v));
        }
        let limit = self.binding_limit.load(Ordering::Relaxed);
        let mut strides: Vec<Vec<isize>> = Vec::with_capacity(srcs.len());
        let mut streamed: Vec<bool> = Vec::with_capacity(srcs.len());
        let mut widest = 0u64;
        for s in srcs {
            let (sh, big, t) = match s {
                Src::Host(h) => (&h.shape, h.bytes.len() as u64 > limit, h.dtype),
                Src::Device(a) => (&a.shape, false, a.dtype),
            };
            strides.push(broadcast_strides(sh, &c_strides(sh), shape).to_vec());
            streamed.push(big);
            if big {
                widest = widest.max(device_size(t) as u64);
            }
        }
        if widest > 0 && kn > 1 {
            return Err(Error::TooLarge {
                shape: Some(shape.to_vec()),
                reason: format!(
                    "has an input that exceeds one storage binding ({limit} bytes): the GPU \
                     backend streams it for reductions over all axes only, not along some axes"
                ),
            });
        }
        let (kdims, kstr) = merge_dims(&kept, shape, &strides, &streamed);
        let (rdims, rstr) = merge_dims(axes, shape, &strides, &streamed);
        let innermost = (0..ndim).rev().find(|&d| shape[d] != 1);
        let rfast = kn == 1 || innermost.is_some_and(|d| axes.contains(&d));
        let lay = Layout::new(kn, rn, rfast);
        let seg = lay.segment();
        // Chunks of whole segments when an input is streamed, else one.
        let chunk = match limit.checked_div(widest) {
            Some(c) => ((c as usize) - (c as usize) % seg).max(seg),
            None => rn,
        };
        let chunks: Vec<(usize, usize)> = (0..rn)
            .step_by(chunk)
            .map(|s| (s, chunk.min(rn - s)))
            .collect();
        let total: usize = chunks.iter().map(|&(_, len)| len.div_ceil(seg)).sum();

        // Inputs: device arrays as they are, host arrays uploaded whole unless streamed.
        let mut pooled: Vec<wgpu::Buffer> = Vec::new();
        let mut whole: Vec<Option<wgpu::Buffer>> = Vec::with_capacity(srcs.len());
        for (s, big) in srcs.iter().zip(&streamed) {
            match s {
                Src::Host(h) if !big => {
                    let b =
                        self.acquire(Kind::Storage, round_up(h.bytes.len().max(4) as u64, 4))?;
                    self.upload_bytes(&b, 0, &h.bytes);
                    whole.push(Some(b));
                }
                _ => whole.push(None),
            }
        }
        let consts = wgsl::const_words(&k.lowered);
        let kb = kn.div_ceil(lay.tk as usize);
        let mut level = self.level_buffers(&outs, total * kn, kn, total == 1)?;
        let mut part_base = 0usize;
        for &(start, len) in &chunks {
            let g = len.div_ceil(seg);
            let mut p: Vec<u32> = vec![
                kn as u32,
                start as u32,
                (start + len) as u32,
                rfast as u32,
                1,
                lay.tk,
                lay.j,
                kb as u32,
                g as u32,
                part_base as u32,
                (total == 1) as u32,
                kdims.len() as u32,
                rdims.len() as u32,
            ];
            p.extend(&kdims);
            p.extend(&rdims);
            for i in 0..srcs.len() {
                p.push(streamed[i] as u32);
                p.extend(&kstr[i]);
                p.extend(&rstr[i]);
            }
            p.extend(&consts);
            let params = self.params(&p)?;
            let mut chunk_bufs: Vec<wgpu::Buffer> = Vec::new();
            for (s, big) in srcs.iter().zip(&streamed) {
                if let (Src::Host(h), true) = (s, big) {
                    let bytes = h.chunk_bytes(shape, start, len);
                    let b = self.acquire(Kind::Storage, round_up(bytes.len() as u64, 4))?;
                    self.upload_bytes(&b, 0, &bytes);
                    chunk_bufs.push(b);
                }
            }
            let mut bufs: Vec<&wgpu::Buffer> = vec![&params];
            bufs.extend(level.bindings());
            let mut next_chunk = chunk_bufs.iter();
            for (i, s) in srcs.iter().enumerate() {
                bufs.push(match (s, &whole[i]) {
                    (Src::Device(a), _) => &a.buffer,
                    (_, Some(b)) => b,
                    (_, None) => next_chunk.next().ok_or_else(|| Error::Device {
                        message: "internal: streamed input missing".into(),
                    })?,
                });
            }
            let grid = Self::grid((kb * g) as u32);
            let mut enc = self.device.create_command_encoder(&Default::default());
            self.dispatch_into(&mut enc, &k.pipeline, &k.layout, &entries(&bufs), grid);
            self.queue.submit([enc.finish()]);
            // Submitted: the pool may hand these out again (later writes queue behind).
            self.release(Kind::Storage, params);
            for b in chunk_bufs {
                self.release(Kind::Storage, b);
            }
            part_base += g;
        }
        // Combine passes over `[count, kn]` partials.
        let mut count = total;
        if count > 1 {
            let comb = k.combine.as_ref().ok_or_else(|| Error::Device {
                message: "internal: no combine pipeline".into(),
            })?;
            let mut enc = self.device.create_command_encoder(&Default::default());
            while count > 1 {
                let lay = Layout::new(kn, count, false);
                let g = count.div_ceil(lay.segment());
                let kb = kn.div_ceil(lay.tk as usize);
                let next = self.level_buffers(&outs, g * kn, kn, g == 1)?;
                let p: Vec<u32> = vec![
                    kn as u32,
                    0,
                    count as u32,
                    0,
                    1,
                    lay.tk,
                    lay.j,
                    kb as u32,
                    g as u32,
                    0,
                    (g == 1) as u32,
                    0,
                    0,
                ];
                let params = self.params(&p)?;
                let mut bufs: Vec<&wgpu::Buffer> = vec![&params];
                bufs.extend(next.bindings());
                bufs.extend(level.bindings());
                let grid = Self::grid((kb * g) as u32);
                self.dispatch_into(
                    &mut enc,
                    &comb.pipeline,
                    &comb.layout,
                    &entries(&bufs),
                    grid,
                );
                pooled.push(params);
                pooled.extend(level.into_pooled());
                level = next;
                count = g;
            }
            self.queue.submit([enc.finish()]);
        }
        for b in pooled {
            self.release(Kind::Storage, b);
        }
        for b in whole.into_iter().flatten() {
            self.release(Kind::Storage, b);
        }
        let results = level.into_results(&outs);
        Ok(Reduced::Device(results, kept_shape))
    }

    /// Buffers of one level of a reduction: per output `count` partial values (and positions);
    /// at the last level (`fin`) the result buffers, of `kn` elements.
    fn level_buffers(
        &self,
        outs: &[(ReduceOp, DType, DType)],
        count: usize,
        kn: usize,
        fin: bool,
    ) -> Result<Level> {
        let mut slots = Vec::with_capacity(outs.len());
        for &(op, acc, _) in outs {
            let vbytes = (count * device_size(acc)) as u64;
            let pbytes = count as u64 * 4;
            let (val, pos) = if !fin {
                let pos = if wgsl::carries_position(op, acc) {
                    Some(self.acquire(Kind::Storage, round_up(pbytes, 4))?)
                } else {
                    None
                };
                (self.acquire(Kind::Storage, round_up(vbytes, 4))?, pos)
            } else if op.is_arg() {
                // The result is the positions, as int64 (low word, 0).
                (
                    self.acquire(Kind::Storage, round_up(vbytes, 4))?,
                    Some(self.resident_buffer(kn as u64 * 8)),
                )
            } else if wgsl::carries_position(op, acc) {
                (
                    self.resident_buffer(vbytes),
                    Some(self.acquire(Kind::Storage, round_up(pbytes, 4))?),
                )
            } else {
                (self.resident_buffer(vbytes), None)
            };
            slots.push((op, val, pos));
        }
        Ok(Level { slots, fin })
    }
}

/// A reduction's input: a host array (uploaded whole or streamed) or a device array.
pub(super) enum Src<'a> {
    Host(&'a HostInput<'a>),
    Device(&'a GpuArray),
}

/// What a reduction produced: host arrays (empty reductions need no device), or one device
/// buffer per output with its dtype, and the kept shape.
pub(super) enum Reduced {
    Host(Vec<DynArray>),
    Device(Vec<(wgpu::Buffer, DType)>, Vec<usize>),
}

/// The buffers of one level of a reduction, per output: (op, values, positions).
struct Level {
    slots: Vec<(ReduceOp, wgpu::Buffer, Option<wgpu::Buffer>)>,
    fin: bool,
}

impl Level {
    /// In binding order (values, then positions, per output).
    fn bindings(&self) -> Vec<&wgpu::Buffer> {
        let mut v = Vec::new();
        for (_, val, pos) in &self.slots {
            v.push(val);
            if let Some(p) = pos {
                v.push(p);
            }
        }
        v
    }
    /// Every buffer, for the pool (an intermediate level).
    fn into_pooled(self) -> Vec<wgpu::Buffer> {
        let mut v = Vec::new();
        for (_, val, pos) in self.slots {
            v.push(val);
            v.extend(pos);
        }
        v
    }
    /// The result buffers of the last level, with the result dtypes.
    fn into_results(self, outs: &[(ReduceOp, DType, DType)]) -> Vec<(wgpu::Buffer, DType)> {
        debug_assert!(self.fin);
        self.slots
            .into_iter()
            .zip(outs)
            .map(|((op, val, pos), &(_, _, res))| match (op.is_arg(), pos) {
                (true, Some(p)) => (p, res),
                _ => (val, res),
            })
            .collect()
    }
}

/// Threads of a reduction workgroup: `tk` along the kept axis, `256 / tk` along the reduced one
/// (`rfast`: adjacent threads take adjacent reduced positions), `j` values per thread and
/// segment.
#[derive(Debug, Clone, Copy)]
struct Layout {
    tk: u32,
    j: u32,
}

impl Layout {
    fn new(kn: usize, rn: usize, rfast: bool) -> Layout {
        let w = WORKGROUP as usize;
        if rfast {
            // Enough threads along the row for 16 values each; the rest take more rows.
            let tr = rn.div_ceil(16).max(1).next_power_of_two().min(w);
            Layout {
                tk: (w / tr) as u32,
                j: 16,
            }
        } else {
            let tk = kn.max(1).next_power_of_two().min(w);
            // Without much of a tree, longer (still short) sequential stretches per thread.
            let j = if w / tk >= 32 { 8 } else { 32 };
            Layout { tk: tk as u32, j }
        }
    }
    /// Reduced positions one workgroup covers.
    fn segment(self) -> usize {
        (WORKGROUP / self.tk * self.j) as usize
    }
}

/// Dimensions `dims` of the iteration space `shape` with each input's strides: size-1
/// dimensions dropped, neighbours merged where every input (streamed ones aside) allows it, so
/// that a contiguous input is read with one stride.
fn merge_dims(
    dims: &[usize],
    shape: &[usize],
    strides: &[Vec<isize>],
    streamed: &[bool],
) -> (Vec<u32>, Vec<Vec<u32>>) {
    let mut sizes: Vec<usize> = Vec::new();
    let mut st: Vec<Vec<isize>> = vec![Vec::new(); strides.len()];
    for &d in dims {
        if shape[d] == 1 {
            continue;
        }
        if let Some(last) = sizes.last_mut() {
            let ok = (0..strides.len())
                .all(|i| streamed[i] || st[i].last() == Some(&(strides[i][d] * shape[d] as isize)));
            if ok {
                *last *= shape[d];
                for (i, s) in st.iter_mut().enumerate() {
                    if let Some(l) = s.last_mut() {
                        *l = strides[i][d];
                    }
                }
                continue;
            }
        }
        sizes.push(shape[d]);
        for (i, s) in st.iter_mut().enumerate() {
            s.push(strides[i][d]);
        }
    }
    let st = st
        .into_iter()
        .zip(streamed)
        .map(|(s, &big)| s.iter().map(|&x| if big { 0 } else { x as u32 }).collect())
        .collect();
    (sizes.iter().map(|&d| d as u32).collect(), st)
}

/// An array of `shape` filled with `c`.
fn filled(c: Const, shape: &[usize]) -> DynArray {
    let sh = IxDyn(shape);
    crate::with_dtype!(c.dtype(), T => {
        ArrayD::from_elem(sh, <T as crate::array::Element>::from_const(c)).into()
    })
}
