//! Device memory: the buffer pool, uploads and read-backs, device-resident arrays
//! ([`GpuArray`]), and host inputs in device layout ([`HostInput`]).
use super::{device_size, round_up, GpuBackend};
use crate::array::{broadcast_strides, ArgView, DynArray};
use crate::dtype::DType;
use crate::error::{Error, Result};
use ndarray::{ArrayD, IxDyn};
use std::collections::HashMap;
use std::sync::atomic::Ordering;

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Kind {
    /// STORAGE | COPY_DST | COPY_SRC
    Storage,
    /// MAP_READ | COPY_DST
    Staging,
}

/// Buffers keyed by (kind, power-of-two size), reused across calls.
#[derive(Default)]
pub(super) struct Pool {
    free: HashMap<(Kind, u64), Vec<wgpu::Buffer>>,
}

impl GpuBackend {
    pub(super) fn acquire(&self, kind: Kind, size: u64) -> Result<wgpu::Buffer> {
        let cap = size.max(256).next_power_of_two();
        // Never round past what one binding may hold.
        let limit = self.info.max_binding_size.max(size);
        let cap = if cap > limit {
            round_up(size, 256)
        } else {
            cap
        };
        if let Some(b) = self
            .pool
            .lock()
            .map_err(poisoned)?
            .free
            .get_mut(&(kind, cap))
            .and_then(|v| v.pop())
        {
            return Ok(b);
        }
        let usage = match kind {
            Kind::Storage => {
                wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_DST
                    | wgpu::BufferUsages::COPY_SRC
            }
            Kind::Staging => wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        };
        Ok(self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("fusebox pool"),
            size: cap,
            usage,
            mapped_at_creation: false,
        }))
    }

    pub(super) fn release(&self, kind: Kind, b: wgpu::Buffer) {
        if let Ok(mut p) = self.pool.lock() {
            let list = p.free.entry((kind, b.size())).or_default();
            // Keep a few of each size; drop the rest.
            if list.len() < 4 {
                list.push(b);
            }
        }
    }

    pub(super) fn upload_bytes(&self, buf: &wgpu::Buffer, offset: u64, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        // write_buffer needs a multiple of 4 bytes; every device element is 4 or 8 bytes.
        self.queue.write_buffer(buf, offset, bytes);
        self.uploaded
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
    }

    /// Copy `size` bytes of `src` back to the host.
    pub(super) fn download_buf(
        &self,
        encoder: wgpu::CommandEncoder,
        src: &wgpu::Buffer,
        size: u64,
    ) -> Result<Vec<u8>> {
        let mut encoder = encoder;
        let size4 = round_up(size, 4);
        let staging = self.acquire(Kind::Staging, size4)?;
        encoder.copy_buffer_to_buffer(src, 0, &staging, 0, size4);
        self.queue.submit([encoder.finish()]);
        let slice = staging.slice(0..size4);
        let (tx, rx) = std::sync::mpsc::channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::Device {
                message: format!("poll: {e}"),
            })?;
        rx.recv()
            .map_err(|_| Error::Device {
                message: "buffer map callback never ran".into(),
            })?
            .map_err(|e| Error::Device {
                message: format!("map: {e}"),
            })?;
        let out = {
            let view = slice.get_mapped_range().map_err(|e| Error::Device {
                message: format!("map: {e}"),
            })?;
            view[..size as usize].to_vec()
        };
        staging.unmap();
        self.release(Kind::Staging, staging);
        self.downloaded.fetch_add(size, Ordering::Relaxed);
        self.take_lost()?;
        Ok(out)
    }

    /// The parameter block of one dispatch, in a pooled buffer (not counted as uploaded data).
    pub(super) fn params(&self, p: &[u32]) -> Result<wgpu::Buffer> {
        let params = self.acquire(Kind::Storage, round_up(p.len() as u64 * 4, 4))?;
        self.queue.write_buffer(&params, 0, bytemuck::cast_slice(p));
        Ok(params)
    }
}

/// An array resident on the device: C-contiguous, in device layout (bool as u32).
pub struct GpuArray {
    pub(super) buffer: wgpu::Buffer,
    pub(super) dtype: DType,
    pub(super) shape: Vec<usize>,
}

