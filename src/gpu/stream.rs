//! The streamed host path of kernels of stores: the iteration space in chunks through a ring of
//! [`RING`] slots, each with its own staging and device buffers, so that the host writes chunk
//! k+1 while the device works on chunks k and k-1 and the host copies out chunk k-2.
//!
//! - **Upload**: each streamed input's chunk is written by the host straight from the
//!   caller's array into a mapped upload buffer (`MAP_WRITE | COPY_SRC`), unmapped, and copied
//!   to the slot's storage buffer at the start of the chunk's submission. Broadcast inputs that
//!   fit one binding are uploaded whole, once; larger ones are gathered chunk by chunk.
//! - **Compute**: one dispatch per chunk, the parameter block saying where the chunk starts.
//! - **Download**: each output chunk is copied to a read-back buffer (`MAP_READ | COPY_DST`)
//!   in the same submission, mapped asynchronously, and copied by the host straight into the
//!   output array (allocated once, zeroed by the allocator: no intermediate `Vec`s).
//! - **Waiting**: only where data is needed: before a slot is reused (its chunk's results are
//!   read then), and at the end. Nothing else blocks the host.
//!
//! What overlaps is the host's copies with the device's work (on a discrete GPU the
//! device-side transfers belong to the device's work: wgpu submits to one queue). Each element
//! is computed by the same code whatever the chunking, so the result is that of one pass.
use super::buffers::{HostInput, Kind};
use super::dispatch::entries;
use super::{device_size, round_up, wgsl, GpuBackend, GpuKernel, WORKGROUP};
use crate::array::{broadcast_strides, DynArray};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::target::GPU_STREAM_CHUNK_BYTES;
use ndarray::{ArrayD, IxDyn};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{channel, Receiver};

/// Slots of the ring: chunk k is written while k-1 and k-2 may still be on the device.
pub(super) const RING: usize = 3;

/// Elements per chunk: [`GPU_STREAM_CHUNK_BYTES`] of the widest streamed array, within one
/// binding (`limit` bytes), in whole workgroups.
pub(super) fn chunk_elems(widest: u64, limit: u64) -> u64 {
    let c = GPU_STREAM_CHUNK_BYTES.min(limit) / widest.max(1);
    (c - c % WORKGROUP as u64).max(WORKGROUP as u64)
}

/// The chunks of an iteration space of `n` elements (a 64-bit count): `(start, len)` with
/// `len <= chunk`, covering `0..n` in order.
pub(super) fn chunk_ranges(n: usize, chunk: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..n.div_ceil(chunk)).map(move |c| (c * chunk, chunk.min(n - c * chunk)))
}

/// An output array being filled chunk by chunk (host layout).
enum HostOut {
    F32(Vec<f32>),
    F64(Vec<f64>),
    I32(Vec<i32>),
    I64(Vec<i64>),
    Bool(Vec<bool>),
}

impl HostOut {
    fn new(t: DType, n: usize) -> HostOut {
        match t {
            DType::F32 => HostOut::F32(vec![0.0; n]),
            DType::F64 => HostOut::F64(vec![0.0; n]),
            DType::I32 => HostOut::I32(vec![0; n]),
            DType::I64 => HostOut::I64(vec![0; n]),
            DType::Bool => HostOut::Bool(vec![false; n]),
            // `adapter::check_capabilities` refuses the other dtypes before streaming starts;
            // their bytes would land in a buffer of another dtype's width, so keep none.
            _ => HostOut::Bool(Vec::new()),
        }
    }

    /// Copy the device elements `src` (mapped read-back memory) to elements `start..`.
    fn fill(&mut self, start: usize, src: &[u8]) {
        fn pod<T: bytemuck::Pod>(v: &mut [T], start: usize, src: &[u8]) {
            let len = src.len() / std::mem::size_of::<T>();
            bytemuck::cast_slice_mut::<T, u8>(&mut v[start..start + len]).copy_from_slice(src);
        }
        match self {
            HostOut::F32(v) => pod(v, start, src),
            HostOut::F64(v) => pod(v, start, src),
            HostOut::I32(v) => pod(v, start, src),
            HostOut::I64(v) => pod(v, start, src),
            HostOut::Bool(v) => {
                for (d, w) in v[start..].iter_mut().zip(src.chunks_exact(4)) {
                    *d = u32::from_le_bytes([w[0], w[1], w[2], w[3]]) != 0;
                }
            }
        }
    }

