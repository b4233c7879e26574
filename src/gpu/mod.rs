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
//! Kernels may have several outputs (one storage buffer each): stores, or reductions
//! ([`GpuBackend::run_many`] with the reduced axes). A reduction sees the iteration space as
//! `[kept..., reduced...]` (adjacent dimensions merged where every input allows it, so a
//! contiguous input is read with one stride): a first pass runs the fused element-wise body and
//! writes one partial result per workgroup and output element; combine passes reduce the
//! partials (`[groups, kept]`, the reduced axis outer) until one group is left. A workgroup's
//! 256 threads are laid out along the kept and reduced axes so that adjacent threads read
//! adjacent addresses: when the innermost axis is reduced, a row's values go to adjacent
//! threads (one or a few rows per workgroup); when it is kept, adjacent threads take adjacent
//! output elements and loop over the reduced axis. Each thread combines at most 16 (32 with few
//! reduced threads) values in sequence, then a tree combines the threads, so float sums are
//! pairwise-like (an f32 sum of 1e8 values stays within 1e-6 of the f64 sum;
//! results agree with NumPy to rounding, not bit for bit); integer sums and products wrap
//! exactly. Float `min`/`max` and `argmin`/`argmax` carry each value's position, so ties
//! (`0.0` vs `-0.0`: the later value for min/max, the first position for arg*) and NaNs (the
//! first NaN) resolve exactly as NumPy's C-order fold, whatever order the tree combines in;
//! positions are 32-bit and written as int64. Empty reductions are answered on the host
//! (identities; NumPy's error for min/max/argmin/argmax).
//!
//! The tree, in the first pass and in the combine passes: where the adapter has
//! `Features::SUBGROUP` (requested at device creation only then), its first levels are a
//! butterfly of `subgroupShuffleXor` within each subgroup, combining with the same step as the
//! shared-memory levels (so the NaN, zero, tie and position rules, integer wrap and bool
//! any/all are those above, and sums stay pairwise); the shared-memory tree takes over at the
//! stride one subgroup covers. No subgroup size is assumed: `subgroup_size` is read at run time
//! (any power of two up to 128 works; lavapipe has 8, real GPUs 32 or 64), and the masks follow
//! the thread layout (for kept-axis-fast layouts a subgroup holds several output columns and
//! only the reduced-axis lanes are combined). Every dtype uses them: 32-bit values (f32, i32,
//! bool as u32, positions) are shuffled directly, 64-bit ones (f64, i64, and the i64
//! accumulators of integer sums) as two u32 halves, since WGSL promises subgroup operations on
//! 32-bit types only. Each workgroup first checks that its subgroups are full, of a power-of-two
//! size and laid out along `local_invocation_index` (Vulkan promises neither, and wgpu allows
//! varying subgroup sizes); where not, that workgroup uses the shared-memory tree alone, as it
//! does on adapters without subgroups. `FUSEBOX_GPU_SUBGROUPS=0` (read when a backend opens) or
//! `GpuBackend::set_subgroups` (test support) turns subgroups off; naga validates with the subgroup
//! capability only the shaders that use it (reductions; element-wise kernels never do).
//!
//! Full reductions whose inputs exceed one binding stream them in chunks of whole segments,
//! each chunk writing its partials at its own offset before the combine passes; a reduction
//! along some axes refuses inputs larger than one binding ([`Error::TooLarge`]).
//!
//! dtypes: bool is stored as `u32` in shaders and converted at the host boundary; f64 needs
//! `SHADER_F64`, i64 (and integer sums, which accumulate in i64) `SHADER_INT64`; otherwise
//! [`GpuBackend::compile`] returns [`Error::UnsupportedDtype`].
//!
//! Math functions: the shaders run the kernel-IR math library's expansions ([`wgsl::lower`]),
//! the CPU JIT's algorithms, in the kernel's own float type; see [`wgsl`] for the measured
//! CPU-GPU agreement (at most 1 ULP for every function, bit for bit for `+ - * /`) and the
//! ULP bounds against glibc.
#[cfg(test)]
mod agreement;
pub mod wgsl;

