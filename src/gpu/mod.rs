//! GPU backend: kernel IR -> WGSL compute shader -> wgpu 30 (Vulkan preferred).
//!
//! Pipeline: [`wgsl::write_kernel_with`] turns a verified [`Kernel`] into WGSL; the text is
//! validated with naga before it reaches the driver; the compute pipeline is cached by the
//! shader's hash. Float constants are not in the text: they travel in the parameter buffer (a
//! fast-math driver folds visible ones wrongly; see [`wgsl`]), so kernels that differ only in
//! them share a pipeline. [`GpuBackend::run`] uploads each input once (made C-contiguous on the host;
//! broadcast and strided inputs are read through per-input strides passed in a parameter
//! buffer, 0 for broadcast dimensions), dispatches one invocation per output element on a 2-D
//! grid (so the 65,535-workgroups-per-dimension limit never bites), and reads the result back
//! through a staging buffer. Buffers come from a pool reused across calls.
//!
//! Large arrays: when the output or an input is larger than one storage binding
//! (`max_storage_buffer_binding_size`, 128 MiB on lavapipe), the iteration space is cut into
//! chunks of whole workgroups; inputs that fit one binding stay bound whole, larger inputs are
//! streamed chunk by chunk (a plain slice when the input has the output's shape, a host gather
//! of the broadcast values otherwise). Each element is computed by the same code whatever the
//! chunking, so the result is identical to one pass.
//!
//! `sum`: each workgroup reduces 256 values in workgroup memory (a binary tree), the partials
//! are reduced again by the same tree until one value is left (per chunk, then across chunks).
//! Floats are therefore summed pairwise (error O(log2 n) ulp, like NumPy's pairwise sum but with
//! a different association, so results agree with NumPy to rounding, not bit for bit); integer
//! sums are exact (wrapping i64).
//!
//! dtypes: bool is stored as `u32` in shaders and converted at the host boundary; f64 needs
//! `SHADER_F64`, i64 (and integer sums, which accumulate in i64) `SHADER_INT64`; otherwise
//! [`GpuBackend::compile`] returns [`Error::UnsupportedDtype`].
//!
//! Accuracy: see [`wgsl`] for the math polyfills and their measured ULP bounds.
pub mod wgsl;

use crate::array::{broadcast_strides, ArgView, DynArray};
use crate::cache::KernelCache;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::kir::{Kernel, Output};
use ndarray::{ArrayD, IxDyn};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Refuse dtypes the adapter cannot run, with a message naming the missing feature.
fn check_capabilities(info: &AdapterInfo, types: &[DType]) -> Result<()> {
    if !(info.f64 && info.i64) && types.contains(&DType::F64) {
        return Err(Error::UnsupportedDtype(format!(
            "float64 on the GPU needs SHADER_F64 and SHADER_INT64 (the math polyfills use 64-bit bit access), which {} ({}) lacks",
            info.name, info.backend
        )));
    }
    if !info.i64 && types.contains(&DType::I64) {
        return Err(Error::UnsupportedDtype(format!(
            "int64 on the GPU needs SHADER_INT64, which {} ({}) lacks",
            info.name, info.backend
        )));
    }
    Ok(())
}

/// Threads per workgroup (1-D). The reduction tree in the shaders assumes this value.
pub const WORKGROUP: u32 = 256;
const MAX_GROUPS_X: u32 = 65_535;

/// One adapter as listed by [`adapters`].
#[derive(Debug, Clone)]
pub struct AdapterInfo {
    pub index: usize,
    pub name: String,
    pub backend: String,
    pub device_type: String,
    pub f64: bool,
    pub i64: bool,
    pub max_binding_size: u64,
}

/// A fault [`GpuBackend::inject_fault`] makes the backend report, for tests of error handling
/// and of the CPU fallback (issue 5). Not a stable API.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The driver rejects the shader: [`Error::Compile`].
    ShaderCompile,
    /// The device is lost: [`Error::DeviceLost`].
    DeviceLost,
    /// Allocation fails: [`Error::OutOfMemory`].
    OutOfMemory,
}

impl Fault {
    fn error(self) -> Error {
        match self {
            Fault::ShaderCompile => {
                Error::Compile("injected fault: shader compilation failed".into())
            }
            Fault::DeviceLost => Error::DeviceLost("injected fault".into()),
            Fault::OutOfMemory => Error::OutOfMemory("injected fault".into()),
        }
    }
}

/// Counters of the work a backend did (for tests and `--verbose` output).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GpuCounters {
    pub compilations: u64,
    pub cache_hits: u64,
    pub bytes_uploaded: u64,
    pub bytes_downloaded: u64,
    pub dispatches: u64,
    /// Pipelines dropped from the cache to keep it within its capacity.
    pub evictions: u64,
}

fn instance(backends: wgpu::Backends) -> wgpu::Instance {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
    desc.backends = backends;
    wgpu::Instance::new(desc)
}

