//! GPU backend: kernel IR -> WGSL compute shader -> wgpu 30 (Vulkan preferred).
//!
//! Files: `adapter.rs` (listing adapters, their features, limits and driver workarounds),
//! `buffers.rs` (the buffer pool, uploads, read-backs, device arrays, host inputs),
//! `dispatch.rs` (entry points, argument checks, the dispatch grid, resident kernels of
//! stores), `stream.rs` (the streamed host path), `reduce.rs` (reductions), `wgsl.rs` (code
//! generation).
//!
//! Pipeline: [`wgsl::write_kernel_with`] turns a verified [`Kernel`] into WGSL; the text is
//! validated with naga before it reaches the driver; the compute pipeline is cached by the
//! shader's hash. Float constants are not in the text: they travel in the parameter buffer (a
//! fast-math driver folds visible ones wrongly; see [`wgsl`]), so kernels that differ only in
//! them share a pipeline. The device is opened with the adapter's own limits
//! (`max_buffer_size`, `max_storage_buffer_binding_size`, ...), not wgpu's defaults. Driver
//! workarounds apply only where needed: the full fast-math barriers on Mesa's drivers
//! ([`needs_fast_math_barriers`]), the product barrier (no FMA contraction) everywhere.
//!
//! Kernels of stores on host data ([`GpuBackend::run`]) stream: the iteration space goes in
//! chunks (16 MiB per array, [`crate::target::GPU_STREAM_CHUNK_BYTES`]) through a ring of
//! staging buffers, so that the host writes chunk k+1 straight from the caller's array into
//! mapped memory while the device computes the earlier chunks, and results are copied
//! straight from mapped memory into the output array; the host waits only when it needs a
//! slot back, and at the end (`stream.rs`). Inputs of the output's shape stream with it;
//! broadcast and strided inputs are bound whole (read through per-input strides passed in a
//! parameter buffer, 0 for broadcast dimensions), or gathered per chunk when larger than one
//! binding. One invocation per output element on a 2-D grid (so the 65,535 workgroups per
//! dimension never bite); each element is computed by the same code whatever the chunking, so
//! the result is identical to one pass. Where every input streams, the element count is 64-bit
//! (chunks index within themselves); elsewhere indices are 32-bit ([`Error::TooLarge`] past
//! 2^32 elements). Buffers come from a pool reused across calls.
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
mod adapter;
#[cfg(test)]
mod agreement;
mod buffers;
mod dispatch;
mod reduce;
mod stream;
pub mod wgsl;

use crate::cache::KernelCache;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::kir::Kernel;
pub use adapter::{adapters, fits_axis_reduction, needs_fast_math_barriers, supports, AdapterInfo};
use adapter::{check_capabilities, describe, sorted_adapters};
pub use buffers::GpuArray;
use buffers::{Kind, Pool};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// `FUSEBOX_GPU_SUBGROUPS=0` turns subgroup operations off (any other value, or none, leaves
/// them on where the adapter has them).
fn subgroups_from_env() -> bool {
    std::env::var("FUSEBOX_GPU_SUBGROUPS").map_or(true, |v| v.trim() != "0")
}

/// Threads per workgroup (1-D). The reduction tree in the shaders assumes this value.
pub const WORKGROUP: u32 = 256;
const MAX_GROUPS_X: u32 = 65_535;

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

    /// Bytes one storage binding holds (the adapter's limit, or the test override of
    /// [`GpuBackend::set_binding_limit`]): the largest device array.
    pub fn binding_limit(&self) -> u64 {
        self.binding_limit.load(Ordering::Relaxed)
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
            barriers: if self.info.fast_math_barriers {
                wgsl::Barriers::All
            } else {
                wgsl::Barriers::Products
            },
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