impl GpuArray {
    /// The same device buffer seen with another shape of the same length (a reduction's result
    /// with or without its `keepdims` axes).
    pub fn reshaped(&self, shape: &[usize]) -> Result<GpuArray> {
        if shape.iter().product::<usize>() != self.len() {
            return Err(Error::ShapeMismatch {
                lhs: self.shape.clone(),
                rhs: shape.to_vec(),
            });
        }
        Ok(GpuArray {
            buffer: self.buffer.clone(),
            dtype: self.dtype,
            shape: shape.to_vec(),
        })
    }
    pub fn dtype(&self) -> DType {
        self.dtype
    }
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl std::fmt::Debug for GpuArray {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GpuArray({}, {:?})", self.dtype, self.shape)
    }
}

impl GpuBackend {
    pub(super) fn resident_buffer(&self, bytes: u64) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("fusebox resident"),
            size: round_up(bytes.max(4), 4),
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_DST
                | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        })
    }

    pub(super) fn check_resident_size(&self, bytes: u64) -> Result<()> {
        let limit = self.binding_limit.load(Ordering::Relaxed);
        if bytes > limit {
            return Err(Error::TooLarge {
                shape: None,
                reason: format!(
                    "{bytes} bytes: a device-resident array must fit one storage binding ({limit} bytes); \
                     use GpuBackend::run, which streams larger arrays"
                ),
            });
        }
        Ok(())
    }

    /// Copy an array to the device once; it stays there for [`GpuBackend::run_resident`].
    pub fn upload(&self, a: &ArgView<'_>) -> Result<GpuArray> {
        self.take_lost()?;
        let t = a.dtype();
        self.check_dtypes_of(&[t])?;
        let h = HostInput::new(a);
        self.check_resident_size(h.bytes.len() as u64)?;
        let buffer = self.resident_buffer(h.bytes.len() as u64);
        self.upload_bytes(&buffer, 0, &h.bytes);
        Ok(GpuArray {
            buffer,
            dtype: t,
            shape: h.shape,
        })
    }

    /// Copy a device array back to the host.
    pub fn download(&self, a: &GpuArray) -> Result<DynArray> {
        let size = (a.len() * device_size(a.dtype)) as u64;
        if size == 0 {
            return Ok(empty_array(a.dtype, &a.shape));
        }
        let enc = self.device.create_command_encoder(&Default::default());
        let bytes = self.download_buf(enc, &a.buffer, size)?;
        bytes_to_array(a.dtype, &bytes, &a.shape)
    }
}

pub(super) fn poisoned<T>(_: std::sync::PoisonError<T>) -> Error {
    Error::Device {
        message: "GPU backend lock poisoned by an earlier panic".into(),
    }
}

fn zero_scalar(t: DType) -> DynArray {
    let shape = IxDyn(&[]);
    crate::with_dtype!(t, T => ArrayD::<T>::from_elem(shape, T::default()).into())
}

pub(super) fn empty_array(t: DType, shape: &[usize]) -> DynArray {
    match bytes_to_array(t, &[], shape) {
        Ok(a) => a,
        Err(_) => zero_scalar(t),
    }
}

pub(super) fn bytes_to_array(t: DType, bytes: &[u8], shape: &[usize]) -> Result<DynArray> {
    fn typed<T: bytemuck::Pod + crate::array::Element>(
        bytes: &[u8],
        shape: &[usize],
    ) -> Result<DynArray> {
        let v: Vec<T> = bytemuck::pod_collect_to_vec(bytes);
        Ok(ArrayD::from_shape_vec(IxDyn(shape), v)
            .map_err(|e| Error::Device {
                message: format!("read-back of {shape:?}: {e}"),
            })?
            .into())
    }
    match t {
        DType::F32 => typed::<f32>(bytes, shape),
        DType::F64 => typed::<f64>(bytes, shape),
        DType::I32 => typed::<i32>(bytes, shape),
        DType::I64 => typed::<i64>(bytes, shape),
        // `check_capabilities` refuses the other dtypes before any buffer exists.
        t @ (DType::I8
        | DType::I16
        | DType::U8
        | DType::U16
        | DType::U32
        | DType::U64
        | DType::F16) => Err(Error::UnsupportedDtype {
            dtype: t.to_string(),
            context: "GPU read-back".into(),
        }),
        DType::Bool => {
            let v: Vec<u32> = bytemuck::pod_collect_to_vec(bytes);
            let b: Vec<bool> = v.into_iter().map(|x| x != 0).collect();
            Ok(ArrayD::from_shape_vec(IxDyn(shape), b)
                .map_err(|e| Error::Device {
                    message: format!("read-back of {shape:?}: {e}"),
                })?
                .into())
        }
    }
}