/// Adapters, Vulkan first. GL only when nothing else exists (it has no f64, and prints errors
/// on headless machines). The instance is returned too: adapters must not outlive it.
fn sorted_adapters() -> (wgpu::Instance, Vec<wgpu::Adapter>) {
    let primary = wgpu::Backends::VULKAN | wgpu::Backends::METAL | wgpu::Backends::DX12;
    let mut inst = instance(primary);
    let mut list = pollster::block_on(inst.enumerate_adapters(primary));
    if list.is_empty() {
        inst = instance(wgpu::Backends::GL);
        list = pollster::block_on(inst.enumerate_adapters(wgpu::Backends::GL));
    }
    list.sort_by_key(|a| match a.get_info().backend {
        wgpu::Backend::Vulkan => 0,
        wgpu::Backend::Metal | wgpu::Backend::Dx12 => 1,
        _ => 2,
    });
    (inst, list)
}

fn describe(index: usize, a: &wgpu::Adapter) -> AdapterInfo {
    let info = a.get_info();
    let f = a.features();
    let l = a.limits();
    AdapterInfo {
        index,
        name: info.name,
        backend: format!("{:?}", info.backend),
        device_type: format!("{:?}", info.device_type),
        f64: f.contains(wgpu::Features::SHADER_F64),
        i64: f.contains(wgpu::Features::SHADER_INT64),
        max_binding_size: l.max_storage_buffer_binding_size.min(l.max_buffer_size),
    }
}

/// All adapters (Vulkan first), for `fusebox devices`. Never panics; empty when none.
pub fn adapters() -> Vec<AdapterInfo> {
    std::panic::catch_unwind(|| {
        let (_inst, list) = sorted_adapters();
        list.iter()
            .enumerate()
            .map(|(i, a)| describe(i, a))
            .collect()
    })
    .unwrap_or_default()
}

/// A compiled kernel: its pipeline and what the runtime needs to bind it.
pub struct GpuKernel {
    kernel: Kernel,
    pipeline: wgpu::ComputePipeline,
    layout: wgpu::BindGroupLayout,
    source: String,
}

impl GpuKernel {
    /// The WGSL text the pipeline was built from.
    pub fn source(&self) -> &str {
        &self.source
    }
    pub fn kernel(&self) -> &Kernel {
        &self.kernel
    }
}

impl std::fmt::Debug for GpuKernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GpuKernel({})", self.kernel)
    }
}

/// A pipeline with its bind group layout (the kernel shaders and the sum pass share this).
struct Pipe {
    pipeline: wgpu::ComputePipeline,
    layout: wgpu::BindGroupLayout,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    /// STORAGE | COPY_DST | COPY_SRC
    Storage,
    /// MAP_READ | COPY_DST
    Staging,
}

/// Buffers keyed by (kind, power-of-two size), reused across calls.
#[derive(Default)]
struct Pool {
    free: HashMap<(Kind, u64), Vec<wgpu::Buffer>>,
}

/// The GPU backend: one device and queue, a pipeline cache, a buffer pool.
pub struct GpuBackend {
    info: AdapterInfo,
    device: wgpu::Device,
    queue: wgpu::Queue,
    /// Bytes one storage binding may hold (the adapter's limit, or a smaller test override).
    binding_limit: AtomicU64,
    f32_builtins: std::sync::atomic::AtomicBool,
    /// Bounded LRU pipeline cache keyed by the WGSL source (see [`crate::cache`]).
    cache: KernelCache<String, Arc<GpuKernel>>,
    /// Faults to report from the next compilations (tests only; see [`Fault`]).
    faults: Mutex<Vec<Fault>>,
    sum_pipes: Mutex<HashMap<DType, Arc<Pipe>>>,
    pool: Mutex<Pool>,
    compilations: AtomicU64,
    cache_hits: AtomicU64,
    uploaded: AtomicU64,
    downloaded: AtomicU64,
    dispatches: AtomicU64,
    /// Device errors reported outside an error scope (kept, then returned by the next call).
    lost: Arc<Mutex<Option<String>>>,
}

fn storage_entry(binding: u32, read_only: bool) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Storage { read_only },
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        count: None,
    }
}

/// Element size of a dtype inside shaders (bool is a u32).
pub fn device_size(t: DType) -> usize {
    match t {
        DType::Bool => 4,
        t => t.size(),
    }
}

fn round_up(x: u64, to: u64) -> u64 {
    x.div_ceil(to) * to
}