use crate::array::{broadcast_strides, ArgView, DynArray};
use crate::cache::KernelCache;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::kir::{Const, Kernel, Output};
use crate::ops::ReduceOp;
use ndarray::{ArrayD, IxDyn};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Refuse dtypes the adapter cannot run, with a message naming the missing feature.
fn check_capabilities(info: &AdapterInfo, types: &[DType]) -> Result<()> {
    if !(info.f64 && info.i64) && types.contains(&DType::F64) {
        return Err(Error::UnsupportedDtype {
            dtype: DType::F64.to_string(),
            context: format!(
                "float64 on the GPU needs SHADER_F64 and SHADER_INT64 (the float64 math expansions use 64-bit bit access), which {} ({}) lacks",
                info.name, info.backend
            ),
        });
    }
    if !info.i64 && types.contains(&DType::I64) {
        return Err(Error::UnsupportedDtype {
            dtype: DType::I64.to_string(),
            context: format!(
                "int64 on the GPU needs SHADER_INT64, which {} ({}) lacks",
                info.name, info.backend
            ),
        });
    }
    Ok(())
}

/// `FUSEBOX_GPU_SUBGROUPS=0` turns subgroup operations off (any other value, or none, leaves
/// them on where the adapter has them).
fn subgroups_from_env() -> bool {
    std::env::var("FUSEBOX_GPU_SUBGROUPS").map_or(true, |v| v.trim() != "0")
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
    /// Driver name and version (keys the cost model's calibration).
    pub driver: String,
    pub f64: bool,
    pub i64: bool,
    /// `Features::SUBGROUP` (the reductions' first tree levels use subgroup shuffles).
    pub subgroups: bool,
    pub max_binding_size: u64,
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
        driver: format!("{} {}", info.driver, info.driver_info),
        f64: f.contains(wgpu::Features::SHADER_F64),
        i64: f.contains(wgpu::Features::SHADER_INT64),
        subgroups: f.contains(wgpu::Features::SUBGROUP),
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
    /// `kernel` with its math functions expanded ([`wgsl::lower`]): what the shaders compute,
    /// and so where their float constants come from.
    lowered: Kernel,
    pipeline: wgpu::ComputePipeline,
    layout: wgpu::BindGroupLayout,
    source: String,
    /// For reductions: the pass that combines partial results.
    combine: Option<Pipe>,
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

/// A pipeline with its bind group layout.
#[derive(Clone)]
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
    /// Whether reductions use subgroup operations (the adapter has them, and neither
    /// `FUSEBOX_GPU_SUBGROUPS=0` nor [`GpuBackend::set_subgroups`] turned them off).
    subgroups: std::sync::atomic::AtomicBool,
    /// Bounded LRU pipeline cache keyed by the WGSL sources (see [`crate::cache`]).
    cache: KernelCache<String, Arc<GpuKernel>>,
    pool: Mutex<Pool>,
    compilations: AtomicU64,
    cache_hits: AtomicU64,
    uploaded: AtomicU64,
    downloaded: AtomicU64,
    dispatches: AtomicU64,
    /// Device errors reported outside an error scope (kept, then returned by the next call).
    lost: Arc<Mutex<Option<String>>>,
    /// A fault the next calls report (tests of the session's fallback).
    fault: Mutex<Option<Fault>>,
}

/// A device failure to simulate ([`GpuBackend::inject_fault`]), for tests of what callers do
/// when the GPU fails.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// `compile` fails as a shader the driver rejects would.
    Compile,
    /// `run` and `run_resident` fail as on a lost device.
    DeviceLost,
    /// `run` and `run_resident` fail as when a buffer cannot be allocated.
    OutOfMemory,
}

/// Whether adapter `info` can run kernel `k` at all (its dtypes; 32-bit indexing of `n`
/// elements). The cost model asks this before it counts the GPU as a candidate; see also
/// [`fits_axis_reduction`].
pub fn supports(info: &AdapterInfo, k: &Kernel, n: usize) -> bool {
    let mut types: Vec<DType> = k.inputs.clone();
    types.extend(k.insts.iter().map(|d| d.ty));
    if k.is_reduction() && !k.output_dtype().is_float() {
        types.push(DType::I64);
    }
    check_capabilities(info, &types).is_ok() && (n as u64) < u32::MAX as u64
}