    fn into_array(self, shape: &[usize]) -> Result<DynArray> {
        fn arr<T: crate::array::Element>(v: Vec<T>, shape: &[usize]) -> Result<DynArray> {
            Ok(ArrayD::from_shape_vec(IxDyn(shape), v)
                .map_err(|e| Error::Device {
                    message: format!("read-back of {shape:?}: {e}"),
                })?
                .into())
        }
        match self {
            HostOut::F32(v) => arr(v, shape),
            HostOut::F64(v) => arr(v, shape),
            HostOut::I32(v) => arr(v, shape),
            HostOut::I64(v) => arr(v, shape),
            HostOut::Bool(v) => arr(v, shape),
        }
    }
}

type MapResult = std::result::Result<(), wgpu::BufferAsyncError>;

/// A chunk on the device: where its results go and how to know they can be read.
struct InFlight {
    start: usize,
    len: usize,
    index: wgpu::SubmissionIndex,
    /// One per output: the read-back buffer's mapping.
    reads: Vec<Receiver<MapResult>>,
}

/// An upload buffer, with the mapping requested after the submission that last read it.
type UpBuf = (
    wgpu::Buffer,
    Option<(Receiver<MapResult>, wgpu::SubmissionIndex)>,
);

/// One slot of the ring.
struct Slot {
    /// Per input: the upload buffer (mapped while the host may write it) and its pending
    /// mapping; `None` for inputs bound whole.
    up: Vec<Option<UpBuf>>,
    /// Per input: the storage buffer the chunk is copied to (`None`: bound whole).
    dev_in: Vec<Option<wgpu::Buffer>>,
    dev_out: Vec<wgpu::Buffer>,
    down: Vec<wgpu::Buffer>,
    params: wgpu::Buffer,
    busy: Option<InFlight>,
}

fn map_error(e: impl std::fmt::Display) -> Error {
    Error::Device {
        message: format!("map: {e}"),
    }
}

impl GpuBackend {
    /// Wait until `rx`'s mapping has completed (polling the device up to `index`).
    fn wait_map(
        &self,
        rx: &Receiver<MapResult>,
        index: Option<&wgpu::SubmissionIndex>,
    ) -> Result<()> {
        if let Ok(r) = rx.try_recv() {
            return r.map_err(map_error);
        }
        self.device
            .poll(wgpu::PollType::Wait {
                submission_index: index.cloned(),
                timeout: None,
            })
            .map_err(|e| Error::Device {
                message: format!("poll: {e}"),
            })?;
        rx.recv()
            .map_err(|_| Error::Device {
                message: "buffer map callback never ran".into(),
            })?
            .map_err(map_error)
    }

    /// Bring a slot's chunk home: wait for its read-backs, copy them into `outs`, unmap.
    fn drain(&self, slot: &mut Slot, outs: &mut [HostOut], sizes: &[usize]) -> Result<()> {
        let Some(f) = slot.busy.take() else {
            return Ok(());
        };
        for (o, rx) in f.reads.iter().enumerate() {
            self.wait_map(rx, Some(&f.index))?;
            let bytes = (f.len * sizes[o]) as u64;
            {
                let view = slot.down[o]
                    .get_mapped_range(0..round_up(bytes, 4))
                    .map_err(map_error)?;
                outs[o].fill(f.start, &view[..bytes as usize]);
            }
            slot.down[o].unmap();
            self.downloaded.fetch_add(bytes, Ordering::Relaxed);
        }
        Ok(())
    }