impl GpuBackend {
    /// Open adapter `index` (as listed by [`adapters`]), requesting its own limits and the
    /// `SHADER_F64` / `SHADER_INT64` features when present.
    pub fn new(index: usize) -> Result<GpuBackend> {
        let (_inst, list) = sorted_adapters();
        if list.is_empty() {
            return Err(Error::Device("no GPU adapter found".into()));
        }
        let adapter = list.get(index).ok_or_else(|| {
            Error::Device(format!(
                "no GPU adapter with index {index} ({} found)",
                list.len()
            ))
        })?;
        let info = describe(index, adapter);
        let wanted = wgpu::Features::SHADER_F64 | wgpu::Features::SHADER_INT64;
        let desc = wgpu::DeviceDescriptor {
            label: Some("fusebox"),
            required_features: adapter.features() & wanted,
            required_limits: adapter.limits(),
            ..Default::default()
        };
        let (device, queue) = pollster::block_on(adapter.request_device(&desc))
            .map_err(|e| Error::Device(format!("cannot open {}: {e}", info.name)))?;
        let lost = Arc::new(Mutex::new(None));
        let sink = lost.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            if let Ok(mut s) = sink.lock() {
                s.get_or_insert_with(|| e.to_string());
            }
        }));
        Ok(GpuBackend {
            binding_limit: AtomicU64::new(info.max_binding_size),
            f32_builtins: std::sync::atomic::AtomicBool::new(false),
            info,
            device,
            queue,
            cache: KernelCache::new(crate::cache::default_capacity()),
            faults: Mutex::new(Vec::new()),
            sum_pipes: Mutex::new(HashMap::new()),
            pool: Mutex::new(Pool::default()),
            compilations: AtomicU64::new(0),
            cache_hits: AtomicU64::new(0),
            uploaded: AtomicU64::new(0),
            downloaded: AtomicU64::new(0),
            dispatches: AtomicU64::new(0),
            lost,
        })
    }

    pub fn info(&self) -> &AdapterInfo {
        &self.info
    }

    pub fn counters(&self) -> GpuCounters {
        GpuCounters {
            compilations: self.compilations.load(Ordering::Relaxed),
            cache_hits: self.cache_hits.load(Ordering::Relaxed),
            bytes_uploaded: self.uploaded.load(Ordering::Relaxed),
            bytes_downloaded: self.downloaded.load(Ordering::Relaxed),
            dispatches: self.dispatches.load(Ordering::Relaxed),
            evictions: self.cache.counters().evictions,
        }
    }

    /// Bound the pipeline cache to `kernels` entries (at least 1), evicting the least recently
    /// used beyond it. The default is [`crate::cache::default_capacity`].
    pub fn set_cache_capacity(&self, kernels: usize) {
        self.cache.set_capacity(kernels);
    }

    /// Pipelines currently cached.
    pub fn cached_kernels(&self) -> usize {
        self.cache.len()
    }

    /// Make the next call of [`GpuBackend::compile`] fail with `fault`'s error (queued: one
    /// call per injected fault). For tests of error reporting and of the CPU fallback.
    #[doc(hidden)]
    pub fn inject_fault(&self, fault: Fault) {
        self.faults
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(fault);
    }

    /// Compute f32 transcendentals with the WGSL built-ins even when f64 is available (to
    /// measure them). Affects later compilations only.
    #[doc(hidden)]
    pub fn set_f32_builtins(&self, on: bool) {
        self.f32_builtins.store(on, Ordering::Relaxed);
    }

    /// Pretend one storage binding holds at most `bytes` (at least 4 KiB), so that tests can
    /// exercise the chunked path on small arrays. `None` restores the adapter's limit.
    #[doc(hidden)]
    pub fn set_binding_limit(&self, bytes: Option<u64>) {
        let v = bytes.map_or(self.info.max_binding_size, |b| {
            b.clamp(4096, self.info.max_binding_size)
        });
        self.binding_limit.store(v, Ordering::Relaxed);
    }

    fn options(&self) -> wgsl::Options {
        wgsl::Options {
            f64: self.info.f64 && self.info.i64,
            i64: self.info.i64,
            f32_builtins: self.f32_builtins.load(Ordering::Relaxed),
        }
    }

    fn check_dtypes(&self, k: &Kernel) -> Result<()> {
        let mut types: Vec<DType> = k.inputs.clone();
        types.extend(k.insts.iter().map(|d| d.ty));
        if k.is_reduction() && !k.output_dtype().is_float() {
            types.push(DType::I64);
        }
        self.check_dtypes_of(&types)
    }

    fn check_dtypes_of(&self, types: &[DType]) -> Result<()> {
        check_capabilities(&self.info, types)
    }

    fn take_lost(&self) -> Result<()> {
        match self.lost.lock().ok().and_then(|mut s| s.take()) {
            Some(e) => Err(Error::Device(e)),
            None => Ok(()),
        }
    }

    /// Validate with naga, then build the pipeline inside an error scope.
    fn build_pipe(&self, source: &str, n_inputs: usize, label: &str) -> Result<Pipe> {
        wgsl::validate(source, self.options()).map_err(|e| Error::Compile(e.to_string()))?;
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = self
            .device
            .create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(label),
                source: wgpu::ShaderSource::Wgsl(source.into()),
            });
        let mut entries = vec![storage_entry(0, true), storage_entry(1, false)];
        for i in 0..n_inputs {
            entries.push(storage_entry(2 + i as u32, true));
        }
        let layout = self
            .device
            .create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some(label),
                entries: &entries,
            });
        let pl = self
            .device
            .create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some(label),
                bind_group_layouts: &[Some(&layout)],
                immediate_size: 0,
            });
        let pipeline = self
            .device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(label),
                layout: Some(&pl),
                module: &module,
                entry_point: Some("main"),
                compilation_options: Default::default(),
                cache: None,
            });
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(Error::Compile(format!("{label}: {e}")));
        }
        self.compilations.fetch_add(1, Ordering::Relaxed);
        Ok(Pipe { pipeline, layout })
    }

    /// WGSL generation + naga validation + pipeline creation, cached by shader hash.
    pub fn compile(&self, kernel: &Kernel) -> Result<Arc<GpuKernel>> {
        let injected = {
            let mut f = self.faults.lock().unwrap_or_else(|p| p.into_inner());
            (!f.is_empty()).then(|| f.remove(0))
        };
        if let Some(fault) = injected {
            return Err(fault.error());
        }
        kernel.verify()?;
        if kernel.outputs.len() != 1
            || matches!(kernel.output(), crate::kir::Output::Reduce { op, .. } if op != crate::ops::ReduceOp::Sum)
        {
            return Err(Error::Compile(
                "this backend does not compile multi-output kernels or reductions other than sum yet"
                    .into(),
            ));
        }
        self.check_dtypes(kernel)?;
        let source = wgsl::write_kernel_with(kernel, self.options())
            .map_err(|e| Error::Compile(e.to_string()))?;
        let mut h = std::collections::hash_map::DefaultHasher::new();
        source.hash(&mut h);
        let key = h.finish();
        // Threads asking for the same shader at once share one pipeline build.
        let (k, hit) = self.cache.get_or_compile(key, &source, || {
            let pipe = self.build_pipe(&source, kernel.inputs.len(), "fusebox kernel")?;
            Ok(Arc::new(GpuKernel {
                kernel: kernel.clone(),
                pipeline: pipe.pipeline,
                layout: pipe.layout,
                source: source.clone(),
            }))
        })?;
        if hit {
            self.cache_hits.fetch_add(1, Ordering::Relaxed);
        }
        // Float constants are not in the source (they travel in the parameter buffer), so
        // kernels that differ only in them share the pipeline; the returned kernel must carry
        // the caller's constants.
        if wgsl::const_words(&k.kernel) == wgsl::const_words(kernel) {
            return Ok(k);
        }
        Ok(Arc::new(GpuKernel {
            kernel: kernel.clone(),
            pipeline: k.pipeline.clone(),
            layout: k.layout.clone(),
            source: k.source.clone(),
        }))
    }

    fn sum_pipe(&self, t: DType) -> Result<Arc<Pipe>> {
        if let Some(p) = self.sum_pipes.lock().map_err(poisoned)?.get(&t) {
            return Ok(p.clone());
        }
        let src = wgsl::write_sum_pass(t).map_err(|e| Error::Compile(e.to_string()))?;
        let p = Arc::new(self.build_pipe(&src, 1, "fusebox sum pass")?);
        self.sum_pipes
            .lock()
            .map_err(poisoned)?
            .insert(t, p.clone());
        Ok(p)
    }

    fn acquire(&self, kind: Kind, size: u64) -> Result<wgpu::Buffer> {
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

    fn release(&self, kind: Kind, b: wgpu::Buffer) {
        if let Ok(mut p) = self.pool.lock() {
            let list = p.free.entry((kind, b.size())).or_default();
            // Keep a few of each size; drop the rest.
            if list.len() < 4 {
                list.push(b);
            }
        }
    }

    fn upload_bytes(&self, buf: &wgpu::Buffer, offset: u64, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        // write_buffer needs a multiple of 4 bytes; every device element is 4 or 8 bytes.
        self.queue.write_buffer(buf, offset, bytes);
        self.uploaded
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
    }

    /// Copy `size` bytes of `src` back to the host.
    fn download_buf(
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
            .map_err(|e| Error::Device(format!("poll: {e}")))?;
        rx.recv()
            .map_err(|_| Error::Device("buffer map callback never ran".into()))?
            .map_err(|e| Error::Device(format!("map: {e}")))?;
        let out = {
            let view = slice
                .get_mapped_range()
                .map_err(|e| Error::Device(format!("map: {e}")))?;
            view[..size as usize].to_vec()
        };
        staging.unmap();
        self.release(Kind::Staging, staging);
        self.downloaded.fetch_add(size, Ordering::Relaxed);
        self.take_lost()?;
        Ok(out)
    }

    /// 2-D grid for `groups` workgroups: (x, y) with x <= 65,535.
    fn grid(groups: u32) -> (u32, u32) {
        if groups <= MAX_GROUPS_X {
            (groups.max(1), 1)
        } else {
            (MAX_GROUPS_X, groups.div_ceil(MAX_GROUPS_X))
        }
    }

    /// Same contract as [`crate::cpu::CpuBackend::run_many`].
    pub fn run_many(
        &self,
        k: &GpuKernel,
        inputs: &[ArgView<'_>],
        shape: &[usize],
        axes: &[usize],
    ) -> Result<Vec<DynArray>> {
        k.kernel.check_axes(axes, shape.len())?;
        if k.kernel.is_reduction() && axes.len() != shape.len() {
            return Err(Error::Compile(
                "the GPU backend does not reduce along some axes yet".into(),
            ));
        }
        Ok(vec![self.run(k, inputs, shape)?])
    }

    /// Same contract as [`crate::cpu::CpuBackend::run_many`], on device arrays; the results
    /// stay on the device.
    pub fn run_resident_many(
        &self,
        k: &GpuKernel,
        inputs: &[&GpuArray],
        shape: &[usize],
        axes: &[usize],
    ) -> Result<Vec<GpuArray>> {
        k.kernel.check_axes(axes, shape.len())?;
        if k.kernel.is_reduction() && axes.len() != shape.len() {
            return Err(Error::Compile(
                "the GPU backend does not reduce along some axes yet".into(),
            ));
        }
        Ok(vec![self.run_resident(k, inputs, shape)?])
    }

    /// Same contract as the CPU backend: inputs broadcast to `out_shape` (any strides);
    /// `Store` -> fresh C-contiguous array of `out_shape`; `Reduce(Sum)` -> 0-d array.
    pub fn run(
        &self,
        k: &GpuKernel,
        inputs: &[ArgView<'_>],
        out_shape: &[usize],
    ) -> Result<DynArray> {
        self.take_lost()?;
        let kern = &k.kernel;
        kern.check_args(inputs, out_shape)?;
        let out_t = kern.output_dtype();
        let n = crate::array::checked_len(out_shape, device_size(out_t))?;
        if n as u64 >= u32::MAX as u64 {
            return Err(Error::TooLarge(format!(
                "{n} elements: the GPU backend indexes with 32-bit integers"
            )));
        }
        let hosts: Vec<HostInput> = inputs.iter().map(HostInput::new).collect();
        let result = self.run_chunks(k, &hosts, out_shape, n);
        self.take_lost()?;
        result
    }

    fn run_chunks(
        &self,
        k: &GpuKernel,
        hosts: &[HostInput],
        out_shape: &[usize],
        n: usize,
    ) -> Result<DynArray> {
        let kern = &k.kernel;
        let out_t = kern.output_dtype();
        let reduce = matches!(kern.output(), Output::Reduce { .. });
        let limit = self.binding_limit.load(Ordering::Relaxed);
        // Inputs that fit one binding are uploaded whole; the others are streamed.
        let streamed: Vec<bool> = hosts.iter().map(|h| h.bytes.len() as u64 > limit).collect();
        let mut widest = if reduce { 0 } else { device_size(out_t) as u64 };
        for (h, s) in hosts.iter().zip(&streamed) {
            if *s {
                widest = widest.max(device_size(h.dtype) as u64);
            }
        }
        // Reductions over small inputs (widest == 0): bounded only by 32-bit indexing.
        let c = limit.checked_div(widest).unwrap_or(1u64 << 31);
        let chunk = (c - c % WORKGROUP as u64).max(WORKGROUP as u64) as usize;

        if n == 0 {
            return Ok(match (reduce, out_t) {
                (true, t) => zero_scalar(t),
                (false, t) => empty_array(t, out_shape),
            });
        }

        let all_flat = hosts
            .iter()
            .zip(&streamed)
            .all(|(h, s)| *s || h.shape == out_shape);
        // With every input flat the shader needs no multi-index: pass no dimensions at all.
        let ndim = if all_flat { 0 } else { out_shape.len() };
        let shape_p: &[usize] = if all_flat { &[] } else { out_shape };
        // Whole inputs.
        let mut bound: Vec<Option<wgpu::Buffer>> = Vec::new();
        for (h, s) in hosts.iter().zip(&streamed) {
            if *s {
                bound.push(None);
            } else {
                let b = self.acquire(Kind::Storage, round_up(h.bytes.len().max(4) as u64, 4))?;
                self.upload_bytes(&b, 0, &h.bytes);
                bound.push(Some(b));
            }
        }
        let mut out_bytes: Vec<u8> = Vec::new();
        let mut chunk_sums: Vec<wgpu::Buffer> = Vec::new();
        let osz = device_size(out_t);
        let mut start = 0usize;
        while start < n {
            let len = chunk.min(n - start);
            // Parameters: n, start, row, ndim, 1, shape, then per input: flag, base, strides, then
            // the float constants.
            let groups = (len as u32).div_ceil(WORKGROUP);
            let (gx, gy) = Self::grid(groups);
            let mut p: Vec<u32> = vec![len as u32, start as u32, gx * WORKGROUP, ndim as u32, 1];
            p.extend(shape_p.iter().map(|&d| d as u32));
            let mut stream_bufs: Vec<Option<wgpu::Buffer>> = Vec::new();
            for (i, h) in hosts.iter().enumerate() {
                if streamed[i] {
                    p.extend([1, 0]);
                    p.extend(std::iter::repeat_n(0, ndim));
                    let bytes = h.chunk_bytes(out_shape, start, len)?;
                    let b = self.acquire(Kind::Storage, round_up(bytes.len() as u64, 4))?;
                    self.upload_bytes(&b, 0, &bytes);
                    stream_bufs.push(Some(b));
                } else {
                    let flat = h.shape == out_shape;
                    p.extend([if flat { 2 } else { 0 }, 0]);
                    if !all_flat {
                        let st = broadcast_strides(&h.shape, &h.c_strides, out_shape);
                        p.extend(st.iter().map(|&s| s as u32));
                    }
                    stream_bufs.push(None);
                }
            }
            p.extend(wgsl::const_words(kern));
            let params = self.acquire(Kind::Storage, round_up(p.len() as u64 * 4, 4))?;
            // Parameters are not counted as uploaded data.
            self.queue
                .write_buffer(&params, 0, bytemuck::cast_slice(&p));
            let out_len = if reduce {
                groups as u64 * osz as u64
            } else {
                len as u64 * osz as u64
            };
            let out = self.acquire(Kind::Storage, round_up(out_len, 4))?;
            let mut entries = vec![
                wgpu::BindGroupEntry {
                    binding: 0,
                    resource: params.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 1,
                    resource: out.as_entire_binding(),
                },
            ];
            for i in 0..hosts.len() {
                let b = bound[i]
                    .as_ref()
                    .or(stream_bufs[i].as_ref())
                    .ok_or_else(|| Error::Device("internal: input buffer missing".into()))?;
                entries.push(wgpu::BindGroupEntry {
                    binding: 2 + i as u32,
                    resource: b.as_entire_binding(),
                });
            }
            let enc = self.encode_dispatch(k, &entries, (gx, gy), "fusebox kernel");
            if reduce {
                let (enc, total, used) = self.reduce_passes(enc, out, groups as usize, out_t)?;
                // Keep the chunk's total on the device until all chunks are done.
                self.queue.submit([enc.finish()]);
                for b in used {
                    self.release(Kind::Storage, b);
                }
                chunk_sums.push(total);
            } else {
                let bytes = self.download_buf(enc, &out, len as u64 * osz as u64)?;
                if out_bytes.is_empty() {
                    out_bytes.reserve_exact(n * osz);
                }
                out_bytes.extend_from_slice(&bytes);
                self.release(Kind::Storage, out);
            }
            self.release(Kind::Storage, params);
            for b in stream_bufs.into_iter().flatten() {
                self.release(Kind::Storage, b);
            }
            start += len;
        }
        for b in bound.into_iter().flatten() {
            self.release(Kind::Storage, b);
        }
        if reduce {
            // Gather the chunk totals into one buffer and reduce them on the device too.
            let all = self.acquire(Kind::Storage, round_up((chunk_sums.len() * osz) as u64, 4))?;
            let mut enc = self.device.create_command_encoder(&Default::default());
            for (i, b) in chunk_sums.iter().enumerate() {
                enc.copy_buffer_to_buffer(b, 0, &all, (i * osz) as u64, osz as u64);
            }
            let (enc, total, used) = self.reduce_passes(enc, all, chunk_sums.len(), out_t)?;
            let bytes = self.download_buf(enc, &total, osz as u64)?;
            for b in chunk_sums.into_iter().chain(used) {
                self.release(Kind::Storage, b);
            }
            self.release(Kind::Storage, total);
            return bytes_to_array(out_t, &bytes, &[]);
        }
        bytes_to_array(out_t, &out_bytes, out_shape)
    }

    /// Encode sum passes over `count` values in `buf` until one value is left; returns the
    /// buffer holding it at offset 0 (`buf` itself is released or returned).
    fn reduce_passes(
        &self,
        mut enc: wgpu::CommandEncoder,
        buf: wgpu::Buffer,
        count: usize,
        t: DType,
    ) -> Result<(wgpu::CommandEncoder, wgpu::Buffer, Vec<wgpu::Buffer>)> {
        let mut cur = buf;
        let mut count = count;
        let osz = device_size(t) as u64;
        let pipe = if count > 1 {
            Some(self.sum_pipe(t)?)
        } else {
            None
        };
        let mut keep: Vec<wgpu::Buffer> = Vec::new();
        while count > 1 {
            let pipe = pipe
                .as_ref()
                .ok_or_else(|| Error::Device("internal: no sum pipeline".into()))?;
            let groups = (count as u32).div_ceil(WORKGROUP);
            let (gx, gy) = Self::grid(groups);
            let p: [u32; 4] = [count as u32, 0, gx * WORKGROUP, 0];
            let params = self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("fusebox sum params"),
                size: 16,
                usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: true,
            });
            params
                .slice(..)
                .get_mapped_range_mut()
                .map_err(|e| Error::Device(format!("map: {e}")))?
                .copy_from_slice(bytemuck::cast_slice(&p));
            params.unmap();
            let next = self.acquire(Kind::Storage, round_up(groups as u64 * osz, 4))?;
            let bg = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("fusebox sum pass"),
                layout: &pipe.layout,
                entries: &[
                    wgpu::BindGroupEntry {
                        binding: 0,
                        resource: params.as_entire_binding(),
                    },
                    wgpu::BindGroupEntry {
                        binding: 1,
                        resource: next.as_entire_binding(),
                    },
                    wgpu::BindGroupEntry {
                        binding: 2,
                        resource: cur.as_entire_binding(),
                    },
                ],
            });
            {
                let mut pass = enc.begin_compute_pass(&Default::default());
                pass.set_pipeline(&pipe.pipeline);
                pass.set_bind_group(0, &bg, &[]);
                pass.dispatch_workgroups(gx, gy, 1);
            }
            self.dispatches.fetch_add(1, Ordering::Relaxed);
            // The pass reads `cur` when the encoder runs: release it only after submission.
            keep.push(cur);
            cur = next;
            count = groups as usize;
        }
        // Buffers read by `enc` go back to the pool only after it is submitted (by the caller):
        // another thread could otherwise write into them before this pass reads them.
        Ok((enc, cur, keep))
    }
}