/// Whether a reduction along some (not all) axes can read its inputs: only full reductions
/// stream inputs larger than one storage binding.
pub fn fits_axis_reduction(info: &AdapterInfo, input_lens: &[(DType, usize)]) -> bool {
    input_lens
        .iter()
        .all(|(t, n)| (device_size(*t) as u64).saturating_mul(*n as u64) <= info.max_binding_size)
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

pub use crate::target::device_size;

fn round_up(x: u64, to: u64) -> u64 {
    x.div_ceil(to) * to
}

impl GpuBackend {
    /// Open adapter `index` (as listed by [`adapters`]), requesting its own limits and the
    /// `SHADER_F64` / `SHADER_INT64` features when present.
    pub fn new(index: usize) -> Result<GpuBackend> {
        let (_inst, list) = sorted_adapters();
        if list.is_empty() {
            return Err(Error::Device {
                message: "no GPU adapter found".into(),
            });
        }
        let adapter = list.get(index).ok_or_else(|| Error::Device {
            message: format!("no GPU adapter with index {index} ({} found)", list.len()),
        })?;
        let info = describe(index, adapter);
        // SUBGROUP only where the adapter offers it (requesting it elsewhere fails).
        let wanted =
            wgpu::Features::SHADER_F64 | wgpu::Features::SHADER_INT64 | wgpu::Features::SUBGROUP;
        let desc = wgpu::DeviceDescriptor {
            label: Some("fusebox"),
            required_features: adapter.features() & wanted,
            required_limits: adapter.limits(),
            ..Default::default()
        };
        let (device, queue) =
            pollster::block_on(adapter.request_device(&desc)).map_err(|e| Error::Device {
                message: format!("cannot open {}: {e}", info.name),
            })?;
        let lost = Arc::new(Mutex::new(None));
        let sink = lost.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            if let Ok(mut s) = sink.lock() {
                s.get_or_insert_with(|| e.to_string());
            }
        }));
        Ok(GpuBackend {
            binding_limit: AtomicU64::new(info.max_binding_size),
            subgroups: std::sync::atomic::AtomicBool::new(info.subgroups && subgroups_from_env()),
            info,
            device,
            queue,
            cache: KernelCache::new(crate::cache::default_capacity()),
            pool: Mutex::new(Pool::default()),
            compilations: AtomicU64::new(0),
            cache_hits: AtomicU64::new(0),
            uploaded: AtomicU64::new(0),
            downloaded: AtomicU64::new(0),
            dispatches: AtomicU64::new(0),
            lost,
            fault: Mutex::new(None),
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

    /// Use subgroup operations in the reduction shaders (`true` has no effect on an adapter
    /// without `SUBGROUP`), so that tests can compare both paths on one adapter. Affects later
    /// compilations only (the shaders differ, so they get their own pipelines).
    #[doc(hidden)]
    pub fn set_subgroups(&self, on: bool) {
        self.subgroups
            .store(on && self.info.subgroups, Ordering::Relaxed);
    }

    /// Whether reduction shaders compiled now use subgroup operations.
    pub fn subgroups(&self) -> bool {
        self.subgroups.load(Ordering::Relaxed)
    }

    /// Run the reduction shaders' subgroup layout check ([`wgsl::subgroup_probe`]) on `groups`
    /// workgroups: per invocation, the subgroup size where subgroups are laid out as the
    /// subgroup levels need, 0 where a workgroup would fall back to the shared-memory tree.
    /// `None` without subgroups. Test support.
    #[doc(hidden)]
    pub fn probe_subgroup_layout(&self, groups: u32) -> Result<Option<Vec<u32>>> {
        if !self.info.subgroups {
            return Ok(None);
        }
        let opts = wgsl::Options {
            subgroups: true,
            ..Default::default()
        };
        let pipe = self.build_pipe(
            &wgsl::subgroup_probe(),
            opts,
            1,
            0,
            "fusebox subgroup probe",
        )?;
        let size = groups as u64 * WORKGROUP as u64 * 4;
        let params = self.acquire(Kind::Storage, 4)?;
        self.upload_bytes(&params, 0, &[0; 4]);
        let out = self.acquire(Kind::Storage, size)?;
        let mut enc = self.device.create_command_encoder(&Default::default());
        {
            let bg = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("fusebox subgroup probe"),
                layout: &pipe.layout,
                entries: &[
                    wgpu::BindGroupEntry {
                        binding: 0,
                        resource: params.as_entire_binding(),
                    },
                    wgpu::BindGroupEntry {
                        binding: 1,
                        resource: out.as_entire_binding(),
                    },
                ],
            });
            let mut pass = enc.begin_compute_pass(&Default::default());
            pass.set_pipeline(&pipe.pipeline);
            pass.set_bind_group(0, &bg, &[]);
            pass.dispatch_workgroups(groups, 1, 1);
        }
        let bytes = self.download_buf(enc, &out, size)?;
        self.release(Kind::Storage, params);
        self.release(Kind::Storage, out);
        Ok(Some(
            bytes
                .chunks_exact(4)
                .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        ))
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

    /// Make later calls fail as the device would (`None` clears it). Test support.
    #[doc(hidden)]
    pub fn inject_fault(&self, f: Option<Fault>) {
        if let Ok(mut g) = self.fault.lock() {
            *g = f;
        }
    }

    /// The injected fault, as the error the real failure would give.
    fn injected(&self, compile: bool) -> Result<()> {
        match (self.fault.lock().ok().and_then(|g| *g), compile) {
            (Some(Fault::Compile), true) => Err(Error::Compile {
                message: "injected fault: shader rejected".into(),
            }),
            (Some(Fault::DeviceLost), false) => Err(Error::DeviceLost {
                message: "injected fault".into(),
            }),
            (Some(Fault::OutOfMemory), false) => Err(Error::OutOfMemory {
                message: "injected fault".into(),
            }),
            _ => Ok(()),
        }
    }

    /// Whether [`GpuBackend::compile`] would answer `kernel` from its cache (no compilation).
    pub fn is_cached(&self, kernel: &Kernel) -> bool {
        match self.cache_key(kernel) {
            Ok((hash, full)) => self.cache.contains(hash, &full),
            Err(_) => false,
        }
    }

    /// The pipeline cache's key for `kernel`: a hash and the full text of its shaders.
    fn cache_key(&self, kernel: &Kernel) -> Result<(u64, String)> {
        let err = |e: wgsl::WgslError| Error::Compile {
            message: e.to_string(),
        };
        let source = wgsl::write_kernel_with(kernel, self.options()).map_err(err)?;
        let combine = if kernel.is_reduction() {
            Some(wgsl::write_combine_pass(kernel, self.options()).map_err(err)?)
        } else {
            None
        };
        Ok(Self::key_of(&source, combine.as_deref()))
    }

    fn key_of(source: &str, combine: Option<&str>) -> (u64, String) {
        let full = match combine {
            Some(c) => format!("{source}\n// combine pass\n{c}"),
            None => source.to_string(),
        };
        let mut h = std::collections::hash_map::DefaultHasher::new();
        full.hash(&mut h);
        (h.finish(), full)
    }

    fn options(&self) -> wgsl::Options {
        wgsl::Options {
            f64: self.info.f64 && self.info.i64,
            i64: self.info.i64,
            subgroups: self.subgroups(),
        }
    }

    fn check_dtypes(&self, k: &Kernel) -> Result<()> {
        let mut types: Vec<DType> = k.inputs.clone();
        types.extend(k.insts.iter().map(|d| d.ty));
        self.check_dtypes_of(&types)
    }

    fn check_dtypes_of(&self, types: &[DType]) -> Result<()> {
        check_capabilities(&self.info, types)
    }

    fn take_lost(&self) -> Result<()> {
        match self.lost.lock().ok().and_then(|mut s| s.take()) {
            Some(e) => Err(Error::Device { message: e }),
            None => Ok(()),
        }
    }

    /// Validate with naga, then build the pipeline inside an error scope.
    /// Bindings: 0 the parameters, then `n_rw` read-write buffers, then `n_ro` read-only ones.
    fn build_pipe(
        &self,
        source: &str,
        opts: wgsl::Options,
        n_rw: usize,
        n_ro: usize,
        label: &str,
    ) -> Result<Pipe> {
        wgsl::validate(source, opts).map_err(|e| Error::Compile {
            message: e.to_string(),
        })?;
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = self
            .device
            .create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(label),
                source: wgpu::ShaderSource::Wgsl(source.into()),
            });
        let mut entries = vec![storage_entry(0, true)];
        for i in 0..n_rw + n_ro {
            entries.push(storage_entry(1 + i as u32, i >= n_rw));
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
            return Err(Error::Compile {
                message: format!("{label}: {e}"),
            });
        }
        self.compilations.fetch_add(1, Ordering::Relaxed);
        Ok(Pipe { pipeline, layout })
    }

    /// WGSL generation + naga validation + pipeline creation, cached by shader hash.
    pub fn compile(&self, kernel: &Kernel) -> Result<Arc<GpuKernel>> {
        self.injected(true)?;
        kernel.verify()?;
        self.check_dtypes(kernel)?;
        // Read once: set_subgroups may change the options while this compiles.
        let opts = self.options();
        // The math functions become primitives once, here (the shaders and the constants
        // in the parameter buffer both come from the lowered kernel).
        let lowered = wgsl::lower(kernel).into_owned();
        let source = wgsl::write_kernel_with(&lowered, opts).map_err(|e| Error::Compile {
            message: e.to_string(),
        })?;
        let combine_src = if kernel.is_reduction() {
            Some(
                wgsl::write_combine_pass(&lowered, opts).map_err(|e| Error::Compile {
                    message: e.to_string(),
                })?,
            )
        } else {
            None
        };
        // The key is both shaders' full text; threads asking for the same shaders at once
        // share one pipeline build.
        let (key, full) = Self::key_of(&source, combine_src.as_deref());
        let (k, hit) = self.cache.get_or_compile(key, &full, || {
            let n_out = wgsl::output_bindings(kernel);
            // The subgroup capability only for the shaders that use it.
            let sopts = wgsl::shader_options(kernel, opts);
            let pipe =
                self.build_pipe(&source, sopts, n_out, kernel.inputs.len(), "fusebox kernel")?;
            let combine = match &combine_src {
                Some(src) => {
                    Some(self.build_pipe(src, sopts, n_out, n_out, "fusebox combine pass")?)
                }
                None => None,
            };
            Ok(Arc::new(GpuKernel {
                kernel: kernel.clone(),
                lowered: lowered.clone(),
                pipeline: pipe.pipeline,
                layout: pipe.layout,
                source: source.clone(),
                combine,
            }))
        })?;
        if hit {
            self.cache_hits.fetch_add(1, Ordering::Relaxed);
        }
        // Kernels with the same shaders share the pipelines: float constants travel in the
        // parameter buffer, and different IR can give the same WGSL (`any` and `max` of bool).
        // The returned kernel must carry the caller's IR (its constants, and the reduction ops
        // the host side reads: identities, empty-input errors).
        if k.kernel == *kernel {
            return Ok(k);
        }
        Ok(Arc::new(GpuKernel {
            kernel: kernel.clone(),
            lowered,
            pipeline: k.pipeline.clone(),
            layout: k.layout.clone(),
            source: k.source.clone(),
            combine: k.combine.clone(),
        }))
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

    /// 2-D grid for `groups` workgroups: (x, y) with x <= 65,535.
    fn grid(groups: u32) -> (u32, u32) {
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
        let n = checked_len32(shape)?;
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
            self.run_stores(k, &hosts, shape, n)
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

    /// A kernel of stores on host inputs, chunked when an output or input exceeds one binding.
    fn run_stores(
        &self,
        k: &GpuKernel,
        hosts: &[HostInput],
        out_shape: &[usize],
        n: usize,
    ) -> Result<Vec<DynArray>> {
        let kern = &k.kernel;
        let out_ts = kern.output_dtypes();
        let limit = self.binding_limit.load(Ordering::Relaxed);
        // Inputs that fit one binding are uploaded whole; the others are streamed.
        let streamed: Vec<bool> = hosts.iter().map(|h| h.bytes.len() as u64 > limit).collect();
        let mut widest = out_ts
            .iter()
            .map(|t| device_size(*t) as u64)
            .max()
            .unwrap_or(4);
        for (h, s) in hosts.iter().zip(&streamed) {
            if *s {
                widest = widest.max(device_size(h.dtype) as u64);
            }
        }
        let c = limit / widest;
        let chunk = (c - c % WORKGROUP as u64).max(WORKGROUP as u64) as usize;

        if n == 0 {
            return Ok(out_ts.iter().map(|t| empty_array(*t, out_shape)).collect());
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
        let m = out_ts.len();
        let mut out_bytes: Vec<Vec<u8>> = vec![Vec::new(); m];
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
            p.extend(wgsl::const_words(&k.lowered));
            let params = self.params(&p)?;
            let mut outs = Vec::with_capacity(m);
            for t in &out_ts {
                outs.push(self.acquire(
                    Kind::Storage,
                    round_up(len as u64 * device_size(*t) as u64, 4),
                )?);
            }
            let mut bufs: Vec<&wgpu::Buffer> = vec![&params];
            bufs.extend(outs.iter());
            for i in 0..hosts.len() {
                bufs.push(
                    bound[i]
                        .as_ref()
                        .or(stream_bufs[i].as_ref())
                        .ok_or_else(|| Error::Device {
                            message: "internal: input buffer missing".into(),
                        })?,
                );
            }
            let mut enc =
                Some(self.encode_dispatch(k, &entries(&bufs), (gx, gy), "fusebox kernel"));
            for (o, out) in outs.into_iter().enumerate() {
                let e = enc
                    .take()
                    .unwrap_or_else(|| self.device.create_command_encoder(&Default::default()));
                let bytes =
                    self.download_buf(e, &out, len as u64 * device_size(out_ts[o]) as u64)?;
                if out_bytes[o].is_empty() {
                    out_bytes[o].reserve_exact(n * device_size(out_ts[o]));
                }
                out_bytes[o].extend_from_slice(&bytes);
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
        out_ts
            .iter()
            .zip(&out_bytes)
            .map(|(t, b)| bytes_to_array(*t, b, out_shape))
            .collect()
    }

    /// The parameter block of one dispatch, in a pooled buffer (not counted as uploaded data).
    fn params(&self, p: &[u32]) -> Result<wgpu::Buffer> {
        let params = self.acquire(Kind::Storage, round_up(p.len() as u64 * 4, 4))?;
        self.queue.write_buffer(&params, 0, bytemuck::cast_slice(p));
        Ok(params)
    }

    /// Run a reduction kernel: the first pass over the inputs writes per-workgroup partial
    /// results, combine passes reduce them until one group per output element is left (see
    /// [`wgsl`] for the mapping of threads to elements). Inputs larger than one binding are
    /// streamed in chunks of whole segments (reductions of every non-trivial axis only).
    fn reduce(
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
                    let bytes = h.chunk_bytes(shape, start, len)?;
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

    /// Record one dispatch of `pipeline` into `enc`.
    fn dispatch_into(
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
}

/// A reduction's input: a host array (uploaded whole or streamed) or a device array.
enum Src<'a> {
    Host(&'a HostInput),
    Device(&'a GpuArray),
}

/// What a reduction produced: host arrays (empty reductions need no device), or one device
/// buffer per output with its dtype, and the kept shape.
enum Reduced {
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

/// Bind group entries for buffers bound whole, in binding order.
fn entries<'a>(bufs: &[&'a wgpu::Buffer]) -> Vec<wgpu::BindGroupEntry<'a>> {
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

/// An array of `shape` filled with `c`.
fn filled(c: Const, shape: &[usize]) -> DynArray {
    let sh = IxDyn(shape);
    match c {
        Const::Bool(v) => ArrayD::from_elem(sh, v).into(),
        Const::I32(v) => ArrayD::from_elem(sh, v).into(),
        Const::I64(v) => ArrayD::from_elem(sh, v).into(),
        Const::F32(v) => ArrayD::from_elem(sh, v).into(),
        Const::F64(v) => ArrayD::from_elem(sh, v).into(),
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

fn poisoned<T>(_: std::sync::PoisonError<T>) -> Error {
    Error::Device {
        message: "GPU backend lock poisoned by an earlier panic".into(),
    }
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
            driver: String::new(),
            f64,
            i64,
            subgroups: false,
            max_binding_size: 1 << 27,
        }
    }

    #[test]
    fn dtypes_the_adapter_lacks_are_refused_with_the_missing_feature() {
        let none = adapter(false, false);
        let e = check_capabilities(&none, &[DType::F32, DType::F64]).unwrap_err();
        assert!(
            matches!(&e, Error::UnsupportedDtype { dtype, context } if dtype == "float64" && context.contains("SHADER_F64")),
            "{e}"
        );
        let e = check_capabilities(&none, &[DType::I64]).unwrap_err();
        assert!(
            matches!(&e, Error::UnsupportedDtype { dtype, context } if dtype == "int64" && context.contains("SHADER_INT64")),
            "{e}"
        );
        assert!(check_capabilities(&none, &[DType::F32, DType::I32, DType::Bool]).is_ok());
        // f64 needs both features (the math expansions use 64-bit integer bit access).
        assert!(check_capabilities(&adapter(true, false), &[DType::F64]).is_err());
        assert!(check_capabilities(&adapter(true, true), &[DType::F64, DType::I64]).is_ok());
    }
}