    /// A kernel of stores on host inputs, streamed through the ring (see the module docs).
    pub(super) fn run_streamed(
        &self,
        k: &GpuKernel,
        hosts: &[HostInput<'_>],
        out_shape: &[usize],
        n: usize,
    ) -> Result<Vec<DynArray>> {
        let kern = &k.kernel;
        let out_ts = kern.output_dtypes();
        let sizes: Vec<usize> = out_ts.iter().map(|t| device_size(*t)).collect();
        let limit = self.binding_limit.load(Ordering::Relaxed);
        // Inputs of the output's shape stream with it; broadcast ones are bound whole unless
        // they exceed one binding (then gathered per chunk).
        let streamed: Vec<bool> = hosts
            .iter()
            .map(|h| h.shape == out_shape || h.bytes.len() as u64 > limit)
            .collect();
        let widest = sizes
            .iter()
            .map(|&s| s as u64)
            .chain(
                hosts
                    .iter()
                    .zip(&streamed)
                    .filter(|(_, s)| **s)
                    .map(|(h, _)| device_size(h.dtype) as u64),
            )
            .max()
            .unwrap_or(4);
        let chunk =
            (chunk_elems(widest, limit) as usize).min(n.next_multiple_of(WORKGROUP as usize));
        let chunks = n.div_ceil(chunk);
        let all_flat = hosts
            .iter()
            .zip(&streamed)
            .all(|(h, s)| *s || h.shape == out_shape);
        // With every input flat the shader needs no multi-index: pass no dimensions at all.
        let ndim = if all_flat { 0 } else { out_shape.len() };
        let shape_p: &[usize] = if all_flat { &[] } else { out_shape };
        // Inputs bound whole, uploaded once.
        let mut whole: Vec<Option<wgpu::Buffer>> = Vec::with_capacity(hosts.len());
        for (h, s) in hosts.iter().zip(&streamed) {
            whole.push(if *s {
                None
            } else {
                let b = self.acquire(Kind::Storage, round_up(h.bytes.len().max(4) as u64, 4))?;
                self.upload_bytes(&b, 0, &h.bytes);
                Some(b)
            });
        }
        let consts = wgsl::const_words(&k.lowered);
        // The parameter block's fixed part (the chunk's length and start are filled per chunk).
        let params_of = |start: usize, len: usize, gx: u32| -> Vec<u32> {
            // Where the chunk starts matters only to inputs bound whole (read at the global
            // index); with every input streamed the shader reads the chunk's own index, so the
            // iteration space may pass 2^32 elements.
            let at = if streamed.iter().all(|s| *s) {
                0
            } else {
                start as u32
            };
            let mut p: Vec<u32> = vec![len as u32, at, gx * WORKGROUP, ndim as u32, 1];
            p.extend(shape_p.iter().map(|&d| d as u32));
            for (h, s) in hosts.iter().zip(&streamed) {
                if *s {
                    p.extend([1, 0]);
                    p.extend(std::iter::repeat_n(0, ndim));
                } else {
                    p.extend([if h.shape == out_shape { 2 } else { 0 }, 0]);
                    if !all_flat {
                        let st = broadcast_strides(&h.shape, &h.c_strides, out_shape);
                        p.extend(st.iter().map(|&s| s as u32));
                    }
                }
            }
            p.extend(&consts);
            p
        };
        let n_params = params_of(0, 0, 0).len() as u64 * 4;
        let mut ring: Vec<Slot> = Vec::with_capacity(RING.min(chunks));
        for _ in 0..RING.min(chunks) {
            let mut up = Vec::with_capacity(hosts.len());
            let mut dev_in = Vec::with_capacity(hosts.len());
            for (h, s) in hosts.iter().zip(&streamed) {
                if *s {
                    let bytes = round_up((chunk * device_size(h.dtype)) as u64, 4);
                    let b = self.device.create_buffer(&wgpu::BufferDescriptor {
                        label: Some("fusebox upload"),
                        size: bytes,
                        usage: wgpu::BufferUsages::MAP_WRITE | wgpu::BufferUsages::COPY_SRC,
                        mapped_at_creation: true,
                    });
                    up.push(Some((b, None)));
                    dev_in.push(Some(self.acquire(Kind::Storage, bytes)?));
                } else {
                    up.push(None);
                    dev_in.push(None);
                }
            }
            let mut dev_out = Vec::with_capacity(sizes.len());
            let mut down = Vec::with_capacity(sizes.len());
            for &s in &sizes {
                let bytes = round_up((chunk * s) as u64, 4);
                dev_out.push(self.acquire(Kind::Storage, bytes)?);
                down.push(self.acquire(Kind::Staging, bytes)?);
            }
            ring.push(Slot {
                up,
                dev_in,
                dev_out,
                down,
                params: self.acquire(Kind::Storage, n_params)?,
                busy: None,
            });
        }
        let mut outs: Vec<HostOut> = out_ts.iter().map(|t| HostOut::new(*t, n)).collect();
        for (c, (start, len)) in chunk_ranges(n, chunk).enumerate() {
            let slot = &mut ring[c % RING];
            // The slot's previous chunk comes home first (the only wait in the loop).
            self.drain(slot, &mut outs, &sizes)?;
            // Host data straight into the mapped upload buffers.
            for (i, h) in hosts.iter().enumerate() {
                let Some((buf, pending)) = slot.up[i].as_mut() else {
                    continue;
                };
                if let Some((rx, index)) = pending.take() {
                    self.wait_map(&rx, Some(&index))?;
                }
                let bytes = len * device_size(h.dtype);
                let src = h.chunk_bytes(out_shape, start, len);
                {
                    let mut view = buf
                        .get_mapped_range_mut(0..round_up(bytes as u64, 4))
                        .map_err(map_error)?;
                    view.slice(..bytes).copy_from_slice(&src[..bytes]);
                }
                buf.unmap();
                self.uploaded.fetch_add(bytes as u64, Ordering::Relaxed);
            }
            let groups = (len as u32).div_ceil(WORKGROUP);
            let (gx, gy) = Self::grid(groups);
            self.queue.write_buffer(
                &slot.params,
                0,
                bytemuck::cast_slice(&params_of(start, len, gx)),
            );
            let mut enc = self.device.create_command_encoder(&Default::default());
            for (i, h) in hosts.iter().enumerate() {
                if let (Some((up, _)), Some(dev)) = (&slot.up[i], &slot.dev_in[i]) {
                    let bytes = round_up((len * device_size(h.dtype)) as u64, 4);
                    enc.copy_buffer_to_buffer(up, 0, dev, 0, bytes);
                }
            }
            {
                let mut bufs: Vec<&wgpu::Buffer> = vec![&slot.params];
                bufs.extend(slot.dev_out.iter());
                for (w, d) in whole.iter().zip(&slot.dev_in) {
                    bufs.push(w.as_ref().or(d.as_ref()).ok_or_else(|| Error::Device {
                        message: "internal: input buffer missing".into(),
                    })?);
                }
                self.dispatch_into(&mut enc, &k.pipeline, &k.layout, &entries(&bufs), (gx, gy));
            }
            for (o, &s) in sizes.iter().enumerate() {
                let bytes = round_up((len * s) as u64, 4);
                enc.copy_buffer_to_buffer(&slot.dev_out[o], 0, &slot.down[o], 0, bytes);
            }
            let index = self.queue.submit([enc.finish()]);
            let mut reads = Vec::with_capacity(sizes.len());
            for (o, &s) in sizes.iter().enumerate() {
                let (tx, rx) = channel();
                let bytes = round_up((len * s) as u64, 4);
                slot.down[o]
                    .slice(0..bytes)
                    .map_async(wgpu::MapMode::Read, move |r| {
                        let _ = tx.send(r);
                    });
                reads.push(rx);
            }
            // Upload buffers this slot will write again are mapped as soon as the device is
            // done with them.
            if c + RING < chunks {
                for (buf, pending) in slot.up.iter_mut().flatten() {
                    let (tx, rx) = channel();
                    buf.slice(..).map_async(wgpu::MapMode::Write, move |r| {
                        let _ = tx.send(r);
                    });
                    *pending = Some((rx, index.clone()));
                }
            }
            slot.busy = Some(InFlight {
                start,
                len,
                index,
                reads,
            });
        }
        // The last chunks, in order.
        for c in chunks.saturating_sub(RING)..chunks {
            let slot = &mut ring[c % RING];
            self.drain(slot, &mut outs, &sizes)?;
        }
        for slot in ring {
            for b in slot.dev_in.into_iter().flatten() {
                self.release(Kind::Storage, b);
            }
            for b in slot.dev_out {
                self.release(Kind::Storage, b);
            }
            for b in slot.down {
                self.release(Kind::Staging, b);
            }
            self.release(Kind::Storage, slot.params);
        }
        for b in whole.into_iter().flatten() {
            self.release(Kind::Storage, b);
        }
        self.take_lost()?;
        outs.into_iter().map(|o| o.into_array(out_shape)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_of_64_bit_counts_tile_the_space_within_the_grid_limits() {
        for n in [
            1usize,
            255,
            256,
            257,
            3 << 20,
            (1 << 32) - 1,
            1 << 32,
            5_000_000_123,
        ] {
            for widest in [4u64, 8] {
                let chunk = chunk_elems(widest, 128 << 20) as usize;
                let mut next = 0usize;
                for (start, len) in chunk_ranges(n, chunk) {
                    assert_eq!(start, next, "n = {n}");
                    assert!(len >= 1 && len <= chunk);
                    // One chunk is one dispatch of whole workgroups on the 2-D grid.
                    let (gx, gy) = GpuBackend::grid((len as u32).div_ceil(WORKGROUP));
                    assert!(gx <= 65_535 && gy <= 65_535);
                    assert!(gx as u64 * gy as u64 * WORKGROUP as u64 >= len as u64);
                    next = start + len;
                }
                assert_eq!(next, n);
            }
        }
        // Past 2^32 elements, and past 65,535 workgroups per dimension in one dispatch.
        assert_eq!(GpuBackend::grid(200_000), (65_535, 4));
    }

    #[test]
    fn chunks_are_whole_workgroups_within_a_binding() {
        // 16 MiB of f64 per chunk: 2^21 elements.
        assert_eq!(chunk_elems(8, 1 << 30), 1 << 21);
        // A small binding bounds the chunk.
        assert_eq!(chunk_elems(8, 1 << 16), (1 << 13) as u64);
        // Never less than one workgroup, always a multiple of it.
        assert_eq!(chunk_elems(8, 100), WORKGROUP as u64);
        assert_eq!(chunk_elems(12, 1 << 20) % WORKGROUP as u64, 0);
    }
}