/// An array resident on the device: C-contiguous, in device layout (bool as u32).
pub struct GpuArray {
    buffer: wgpu::Buffer,
    dtype: DType,
    shape: Vec<usize>,
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
    fn resident_buffer(&self, bytes: u64) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("fusebox resident"),
            size: round_up(bytes.max(4), 4),
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_DST
                | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        })
    }

    fn check_resident_size(&self, bytes: u64) -> Result<()> {
        let limit = self.binding_limit.load(Ordering::Relaxed);
        if bytes > limit {
            return Err(Error::TooLarge(format!(
                "{bytes} bytes: a device-resident array must fit one storage binding ({limit} bytes); \
                 use GpuBackend::run, which streams larger arrays"
            )));
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

    /// A command encoder holding one dispatch of `k` over the `grid` of workgroups, with
    /// `entries` bound (shared by the host and the resident paths).
    fn encode_dispatch(
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

    /// Run `k` on device arrays (broadcast to `out_shape`); the result stays on the device.
    /// Nothing is copied to or from the host but the small parameter block.
    pub fn run_resident(
        &self,
        k: &GpuKernel,
        inputs: &[&GpuArray],
        out_shape: &[usize],
    ) -> Result<GpuArray> {
        self.take_lost()?;
        let kern = &k.kernel;
        if inputs.len() != kern.inputs.len() {
            return Err(Error::Argument(format!(
                "kernel takes {} inputs, {} given",
                kern.inputs.len(),
                inputs.len()
            )));
        }
        for (i, (a, t)) in inputs.iter().zip(&kern.inputs).enumerate() {
            if a.dtype != *t {
                return Err(Error::Argument(format!(
                    "input {i} has dtype {}, kernel expects {t}",
                    a.dtype
                )));
            }
            let s = &a.shape;
            let ok = s.len() <= out_shape.len()
                && s.iter()
                    .rev()
                    .zip(out_shape.iter().rev())
                    .all(|(&x, &o)| x == o || x == 1);
            if !ok {
                return Err(Error::ShapeMismatch {
                    lhs: s.clone(),
                    rhs: out_shape.to_vec(),
                });
            }
        }
        let out_t = kern.output_dtype();
        let reduce = kern.is_reduction();
        let osz = device_size(out_t);
        let n = crate::array::checked_len(out_shape, osz)?;
        if n as u64 >= u32::MAX as u64 {
            return Err(Error::TooLarge(format!(
                "{n} elements: the GPU backend indexes with 32-bit integers"
            )));
        }
        let result_shape: Vec<usize> = if reduce { vec![] } else { out_shape.to_vec() };
        if !reduce {
            self.check_resident_size((n * osz) as u64)?;
        }
        if n == 0 {
            let buffer = self.resident_buffer(osz as u64);
            if reduce {
                // Sum of nothing: zero.
                self.queue
                    .write_buffer(&buffer, 0, &vec![0u8; round_up(osz as u64, 4) as usize]);
            }
            return Ok(GpuArray {
                buffer,
                dtype: out_t,
                shape: result_shape,
            });
        }
        let ndim = out_shape.len();
        let groups = (n as u32).div_ceil(WORKGROUP);
        let (gx, gy) = Self::grid(groups);
        let mut p: Vec<u32> = vec![n as u32, 0, gx * WORKGROUP, ndim as u32, 1];
        p.extend(out_shape.iter().map(|&d| d as u32));
        for a in inputs {
            p.extend([if a.shape == out_shape { 2 } else { 0 }, 0]);
            let st = broadcast_strides(&a.shape, &c_strides(&a.shape), out_shape);
            p.extend(st.iter().map(|&s| s as u32));
        }
        p.extend(wgsl::const_words(kern));
        let params = self.acquire(Kind::Storage, round_up(p.len() as u64 * 4, 4))?;
        self.queue
            .write_buffer(&params, 0, bytemuck::cast_slice(&p));
        let out = if reduce {
            self.acquire(Kind::Storage, round_up(groups as u64 * osz as u64, 4))?
        } else {
            self.resident_buffer((n * osz) as u64)
        };
        let mut entries = vec![
            wgpu::BindGroupEntry {
                binding: 0,
                resource: params.as_entire_binding(),
            },
            wgpu::BindGroupEntry {
                binding: 1,
                resource: out.as_entire_binding(),
            },
        ];
        for (i, a) in inputs.iter().enumerate() {
            entries.push(wgpu::BindGroupEntry {
                binding: 2 + i as u32,
                resource: a.buffer.as_entire_binding(),
            });
        }
        let enc = self.encode_dispatch(k, &entries, (gx, gy), "fusebox resident kernel");
        let (enc, out, used) = if reduce {
            self.reduce_passes(enc, out, groups as usize, out_t)?
        } else {
            (enc, out, Vec::new())
        };
        self.queue.submit([enc.finish()]);
        self.release(Kind::Storage, params);
        for b in used {
            self.release(Kind::Storage, b);
        }
        self.take_lost()?;
        Ok(GpuArray {
            buffer: out,
            dtype: out_t,
            shape: result_shape,
        })
    }
}

fn poisoned<T>(_: std::sync::PoisonError<T>) -> Error {
    Error::Device("GPU backend lock poisoned by an earlier panic".into())
}

fn zero_scalar(t: DType) -> DynArray {
    let shape = IxDyn(&[]);
    match t {
        DType::F32 => ArrayD::<f32>::zeros(shape).into(),
        DType::F64 => ArrayD::<f64>::zeros(shape).into(),
        DType::I32 => ArrayD::<i32>::zeros(shape).into(),
        DType::Bool => ArrayD::<bool>::from_elem(shape, false).into(),
        DType::I64 => ArrayD::<i64>::zeros(shape).into(),
    }
}

fn empty_array(t: DType, shape: &[usize]) -> DynArray {
    match bytes_to_array(t, &[], shape) {
        Ok(a) => a,
        Err(_) => zero_scalar(t),
    }
}

fn bytes_to_array(t: DType, bytes: &[u8], shape: &[usize]) -> Result<DynArray> {
    fn typed<T: bytemuck::Pod + crate::array::Element>(
        bytes: &[u8],
        shape: &[usize],
    ) -> Result<DynArray> {
        let v: Vec<T> = bytemuck::pod_collect_to_vec(bytes);
        Ok(ArrayD::from_shape_vec(IxDyn(shape), v)
            .map_err(|e| Error::Device(format!("read-back of {shape:?}: {e}")))?
            .into())
    }
    match t {
        DType::F32 => typed::<f32>(bytes, shape),
        DType::F64 => typed::<f64>(bytes, shape),
        DType::I32 => typed::<i32>(bytes, shape),
        DType::I64 => typed::<i64>(bytes, shape),
        DType::Bool => {
            let v: Vec<u32> = bytemuck::pod_collect_to_vec(bytes);
            let b: Vec<bool> = v.into_iter().map(|x| x != 0).collect();
            Ok(ArrayD::from_shape_vec(IxDyn(shape), b)
                .map_err(|e| Error::Device(format!("read-back of {shape:?}: {e}")))?
                .into())
        }
    }
}

/// An input on the host, C-contiguous in its own shape, as device bytes (bool -> u32).
struct HostInput {
    dtype: DType,
    shape: Vec<usize>,
    c_strides: Vec<isize>,
    bytes: Vec<u8>,
}

fn c_strides(shape: &[usize]) -> Vec<isize> {
    let mut s = vec![0isize; shape.len()];
    let mut acc = 1isize;
    for i in (0..shape.len()).rev() {
        s[i] = acc;
        acc *= shape[i].max(1) as isize;
    }
    s
}

impl HostInput {
    fn new(a: &ArgView<'_>) -> HostInput {
        fn pod<T: bytemuck::Pod + Clone>(v: &ndarray::ArrayViewD<'_, T>) -> Vec<u8> {
            match v.as_slice() {
                Some(s) => bytemuck::cast_slice(s).to_vec(),
                None => {
                    let c = v.as_standard_layout();
                    let v: Vec<T> = c.iter().cloned().collect();
                    bytemuck::cast_slice(&v).to_vec()
                }
            }
        }
        let bytes = match a {
            ArgView::F32(v) => pod(v),
            ArgView::F64(v) => pod(v),
            ArgView::I32(v) => pod(v),
            ArgView::I64(v) => pod(v),
            ArgView::Bool(v) => {
                let u: Vec<u32> = v.iter().map(|&b| b as u32).collect();
                // iter() is in logical (C) order whatever the strides.
                bytemuck::cast_slice(&u).to_vec()
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
    /// to `out_shape` (a plain slice when the shapes agree).
    fn chunk_bytes(&self, out_shape: &[usize], start: usize, len: usize) -> Result<Vec<u8>> {
        let sz = device_size(self.dtype);
        if self.shape == out_shape {
            return Ok(self.bytes[start * sz..(start + len) * sz].to_vec());
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
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_respects_the_dimension_limit() {
        assert_eq!(GpuBackend::grid(1), (1, 1));
        assert_eq!(GpuBackend::grid(65_535), (65_535, 1));
        let (x, y) = GpuBackend::grid(200_000);
        assert!(x <= 65_535 && x as u64 * y as u64 >= 200_000);
    }

    #[test]
    fn adapters_never_panics() {
        let list = adapters();
        for (i, a) in list.iter().enumerate() {
            assert_eq!(a.index, i);
        }
    }
}

#[cfg(test)]
mod capability_tests {
    use super::*;

    fn adapter(f64: bool, i64: bool) -> AdapterInfo {
        AdapterInfo {
            index: 0,
            name: "test adapter".into(),
            backend: "Gl".into(),
            device_type: "Cpu".into(),
            f64,
            i64,
            max_binding_size: 1 << 27,
        }
    }

    #[test]
    fn dtypes_the_adapter_lacks_are_refused_with_the_missing_feature() {
        let none = adapter(false, false);
        let e = check_capabilities(&none, &[DType::F32, DType::F64]).unwrap_err();
        assert!(
            matches!(&e, Error::UnsupportedDtype(m) if m.contains("SHADER_F64")),
            "{e}"
        );
        let e = check_capabilities(&none, &[DType::I64]).unwrap_err();
        assert!(
            matches!(&e, Error::UnsupportedDtype(m) if m.contains("SHADER_INT64")),
            "{e}"
        );
        assert!(check_capabilities(&none, &[DType::F32, DType::I32, DType::Bool]).is_ok());
        // f64 needs both features (the polyfills use 64-bit integer bit access).
        assert!(check_capabilities(&adapter(true, false), &[DType::F64]).is_err());
        assert!(check_capabilities(&adapter(true, true), &[DType::F64, DType::I64]).is_ok());
    }
}