/// An input on the host, C-contiguous in its own shape, as device bytes (bool -> u32): the
/// caller's memory itself when it is already that (a C-contiguous array of a dtype other
/// than bool), else a copy.
pub(super) struct HostInput<'a> {
    pub(super) dtype: DType,
    pub(super) shape: Vec<usize>,
    pub(super) c_strides: Vec<isize>,
    pub(super) bytes: std::borrow::Cow<'a, [u8]>,
}

pub(super) fn c_strides(shape: &[usize]) -> Vec<isize> {
    let mut s = vec![0isize; shape.len()];
    let mut acc = 1isize;
    for i in (0..shape.len()).rev() {
        s[i] = acc;
        acc *= shape[i].max(1) as isize;
    }
    s
}

impl<'a> HostInput<'a> {
    pub(super) fn new(a: &ArgView<'a>) -> HostInput<'a> {
        use std::borrow::Cow;
        fn pod<'a, T: bytemuck::Pod + Clone>(v: &ndarray::ArrayViewD<'a, T>) -> Cow<'a, [u8]> {
            // `to_slice` keeps the view's lifetime (not the borrow of `v`).
            match v.clone().to_slice() {
                Some(s) => Cow::Borrowed(bytemuck::cast_slice(s)),
                None => {
                    let v: Vec<T> = v.iter().cloned().collect();
                    Cow::Owned(bytemuck::cast_slice(&v).to_vec())
                }
            }
        }
        let bytes = match a {
            ArgView::F32(v) => pod(v),
            ArgView::F64(v) => pod(v),
            ArgView::I32(v) => pod(v),
            ArgView::I64(v) => pod(v),
            ArgView::I8(v) => pod(v),
            ArgView::I16(v) => pod(v),
            ArgView::U8(v) => pod(v),
            ArgView::U16(v) => pod(v),
            ArgView::U32(v) => pod(v),
            ArgView::U64(v) => pod(v),
            // Refused before any buffer exists (`check_capabilities`); the bits, for
            // completeness.
            ArgView::F16(v) => {
                let u: Vec<u16> = v.iter().map(|x| x.to_bits()).collect();
                Cow::Owned(bytemuck::cast_slice(&u).to_vec())
            }
            ArgView::Bool(v) => {
                let u: Vec<u32> = v.iter().map(|&b| b as u32).collect();
                // iter() is in logical (C) order whatever the strides.
                Cow::Owned(bytemuck::cast_slice(&u).to_vec())
            }
        };
        HostInput {
            dtype: a.dtype(),
            shape: a.shape().to_vec(),
            c_strides: c_strides(a.shape()),
            bytes,
        }
    }

    /// Device bytes of this input's values at output indices `start..start+len`, broadcast
    /// to `out_shape`: the input's own memory when the shapes agree, a gathered copy otherwise.
    pub(super) fn chunk_bytes(
        &self,
        out_shape: &[usize],
        start: usize,
        len: usize,
    ) -> std::borrow::Cow<'_, [u8]> {
        use std::borrow::Cow;
        let sz = device_size(self.dtype);
        if self.shape == out_shape {
            return Cow::Borrowed(&self.bytes[start * sz..(start + len) * sz]);
        }
        let st = broadcast_strides(&self.shape, &self.c_strides, out_shape);
        let mut out = Vec::with_capacity(len * sz);
        let mut idx = vec![0usize; out_shape.len()];
        let mut rem = start;
        for d in (0..out_shape.len()).rev() {
            idx[d] = rem % out_shape[d];
            rem /= out_shape[d];
        }
        for _ in 0..len {
            let off: isize = idx.iter().zip(&st).map(|(&i, &s)| i as isize * s).sum();
            let o = off as usize * sz;
            out.extend_from_slice(&self.bytes[o..o + sz]);
            for d in (0..out_shape.len()).rev() {
                idx[d] += 1;
                if idx[d] < out_shape[d] {
                    break;
                }
                idx[d] = 0;
            }
        }
        Cow::Owned(out)
    }
}
