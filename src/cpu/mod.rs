//! The CPU backend: kernels compiled to machine code with Cranelift, run over ndarray memory
//! by a driver that walks the iteration space in contiguous runs, on a persistent rayon pool
//! where the kernel's measured cost says the pool pays ([`threads`]).
//!
//! Pieces, in the order a call goes through them:
//! - [`CpuBackend::compile`] verifies a [`Kernel`], then looks it up in a cache keyed by
//!   [`Kernel::fingerprint`] (confirmed by full equality) or compiles it (`codegen`); the cache
//!   is bounded (LRU, [`CpuBackend::set_cache_capacity`]) and compiles each kernel once even
//!   when threads ask for it together;
//! - [`CpuBackend::run_many`] checks the arguments, computes each input's byte strides
//!   broadcast to the iteration space and coalesces dimensions (a contiguous array of any rank
//!   becomes one run). Stores: the compiled function runs once per inner run, writing every
//!   output; where [`threads::pool_pays`] for the kernel's measured cost per element, the
//!   space is split into contiguous chunks (sized from that cost) handled by the pool's
//!   threads, otherwise it runs on the calling thread.
//! - Reductions: the space is split into the kept axes and the reduced axes (each coalesced
//!   on its own). Each output has an accumulator slot per kept position. Either every kept
//!   position reduces its sub-space in blocks of `SUM_BLOCK` consecutive elements merged
//!   pairwise (threads over kept positions when there are many, over fixed chunks of one
//!   reduction when there are few), or, when the reduced axes are outer or short (axis 0 of a
//!   C array), the *vertical* function adds whole rows of kept positions into tiles of
//!   accumulators (blocks of rows merged pairwise, fixed chunks of rows on the threads); for a
//!   kernel with a SIMD loop it runs across the kept positions in vectors, over dense
//!   accumulator arrays that become slots at the end of each block (the same bits as the
//!   scalar function's, in the same tree).
//!   [`CpuBackend::run`] is `run_many` reducing every axis, returning the first output.
//!
//! Architecture invariants: the backend sees only verified kernel IR (never `Expr`); compiled
//! code never traps (integer division by zero and `MIN / -1` are guarded); reductions do not
//! depend on the number of threads (blocks and chunks have fixed boundaries, merged pairwise in
//! one fixed tree); empty `min`/`max`/`argmin`/`argmax` reductions are `Error::Value`, NumPy's
//! message.
mod codegen;
mod into;
pub(crate) use into::{alias, Alias};
pub mod threads;
/// Outputs at least this large are backed by transparent huge pages where the OS allows.
const HUGE_PAGE_MIN_BYTES: usize = 4 << 20;

/// An uninitialized C-contiguous output of `n` elements. Large outputs ask Linux for
/// transparent huge pages (as NumPy does): touching a fresh 800 MB output in 4 KiB pages costs
/// ~200,000 page faults, several times the kernel's own time at the memory bus.
fn uninit_output<T: Element>(shape: &[usize], n: usize) -> Array<std::mem::MaybeUninit<T>, IxDyn> {
    let mut v: Vec<std::mem::MaybeUninit<T>> = Vec::with_capacity(n);
    let bytes = n * std::mem::size_of::<T>();
    if bytes >= HUGE_PAGE_MIN_BYTES {
        advise_huge_pages(v.as_mut_ptr() as *mut u8, bytes);
    }
    // SAFETY: `MaybeUninit` elements need no initialization, and the capacity is `n`.
    unsafe { v.set_len(n) };
    Array::from_shape_vec(IxDyn(shape), v).expect("n is the product of shape")
}

#[cfg(target_os = "linux")]
fn advise_huge_pages(ptr: *mut u8, len: usize) {
    const PAGE: usize = 4096;
    let start = (ptr as usize).next_multiple_of(PAGE);
    let end = (ptr as usize + len) & !(PAGE - 1);
    if end > start {
        // SAFETY: [start, end) lies inside the allocation just made (whole pages only);
        // MADV_HUGEPAGE changes how the kernel backs those pages, never their contents, and a
        // failure (THP disabled) leaves ordinary pages, so the result is ignored.
        unsafe {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn advise_huge_pages(_ptr: *mut u8, _len: usize) {}

#[cfg(test)]
mod tests;

use crate::array::{broadcast_strides, checked_len, ArgView, DynArray, Element};
use crate::cache::KernelCache;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::kir::{Const, Kernel, Output};
use crate::ops::ReduceOp;
use crate::semantics;
use codegen::{Compiled, SLOT};
use cranelift_codegen::isa::OwnedTargetIsa;
use cranelift_codegen::settings::{self, Configurable};
use ndarray::{Array, IxDyn};
use rayon::prelude::*;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Reductions add up blocks of this many consecutive elements (the flat index decides the
/// block), then merge block sums pairwise, like NumPy's pairwise summation.
const SUM_BLOCK: usize = 128;
/// Reductions split the iteration space into chunks of this many elements (a power-of-two
/// number of blocks) wherever they run, so the result does not depend on the thread count.
const SUM_CHUNK_LOG2: u32 = 9;
const SUM_CHUNK: usize = SUM_BLOCK << SUM_CHUNK_LOG2;
/// Reductions over many kept positions hand the pool jobs of about this many elements (whole
/// kept positions): cheap to schedule, small enough to balance the threads.
const JOB_ELEMS: usize = 1 << 14;

/// Row-form plans go to the pool from this many elements (below, the hand-off costs more
/// than the second core gives).
const BLOCK_POOL_MIN: usize = 1 << 16;

thread_local! {
    /// Set while this thread runs one job of [`CpuBackend::for_blocks`]: calls stay serial.
    static IN_BLOCK_JOB: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Compiled-kernel cache and thread pool.
pub struct CpuBackend {
    isa: OwnedTargetIsa,
    threads: usize,
    pool: Option<rayon::ThreadPool>,
    /// Bounded LRU cache keyed by the kernel IR (see [`crate::cache`]).
    cache: KernelCache<Kernel, Arc<CpuKernel>>,
    /// Calls that ran on the calling thread only, and calls that used the pool.
    serial_runs: AtomicU64,
    parallel_runs: AtomicU64,
    /// The pool's measured hand-off, looked up once (the hot path takes no lock for it).
    handoff: std::sync::OnceLock<f64>,
}

/// How the backend's calls ran (see [`threads`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunCounters {
    /// Calls that ran on the calling thread only.
    pub serial: u64,
    /// Calls that handed work to the thread pool.
    pub parallel: u64,
}

/// What the backend has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuCounters {
    pub compilations: u64,
    pub cache_hits: u64,
    /// Kernels dropped from the cache to keep it within its capacity.
    pub evictions: u64,
}

/// A compiled kernel: its IR and the machine code (freed when the last `Arc` goes).
pub struct CpuKernel {
    kernel: Kernel,
    code: Compiled,
    /// Measured seconds per element on one thread (decides threads; see [`threads`]).
    cost: threads::ElemCost,
}

// SAFETY: the compiled code is immutable after finalization and reentrant (it keeps no state
// outside its arguments); the `JITModule` inside `Compiled` is only touched again when the
// kernel is dropped, which needs exclusive ownership.
unsafe impl Send for CpuKernel {}
// SAFETY: see `Send`: shared access only ever reads the function pointer.
unsafe impl Sync for CpuKernel {}

impl CpuKernel {
    pub fn kernel(&self) -> &Kernel {
        &self.kernel
    }
    /// Whether the compiled function has a SIMD loop (for tests and diagnostics).
    pub fn has_simd(&self) -> bool {
        self.code.simd
    }
}

/// The Cranelift ISA of this machine, with the backend's flags.
fn native_isa() -> Result<OwnedTargetIsa> {
    let mut flags = settings::builder();
    let set = |f: &mut settings::Builder, k: &str, v: &str| {
        f.set(k, v).map_err(|e| Error::Compile {
            message: format!("Cranelift flag {k}={v}: {e}"),
        })
    };
    set(&mut flags, "opt_level", "speed")?;
    set(&mut flags, "use_colocated_libcalls", "false")?;
    set(&mut flags, "is_pic", "false")?;
    cranelift_native::builder()
        .map_err(|e| Error::Device {
            message: format!("this CPU is not supported by Cranelift: {e}"),
        })?
        .finish(settings::Flags::new(flags))
        .map_err(|e| Error::Compile {
            message: e.to_string(),
        })
}

pub use crate::target::host_has_fma;

/// The compiled function's type (see `codegen`'s module docs).
type KernelFn = unsafe extern "C" fn(*const *const u8, *const isize, *mut u8, usize, i64);

impl CpuBackend {
    /// A backend running on `threads` threads; `threads = 0` means all cores.
    pub fn new(threads: usize) -> Result<CpuBackend> {
        let threads = if threads == 0 {
            num_cpus::get().max(1)
        } else {
            threads
        };
        let isa = native_isa()?;
        let pool = if threads > 1 {
            Some(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .thread_name(|i| format!("fusebox-cpu-{i}"))
                    .build()
                    .map_err(|e| Error::Device {
                        message: format!("cannot start {threads} threads: {e}"),
                    })?,
            )
        } else {
            None
        };
        Ok(CpuBackend {
            isa,
            threads,
            pool,
            cache: KernelCache::new(crate::cache::default_capacity()),
            serial_runs: AtomicU64::new(0),
            parallel_runs: AtomicU64::new(0),
            handoff: std::sync::OnceLock::new(),
        })
    }

    /// The measured cost of handing a call to the thread pool, in seconds (0 without a pool);
    /// measured on first use (see [`threads`]).
    pub fn handoff_s(&self) -> f64 {
        *self.handoff.get_or_init(|| {
            self.pool
                .as_ref()
                .map_or(0.0, |p| threads::handoff_s(p, self.threads))
        })
    }

    /// Fix the hand-off instead of measuring it (tests: a hand-off measured on a loaded
    /// machine would make the decisions they check depend on the load). No effect once the
    /// hand-off is known.
    #[cfg(test)]
    pub(crate) fn assume_handoff_s(&self, h: f64) {
        let _ = self.handoff.set(h);
    }

    /// How many calls ran on one thread and how many used the pool.
    pub fn runs(&self) -> RunCounters {
        RunCounters {
            serial: self.serial_runs.load(Ordering::Relaxed),
            parallel: self.parallel_runs.load(Ordering::Relaxed),
        }
    }

    /// The choice for a call of `n` elements of `k` (see [`threads::choose`]), and the
    /// hand-off it was made with.
    fn choose(&self, k: &CpuKernel, n: usize) -> (threads::Choice, f64) {
        if self.pool.is_none() || n < 2 * threads::PROBE_MIN || IN_BLOCK_JOB.get() {
            return (threads::Choice::Serial, 0.0);
        }
        let h = self.handoff_s();
        (threads::choose(n, self.threads, h, k.cost.get()), h)
    }

    fn count_run(&self, parallel: bool) {
        let c = if parallel {
            &self.parallel_runs
        } else {
            &self.serial_runs
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Run `fill` over the flat range `0..n` of a store: on the calling thread, or (at the
    /// kernel's measured cost per element) in disjoint contiguous ranges on the pool; with
    /// `Choice::Probe` the first elements run first on the calling thread, timed.
    fn fill_all(
        &self,
        k: &CpuKernel,
        n: usize,
        choice: (threads::Choice, f64),
        fill: impl Fn(usize, usize) + Sync + Send,
    ) {
        let (lo, cost) = match choice {
            (threads::Choice::Serial, _) => (0, None),
            (threads::Choice::Parallel(e), h) => (0, Some((e, h))),
            (threads::Choice::Probe(m), h) => {
                let t = Instant::now();
                fill(0, m);
                let e = t.elapsed().as_secs_f64() / m as f64;
                k.cost.set(e);
                (m, Some((e, h)))
            }
        };
        match (&self.pool, cost) {
            (Some(pool), Some((e, h)))
                if threads::pool_pays((n - lo) as f64 * e, self.threads, h) =>
            {
                self.count_run(true);
                let work = (n - lo) as f64 * e;
                let ranges = threads::split(lo, n, threads::chunks_for(work, self.threads, h));
                // Ranges are disjoint, so the threads write disjoint parts of the outputs.
                pool.install(|| ranges.into_par_iter().for_each(|(a, b)| fill(a, b)));
            }
            _ => {
                self.count_run(false);
                if lo < n {
                    fill(lo, n);
                }
            }
        }
    }

    /// Run jobs `0..count` of about `per_job` elements each of kernel `k`, returning their
    /// results in order: on the calling thread, or on the pool where [`threads::pool_pays`];
    /// when the cost must be measured, job 0 runs first on the calling thread, timed.
    fn run_jobs<T: Send>(
        &self,
        k: &CpuKernel,
        count: usize,
        per_job: usize,
        job: impl Fn(usize) -> T + Sync + Send,
    ) -> Vec<T> {
        let (choice, h) = if count > 1 {
            self.choose(k, count.saturating_mul(per_job))
        } else {
            (threads::Choice::Serial, 0.0)
        };
        let (first, cost) = match choice {
            threads::Choice::Serial => {
                self.count_run(false);
                return (0..count).map(job).collect();
            }
            threads::Choice::Parallel(e) => (vec![], e),
            threads::Choice::Probe(_) => {
                let t = Instant::now();
                let r = job(0);
                let e = t.elapsed().as_secs_f64() / per_job.max(1) as f64;
                k.cost.set(e);
                (vec![r], e)
            }
        };
        let start = first.len();
        let rest = (count - start) as f64 * per_job as f64 * cost;
        let mut out = first;
        match &self.pool {
            Some(pool) if threads::pool_pays(rest, self.threads, h) => {
                self.count_run(true);
                let more: Vec<T> =
                    pool.install(|| (start..count).into_par_iter().map(&job).collect());
                out.extend(more);
            }
            _ => {
                self.count_run(false);
                out.extend((start..count).map(&job));
            }
        }
        out
    }

    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Run `job` on every item of `jobs` (blocks of rows of a row-form plan, see
    /// [`crate::opt::epilogue`]), each on one thread: on the pool when there are several and
    /// `elems` (the total work) is worth the hand-off, else on the calling thread. Every call
    /// a job makes into this backend runs on its own thread (the block stays in that core's
    /// cache). The first error is returned.
    pub fn for_blocks<J: Send>(
        &self,
        jobs: Vec<J>,
        elems: usize,
        job: impl Fn(J) -> Result<()> + Sync + Send,
    ) -> Result<()> {
        let run = |j: J| {
            let was = IN_BLOCK_JOB.replace(true);
            let r = job(j);
            IN_BLOCK_JOB.set(was);
            r
        };
        match &self.pool {
            Some(pool) if jobs.len() > 1 && elems >= BLOCK_POOL_MIN => {
                self.count_run(true);
                pool.install(|| jobs.into_par_iter().try_for_each(run))
            }
            _ => {
                self.count_run(false);
                jobs.into_iter().try_for_each(run)
            }
        }
    }

    /// Verify, then compile `kernel` or return the cached compilation of an equal kernel.
    /// Threads asking for the same kernel at once share one compilation.
    pub fn compile(&self, kernel: &Kernel) -> Result<Arc<CpuKernel>> {
        kernel.verify()?;
        let key = kernel.fingerprint();
        let (k, _hit) = self
            .cache
            .get_or_compile(key, kernel, || self.compile_uncached(kernel))?;
        Ok(k)
    }

    fn compile_uncached(&self, kernel: &Kernel) -> Result<Arc<CpuKernel>> {
        // exp/log become primitive instructions, so they run in the SIMD loop (see mathlib).
        let target = crate::mathlib::Target::cpu(codegen::has_fma(&self.isa));
        self.compile_lowered(kernel, crate::mathlib::expand_for(kernel, target))
    }

    /// Compile `kernel` with no math expansion (every transcendental calls libm), bypassing
    /// the cache: the baseline the expansions are measured against.
    #[cfg(test)]
    pub(crate) fn compile_unexpanded(&self, kernel: &Kernel) -> Result<Arc<CpuKernel>> {
        kernel.verify()?;
        self.compile_lowered(kernel, kernel.clone())
    }

    fn compile_lowered(&self, kernel: &Kernel, lowered: Kernel) -> Result<Arc<CpuKernel>> {
        // The SIMD variant can fail where Cranelift has no lowering for some vector
        // instruction; the scalar-only function always works.
        lowered.verify()?;
        let code = match codegen::simd_width(&lowered) {
            Some(w) => codegen::compile(&self.isa, &lowered, Some(w))
                .or_else(|_| codegen::compile(&self.isa, &lowered, None))?,
            None => codegen::compile(&self.isa, &lowered, None)?,
        };
        Ok(Arc::new(CpuKernel {
            kernel: kernel.clone(),
            code,
            cost: threads::ElemCost::default(),
        }))
    }

    /// Whether [`CpuBackend::compile`] would answer `kernel` from its cache (no compilation).
    pub fn is_cached(&self, kernel: &Kernel) -> bool {
        self.cache.contains(kernel.fingerprint(), kernel)
    }

    pub fn counters(&self) -> CpuCounters {
        let c = self.cache.counters();
        CpuCounters {
            compilations: c.compilations,
            cache_hits: c.hits,
            evictions: c.evictions,
        }
    }

    /// Bound the kernel cache to `kernels` entries (at least 1), evicting the least recently
    /// used beyond it. The default is [`crate::cache::default_capacity`].
    pub fn set_cache_capacity(&self, kernels: usize) {
        self.cache.set_capacity(kernels);
    }

    /// Kernels currently cached.
    pub fn cached_kernels(&self) -> usize {
        self.cache.len()
    }

    /// Run `k` over the iteration space `shape`, its reductions combining over `axes` (sorted;
    /// empty for stores): one array per output, of `shape` for stores and of the kept axes'
    /// shape for reductions (C-contiguous).
    pub fn run_many(
        &self,
        k: &CpuKernel,
        inputs: &[ArgView<'_>],
        shape: &[usize],
        axes: &[usize],
    ) -> Result<Vec<DynArray>> {
        let kernel = &k.kernel;
        kernel.check_args(inputs, shape)?;
        kernel.check_axes(axes, shape.len())?;
        // SAFETY: the function was compiled from `kernel`, whose inputs have the dtypes checked
        // above, with the signature `KernelFn` (see `codegen`).
        let f: KernelFn = unsafe { std::mem::transmute::<*const u8, KernelFn>(k.code.code) };
        if kernel.is_reduction() {
            self.reduce(k, f, inputs, shape, axes)
        } else {
            self.store(k, f, inputs, shape)
        }
    }

    /// Run `k` over the iteration space `out_shape`, a reduction combining over every axis:
    /// the first output (see the module docs).
    pub fn run(
        &self,
        k: &CpuKernel,
        inputs: &[ArgView<'_>],
        out_shape: &[usize],
    ) -> Result<DynArray> {
        let axes: Vec<usize> = if k.kernel.is_reduction() {
            (0..out_shape.len()).collect()
        } else {
            vec![]
        };
        let mut outs = self.run_many(k, inputs, out_shape, &axes)?;
        Ok(outs.swap_remove(0))
    }

    fn store(
        &self,
        k: &CpuKernel,
        f: KernelFn,
        inputs: &[ArgView<'_>],
        shape: &[usize],
    ) -> Result<Vec<DynArray>> {
        let dts: Inline<DType> = k
            .kernel
            .outputs
            .iter()
            .map(|o| k.kernel.dtype_of(*o))
            .collect();
        let widest = dts.iter().map(|t| t.size()).max().unwrap_or(1);
        let n = checked_len(shape, widest)?;
        let choice = self.choose(k, n);
        if choice.0 == threads::Choice::Serial {
            if let Some(r) = Self::store_flat(k, f, inputs, shape, n) {
                self.count_run(false);
                return Ok(r);
            }
        }
        let plan = Plan::new(inputs, shape);
        let mut bufs: Inline<OutBuf> = dts.iter().map(|t| OutBuf::new(*t, shape, n)).collect();
        let outs: Inline<(SendPtr, usize)> = bufs
            .iter_mut()
            .zip(&dts)
            .map(|(b, t)| (SendPtr(b.ptr()), t.size()))
            .collect();
        let fill = |lo: usize, hi: usize| {
            let mut w = Walker::new(&plan, lo, hi);
            let mut ptrs: Inline<*mut u8> = smallvec::smallvec![std::ptr::null_mut(); outs.len()];
            while let Some((pos, len)) = w.next_run(usize::MAX) {
                for (p, (base, size)) in ptrs.iter_mut().zip(&outs) {
                    // SAFETY: `pos + len <= n` and each output holds `n` elements of `size`.
                    *p = unsafe { base.at(pos * size) };
                }
                // SAFETY: the pointers in `w.ptrs` address `len` elements of each input at its
                // stride; `ptrs` holds one pointer per output to `len` writable elements.
                unsafe {
                    f(
                        w.ptrs.as_ptr(),
                        plan.inner.as_ptr(),
                        ptrs.as_mut_ptr() as *mut u8,
                        len,
                        0,
                    );
                }
            }
        };
        self.fill_all(k, n, choice, fill);
        // SAFETY: every flat index in 0..n of every output was written by exactly one run
        // above (the runs of the walkers tile 0..n), with valid values (bool as 0/1).
        Ok(bufs.into_iter().map(|b| unsafe { b.finish() }).collect())
    }

    /// The small-call path of [`CpuBackend::store`], on the calling thread: when every input
    /// is C-contiguous with the iteration space's shape or a single element (broadcast
    /// everywhere), the whole space is one run, so the kernel is called once with the inputs'
    /// own addresses, without a [`Plan`] or a [`Walker`]. `None` when the inputs are laid out
    /// otherwise (or are more than [`FLAT_MAX`]), or the kernel has more than `FLAT_MAX`
    /// outputs.
    fn store_flat(
        k: &CpuKernel,
        f: KernelFn,
        inputs: &[ArgView<'_>],
        shape: &[usize],
        n: usize,
    ) -> Option<Vec<DynArray>> {
        let kernel = &k.kernel;
        if kernel.outputs.len() > FLAT_MAX {
            return None;
        }
        let (ptrs, inner) = flat_inputs(inputs, shape)?;
        let mut bufs: Inline<OutBuf> = Inline::new();
        let mut outs = [std::ptr::null_mut::<u8>(); FLAT_MAX];
        for (o, out) in kernel.outputs.iter().zip(&mut outs) {
            bufs.push(OutBuf::new(kernel.dtype_of(*o), shape, n));
            *out = bufs.last_mut().map_or(std::ptr::null_mut(), OutBuf::ptr);
        }
        if n > 0 {
            // SAFETY: input j is `n` elements in order at `inner[j]` bytes apart from `ptrs[j]`
            // (or one element read `n` times with stride 0), with the dtype `check_args`
            // checked; `outs` holds one pointer per output to `n` writable elements.
            unsafe {
                f(
                    ptrs.as_ptr(),
                    inner.as_ptr(),
                    outs.as_mut_ptr() as *mut u8,
                    n,
                    0,
                )
            };
        }
        // SAFETY: the one call above wrote every element 0..n of every output.
        Some(bufs.into_iter().map(|b| unsafe { b.finish() }).collect())
    }

    fn reduce(
        &self,
        k: &CpuKernel,
        f: KernelFn,
        inputs: &[ArgView<'_>],
        shape: &[usize],
        axes: &[usize],
    ) -> Result<Vec<DynArray>> {
        let kernel = &k.kernel;
        let specs: Vec<RedSpec> = kernel
            .outputs
            .iter()
            .filter_map(|o| match *o {
                Output::Reduce { op, value } => {
                    let dt = kernel.ty(value);
                    let acc = codegen::acc_dtype(op, dt);
                    Some(RedSpec {
                        op,
                        acc,
                        result: kernel.dtype_of(*o),
                        ident: Slot::of(codegen::acc_identity(op, acc), -1),
                    })
                }
                Output::Store { .. } => None,
            })
            .collect();
        let kept_axes: Vec<usize> = (0..shape.len()).filter(|d| !axes.contains(d)).collect();
        let kept_shape: Vec<usize> = kept_axes.iter().map(|&d| shape[d]).collect();
        let red_shape: Vec<usize> = axes.iter().map(|&d| shape[d]).collect();
        let kept_n = checked_len(&kept_shape, SLOT * specs.len().max(1))?;
        let red_n = checked_len(&red_shape, 1)?;
        let m = specs.len();
        if kept_n == 0 || red_n == 0 {
            if kept_n > 0 {
                if let Some(s) = specs.iter().find(|s| s.op.identity(s.acc).is_none()) {
                    return Err(Error::EmptyReduction {
                        op: s.op.name().into(),
                    });
                }
            }
            let res: Vec<Slot> = (0..kept_n)
                .flat_map(|_| specs.iter().map(|s| s.ident))
                .collect();
            return Ok(results(&specs, &res, &kept_shape));
        }
        // Byte strides of each input over the kept axes and over the reduced axes.
        let mut kept_strides = Inline::with_capacity(inputs.len());
        let mut red_strides = Inline::with_capacity(inputs.len());
        for a in inputs {
            let bs = broadcast_byte_strides(a, shape);
            kept_strides.push(kept_axes.iter().map(|&d| bs[d]).collect());
            red_strides.push(axes.iter().map(|&d| bs[d]).collect());
        }
        let bases: Inline<SendConstPtr> = inputs.iter().map(|a| SendConstPtr(a.as_ptr())).collect();
        let kept = Plan::from_parts(&kept_shape, kept_strides, bases.clone());
        let red = Plan::from_parts(&red_shape, red_strides, bases);
        let ctx = RedCtx {
            f,
            specs: &specs,
            plan: &red,
            n: red_n,
        };
        let mut res = vec![Slot::default(); kept_n * m];
        let fv = k
            .code
            .code_v
            .filter(|_| kept_n > 1 && vertical_pays(&kept, &red, red_n));
        if let Some(code_v) = fv {
            // SAFETY: `code_v` is the kernel's vertical function, of the same type.
            let fv: KernelFn = unsafe { std::mem::transmute::<*const u8, KernelFn>(code_v) };
            self.reduce_vertical(k, &ctx, fv, &kept, &mut res);
        } else if kept_n == 1 {
            res.copy_from_slice(&self.reduce_one(Some(k), &ctx, &red.bases_at(&[])));
        } else if kept_n >= 4 * self.threads {
            // Many outputs: jobs take fixed groups of kept positions.
            let group = JOB_ELEMS.div_ceil(red_n).max(1);
            let groups = kept_n.div_ceil(group);
            let parts = self.run_jobs(k, groups, group * red_n, |g| {
                let mut out = Vec::with_capacity(group * m);
                for p in g * group..((g + 1) * group).min(kept_n) {
                    let offs = kept.offsets(p);
                    out.extend(self.reduce_one(None, &ctx, &red.bases_at(&offs)));
                }
                out
            });
            for (g, part) in parts.iter().enumerate() {
                res[g * group * m..g * group * m + part.len()].copy_from_slice(part);
            }
        } else {
            // Few outputs: each one is reduced by all threads.
            for (p, slots) in res.chunks_mut(m).enumerate() {
                let offs = kept.offsets(p);
                slots.copy_from_slice(&self.reduce_one(Some(k), &ctx, &red.bases_at(&offs)));
            }
        }
        Ok(results(&specs, &res, &kept_shape))
    }

    /// Reduce the whole reduced sub-space for one kept position (`bases`: each input's address
    /// of that position): fixed chunks, merged pairwise; with `k`, the chunks may run on the
    /// pool (see [`CpuBackend::run_jobs`]), without it they run on the calling thread.
    fn reduce_one(
        &self,
        k: Option<&CpuKernel>,
        ctx: &RedCtx<'_>,
        bases: &[SendConstPtr],
    ) -> Vec<Slot> {
        let n = ctx.n;
        let chunks = n.div_ceil(SUM_CHUNK);
        let partials: Vec<Vec<Slot>> = match k {
            Some(k) => self.run_jobs(k, chunks, SUM_CHUNK, |c| ctx.chunk(bases, c)),
            None => (0..chunks).map(|c| ctx.chunk(bases, c)).collect(),
        };
        // Merge chunk results with the same pairwise tree a single pass over all blocks builds:
        // full chunks enter at their level, the last (partial) one is already folded.
        let mut tree = Tree::new(ctx.specs, ctx.specs.len());
        for (c, p) in partials.iter().enumerate() {
            let full = (c + 1) * SUM_CHUNK <= n;
            tree.push(p, if full { SUM_CHUNK_LOG2 } else { 0 });
        }
        tree.finish()
    }

    /// Reductions along outer axes: tiles of consecutive kept positions (the innermost kept
    /// dimension) accumulate row by row of the reduced sub-space, so memory streams; blocks of
    /// `SUM_BLOCK` rows are merged pairwise, per position. Rows are cut into fixed chunks of
    /// `VERTICAL_CHUNK` (a power-of-two number of blocks) whose results enter the pairwise tree
    /// at their level, so the tree, and the result, depend neither on the tiling nor on the
    /// threads that run the (tile, chunk) parts.
    fn reduce_vertical(
        &self,
        k: &CpuKernel,
        ctx: &RedCtx<'_>,
        fv: KernelFn,
        kept: &Plan,
        res: &mut [Slot],
    ) {
        let m = ctx.specs.len();
        let last = kept.dims.len() - 1;
        let inner = kept.dims[last];
        let outer = kept.dims[..last].iter().product::<usize>();
        let width = inner.min(VERTICAL_TILE);
        let per_row = inner.div_ceil(width);
        let chunks = ctx.n.div_ceil(VERTICAL_CHUNK);
        // (first kept position, width) of each tile.
        let tiles: Vec<(usize, usize)> = (0..outer)
            .flat_map(|q| {
                (0..per_row).map(move |t| (q * inner + t * width, width.min(inner - t * width)))
            })
            .collect();
        // A kernel with a SIMD loop has a vertical SIMD loop, over dense accumulators: one
        // array per output of `w` values in its accumulator dtype (see `codegen`), started at
        // the identity and turned into slots at the end of every block.
        let dense = k.code.simd;
        let sizes: Vec<usize> = ctx.specs.iter().map(|s| s.acc.size()).collect();
        // One part: rows [lo, hi) of one tile, folded pairwise from blocks of SUM_BLOCK rows.
        let part = |(tile, c): (usize, usize)| -> Vec<Slot> {
            let (p, w) = tiles[tile];
            let (lo, hi) = (c * VERTICAL_CHUNK, ((c + 1) * VERTICAL_CHUNK).min(ctx.n));
            let offs = kept.offsets(p);
            let bases = ctx.plan.bases_at(&offs);
            let ident: Vec<Slot> = (0..w)
                .flat_map(|_| ctx.specs.iter().map(|s| s.ident))
                .collect();
            let mut block = ident.clone();
            let dense_ident: Vec<Vec<u8>> = ctx
                .specs
                .iter()
                .zip(&sizes)
                .map(|(s, &size)| {
                    let b = s.ident.bits.to_ne_bytes();
                    (0..w).flat_map(|_| b[..size].iter().copied()).collect()
                })
                .collect();
            let mut accs = dense_ident.clone();
            let mut acc_ptrs = vec![std::ptr::null_mut::<u8>(); m];
            let mut tree = Tree::new(ctx.specs, w * m);
            let mut walk = Walker::at(ctx.plan, &bases, lo, hi);
            let mut row = lo;
            let mut in_block = 0usize;
            let mut ptrs = vec![std::ptr::null::<u8>(); bases.len()];
            while let Some((pos, len)) = walk.next_run(SUM_BLOCK - in_block) {
                for i in 0..len {
                    for (j, q) in ptrs.iter_mut().enumerate() {
                        *q = walk.ptrs[j].wrapping_offset(i as isize * ctx.plan.inner[j]);
                    }
                    // Taken afresh for every call: the buffers are read and reset in between.
                    let out: *mut u8 = if dense {
                        for (q, a) in acc_ptrs.iter_mut().zip(accs.iter_mut()) {
                            *q = a.as_mut_ptr();
                        }
                        acc_ptrs.as_mut_ptr() as *mut u8
                    } else {
                        block.as_mut_ptr() as *mut u8
                    };
                    // SAFETY: `ptrs` address element `pos + i` of the reduced sub-space at kept
                    // position `p`; `w` kept positions follow at the kept inner strides; `out`
                    // is `block` (`w * m` slots) or, for the dense layout, `m` pointers each to
                    // `w` accumulators of its output's size (`accs`, not moved since).
                    unsafe {
                        fv(ptrs.as_ptr(), kept.inner.as_ptr(), out, w, (pos + i) as i64);
                    }
                }
                row += len;
                in_block += len;
                if in_block == SUM_BLOCK || row == hi {
                    if dense {
                        for (q, slot) in block.iter_mut().enumerate() {
                            let (i, o) = (q / m, q % m);
                            let at = i * sizes[o];
                            *slot = Slot::from_bytes(&accs[o][at..], sizes[o], slot.pos);
                        }
                        for (a, d) in accs.iter_mut().zip(&dense_ident) {
                            a.copy_from_slice(d);
                        }
                    }
                    tree.push(&block, 0);
                    block.copy_from_slice(&ident);
                    in_block = 0;
                }
            }
            tree.finish()
        };
        let jobs: Vec<(usize, usize)> = (0..tiles.len())
            .flat_map(|t| (0..chunks).map(move |c| (t, c)))
            .collect();
        let parts = self.run_jobs(k, jobs.len(), width * VERTICAL_CHUNK, |j| part(jobs[j]));
        for (t, &(p, w)) in tiles.iter().enumerate() {
            let mut tree = Tree::new(ctx.specs, w * m);
            for c in 0..chunks {
                let full = (c + 1) * VERTICAL_CHUNK <= ctx.n;
                tree.push(
                    &parts[t * chunks + c],
                    if full { VERTICAL_CHUNK_LOG2 } else { 0 },
                );
            }
            res[p * m..(p + w) * m].copy_from_slice(&tree.finish());
        }
    }
}

/// Kept positions in a tile of the vertical reduction, at most.
const VERTICAL_TILE: usize = 1024;
/// Rows of the reduced sub-space in one part of the vertical reduction: 2^2 blocks (enough
/// parts to balance the threads on a few thousand rows).
const VERTICAL_CHUNK_LOG2: u32 = 2;
const VERTICAL_CHUNK: usize = SUM_BLOCK << VERTICAL_CHUNK_LOG2;

/// Whether the vertical reduction beats one reduction per kept position: when the reduced
/// sub-space is short (a call per kept position would cost more than its work), or when the
/// innermost kept dimension is closer to contiguous than the innermost reduced one (axis 0 of a
/// C array).
fn vertical_pays(kept: &Plan, red: &Plan, red_n: usize) -> bool {
    let sum = |p: &Plan| p.inner.iter().map(|s| s.unsigned_abs()).sum::<usize>();
    let inner = kept.dims[kept.dims.len() - 1];
    red_n < 64 || (inner >= 4 && sum(kept) < sum(red))
}

/// What a reduction output needs at run time.
struct RedSpec {
    op: ReduceOp,
    /// Accumulator dtype (`codegen::acc_dtype`).
    acc: DType,
    /// The output array's dtype.
    result: DType,
    /// The starting accumulator.
    ident: Slot,
}

/// A reduction over the reduced sub-space `plan` of `n` elements.
struct RedCtx<'a> {
    f: KernelFn,
    specs: &'a [RedSpec],
    plan: &'a Plan,
    n: usize,
}

impl RedCtx<'_> {
    /// Chunk `c` (fixed boundaries) reduced in blocks of `SUM_BLOCK` merged pairwise.
    fn chunk(&self, bases: &[SendConstPtr], c: usize) -> Vec<Slot> {
        let m = self.specs.len();
        let lo = c * SUM_CHUNK;
        let hi = (lo + SUM_CHUNK).min(self.n);
        let mut w = Walker::at(self.plan, bases, lo, hi);
        let mut tree = Tree::new(self.specs, m);
        let mut block: Vec<Slot> = self.specs.iter().map(|s| s.ident).collect();
        let mut pos = lo;
        while pos < hi {
            let end = (pos + SUM_BLOCK).min(hi);
            for (b, s) in block.iter_mut().zip(self.specs) {
                *b = s.ident;
            }
            while pos < end {
                let Some((at, len)) = w.next_run(end - pos) else {
                    break;
                };
                // SAFETY: the run's pointers address `len` elements of each input; the function
                // combines them into the `m` accumulator slots of `block`.
                unsafe {
                    (self.f)(
                        w.ptrs.as_ptr(),
                        self.plan.inner.as_ptr(),
                        block.as_mut_ptr() as *mut u8,
                        len,
                        at as i64,
                    );
                }
                pos += len;
            }
            tree.push(&block, 0);
        }
        tree.finish()
    }
}

/// One reduction accumulator as the compiled code reads and writes it (`codegen::SLOT`): the
/// value in the low bytes of `bits`, in the accumulator dtype, and a position (`argmin`,
/// `argmax`; -1 while empty).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Slot {
    bits: u64,
    pos: i64,
}

const _: () = assert!(std::mem::size_of::<Slot>() == SLOT);

impl Slot {
    fn of(c: Const, pos: i64) -> Slot {
        let mut b = [0u8; 8];
        // The value's bytes in its low bytes (its first `size` bytes in memory).
        let n = c.dtype().size();
        let raw = c.bits();
        match n {
            1 => b[0] = raw as u8,
            2 => b[..2].copy_from_slice(&(raw as u16).to_ne_bytes()),
            4 => b[..4].copy_from_slice(&(raw as u32).to_ne_bytes()),
            _ => b = raw.to_ne_bytes(),
        }
        Slot {
            bits: u64::from_ne_bytes(b),
            pos,
        }
    }
    /// The slot of the value whose bytes (in memory order) start `bytes`, `size` of them.
    fn from_bytes(bytes: &[u8], size: usize, pos: i64) -> Slot {
        let mut b = [0u8; 8];
        b[..size].copy_from_slice(&bytes[..size]);
        Slot {
            bits: u64::from_ne_bytes(b),
            pos,
        }
    }
    fn value(self, t: DType) -> Const {
        let b = self.bits.to_ne_bytes();
        let four = [b[0], b[1], b[2], b[3]];
        let two = [b[0], b[1]];
        match t {
            DType::Bool => Const::Bool(b[0] != 0),
            DType::I8 => Const::I8(b[0] as i8),
            DType::U8 => Const::U8(b[0]),
            DType::I16 => Const::I16(i16::from_ne_bytes(two)),
            DType::U16 => Const::U16(u16::from_ne_bytes(two)),
            DType::F16 => Const::F16(crate::f16::from_bits(u16::from_ne_bytes(two))),
            DType::I32 => Const::I32(i32::from_ne_bytes(four)),
            DType::U32 => Const::U32(u32::from_ne_bytes(four)),
            DType::F32 => Const::F32(f32::from_ne_bytes(four)),
            DType::I64 => Const::I64(i64::from_ne_bytes(b)),
            DType::U64 => Const::U64(u64::from_ne_bytes(b)),
            DType::F64 => Const::F64(f64::from_ne_bytes(b)),
        }
    }
}

/// Combine accumulator `a` with `b`, which follows it in C order (the compiled code's rules:
/// `semantics`' operators; for `argmin`/`argmax` the first extremum, the first NaN).
fn combine(s: &RedSpec, a: Slot, b: Slot) -> Slot {
    match (s.op, s.acc) {
        (ReduceOp::Sum, DType::F64) => {
            let v = f64::from_bits(a.bits) + f64::from_bits(b.bits);
            return Slot {
                bits: v.to_bits(),
                pos: a.pos,
            };
        }
        (ReduceOp::Sum, DType::I64) => {
            return Slot {
                bits: a.bits.wrapping_add(b.bits),
                pos: a.pos,
            }
        }
        _ => {}
    }
    let (x, y) = (a.value(s.acc), b.value(s.acc));
    if s.op.is_arg() {
        if a.pos < 0 {
            return b;
        }
        if b.pos < 0 {
            return a;
        }
        let nan = |c: Const| {
            matches!(c, Const::F32(v) if v.is_nan()) || matches!(c, Const::F64(v) if v.is_nan())
        };
        if nan(x) {
            return a;
        }
        if nan(y) {
            return b;
        }
        let cmp = if s.op == ReduceOp::ArgMin {
            crate::ops::BinaryOp::Lt
        } else {
            crate::ops::BinaryOp::Gt
        };
        return match semantics::fold_binary(cmp, y, x) {
            Some(Const::Bool(true)) => b,
            _ => a,
        };
    }
    match semantics::fold_binary(s.op.combine(), x, y) {
        Some(c) => Slot::of(c, a.pos),
        None => a,
    }
}

/// The output arrays of a reduction from its accumulators (`res[p * outputs + o]`).
fn results(specs: &[RedSpec], res: &[Slot], kept_shape: &[usize]) -> Vec<DynArray> {
    let m = specs.len();
    specs
        .iter()
        .enumerate()
        .map(|(o, s)| {
            let vals = res.iter().skip(o).step_by(m.max(1)).map(|slot| {
                if s.op.is_arg() {
                    Const::I64(slot.pos)
                } else {
                    semantics::cast(slot.value(s.acc), s.result)
                }
            });
            const_array(s.result, kept_shape, vals)
        })
        .collect()
}

fn const_array(t: DType, shape: &[usize], vals: impl Iterator<Item = Const>) -> DynArray {
    macro_rules! build {
        ($ty:ty, $variant:ident) => {{
            let v: Vec<$ty> = vals
                .map(|c| match c {
                    Const::$variant(x) => x,
                    _ => <$ty>::default(),
                })
                .collect();
            <$ty as Element>::wrap(
                Array::from_shape_vec(IxDyn(shape), v)
                    .expect("one value per kept position")
                    .into_shared(),
            )
        }};
    }
    match t {
        DType::Bool => build!(bool, Bool),
        DType::I32 => build!(i32, I32),
        DType::I64 => build!(i64, I64),
        DType::I8 => build!(i8, I8),
        DType::I16 => build!(i16, I16),
        DType::U8 => build!(u8, U8),
        DType::U16 => build!(u16, U16),
        DType::U32 => build!(u32, U32),
        DType::U64 => build!(u64, U64),
        DType::F16 => build!(crate::f16, F16),
        DType::F32 => build!(f32, F32),
        DType::F64 => build!(f64, F64),
    }
}

/// Pairwise merging of accumulator rows (`width` slots, slot `i` of output `i % outputs`) as a
/// binary counter: equal-level neighbours merge as soon as both exist, so memory is O(log n)
/// rows and the tree depends only on the sequence of pushed rows.
struct Tree<'a> {
    specs: &'a [RedSpec],
    width: usize,
    vals: Vec<Slot>,
    levels: Vec<u32>,
}

impl<'a> Tree<'a> {
    fn new(specs: &'a [RedSpec], width: usize) -> Tree<'a> {
        Tree {
            specs,
            width,
            vals: Vec::new(),
            levels: Vec::new(),
        }
    }
    /// Merge row `hi` into row `lo` (which comes first).
    fn merge(&mut self, lo: usize, hi: usize) {
        let w = self.width;
        let (head, tail) = self.vals.split_at_mut(hi * w);
        let rows = head[lo * w..(lo + 1) * w].iter_mut().zip(&tail[..w]);
        for ((a, b), s) in rows.zip(self.specs.iter().cycle()) {
            *a = combine(s, *a, *b);
        }
    }
    fn push(&mut self, row: &[Slot], level: u32) {
        self.vals.extend_from_slice(row);
        self.levels.push(level);
        let mut len = self.levels.len();
        while len >= 2 && self.levels[len - 1] == self.levels[len - 2] {
            self.merge(len - 2, len - 1);
            self.levels[len - 2] += 1;
            self.levels.pop();
            self.vals.truncate((len - 1) * self.width);
            len -= 1;
        }
    }
    /// Fold what is left, smallest (most recent) first.
    fn finish(mut self) -> Vec<Slot> {
        let len = self.levels.len();
        for k in (0..len.saturating_sub(1)).rev() {
            self.merge(k, k + 1);
            self.vals.truncate((k + 1) * self.width);
        }
        self.vals
    }
}

/// A fresh output array of any dtype, before it is written.
enum OutBuf {
    Bool(Array<MaybeUninit<bool>, IxDyn>),
    I32(Array<MaybeUninit<i32>, IxDyn>),
    I64(Array<MaybeUninit<i64>, IxDyn>),
    I8(Array<MaybeUninit<i8>, IxDyn>),
    I16(Array<MaybeUninit<i16>, IxDyn>),
    U8(Array<MaybeUninit<u8>, IxDyn>),
    U16(Array<MaybeUninit<u16>, IxDyn>),
    U32(Array<MaybeUninit<u32>, IxDyn>),
    U64(Array<MaybeUninit<u64>, IxDyn>),
    F16(Array<MaybeUninit<crate::f16>, IxDyn>),
    F32(Array<MaybeUninit<f32>, IxDyn>),
    F64(Array<MaybeUninit<f64>, IxDyn>),
}

impl OutBuf {
    fn new(t: DType, shape: &[usize], n: usize) -> OutBuf {
        match t {
            DType::Bool => OutBuf::Bool(uninit_output(shape, n)),
            DType::I32 => OutBuf::I32(uninit_output(shape, n)),
            DType::I64 => OutBuf::I64(uninit_output(shape, n)),
            DType::I8 => OutBuf::I8(uninit_output(shape, n)),
            DType::I16 => OutBuf::I16(uninit_output(shape, n)),
            DType::U8 => OutBuf::U8(uninit_output(shape, n)),
            DType::U16 => OutBuf::U16(uninit_output(shape, n)),
            DType::U32 => OutBuf::U32(uninit_output(shape, n)),
            DType::U64 => OutBuf::U64(uninit_output(shape, n)),
            DType::F16 => OutBuf::F16(uninit_output(shape, n)),
            DType::F32 => OutBuf::F32(uninit_output(shape, n)),
            DType::F64 => OutBuf::F64(uninit_output(shape, n)),
        }
    }
    fn ptr(&mut self) -> *mut u8 {
        match self {
            OutBuf::Bool(a) => a.as_mut_ptr() as *mut u8,
            OutBuf::I32(a) => a.as_mut_ptr() as *mut u8,
            OutBuf::I64(a) => a.as_mut_ptr() as *mut u8,
            OutBuf::I8(a) => a.as_mut_ptr() as *mut u8,
            OutBuf::I16(a) => a.as_mut_ptr() as *mut u8,
            OutBuf::U8(a) => a.as_mut_ptr() as *mut u8,
            OutBuf::U16(a) => a.as_mut_ptr() as *mut u8,
            OutBuf::U32(a) => a.as_mut_ptr() as *mut u8,
            OutBuf::U64(a) => a.as_mut_ptr() as *mut u8,
            OutBuf::F16(a) => a.as_mut_ptr() as *mut u8,
            OutBuf::F32(a) => a.as_mut_ptr() as *mut u8,
            OutBuf::F64(a) => a.as_mut_ptr() as *mut u8,
        }
    }
    /// # Safety
    /// Every element must have been written with a valid value of the dtype.
    unsafe fn finish(self) -> DynArray {
        // SAFETY: guaranteed by the caller.
        unsafe {
            match self {
                OutBuf::Bool(a) => bool::wrap(a.assume_init().into_shared()),
                OutBuf::I32(a) => i32::wrap(a.assume_init().into_shared()),
                OutBuf::I64(a) => i64::wrap(a.assume_init().into_shared()),
                OutBuf::I8(a) => i8::wrap(a.assume_init().into_shared()),
                OutBuf::I16(a) => i16::wrap(a.assume_init().into_shared()),
                OutBuf::U8(a) => u8::wrap(a.assume_init().into_shared()),
                OutBuf::U16(a) => u16::wrap(a.assume_init().into_shared()),
                OutBuf::U32(a) => u32::wrap(a.assume_init().into_shared()),
                OutBuf::U64(a) => u64::wrap(a.assume_init().into_shared()),
                OutBuf::F16(a) => crate::f16::wrap(a.assume_init().into_shared()),
                OutBuf::F32(a) => f32::wrap(a.assume_init().into_shared()),
                OutBuf::F64(a) => f64::wrap(a.assume_init().into_shared()),
            }
        }
    }
}

/// A raw pointer that may cross threads (the code using it keeps accesses disjoint).
#[derive(Clone, Copy)]
struct SendPtr(*mut u8);
impl SendPtr {
    /// `self + bytes` (a method, so closures capture the whole `SendPtr`).
    ///
    /// # Safety
    /// The result must stay inside the allocation `self` points into.
    unsafe fn at(self, bytes: usize) -> *mut u8 {
        // SAFETY: guaranteed by the caller.
        unsafe { self.0.add(bytes) }
    }
}
// SAFETY: only used for the output buffers, whose parts written by different threads are
// disjoint (see `CpuBackend::store`).
unsafe impl Send for SendPtr {}
// SAFETY: as above.
unsafe impl Sync for SendPtr {}

/// The iteration space after broadcasting and coalescing.
struct Plan {
    /// Coalesced dimensions, outermost first (at least one).
    dims: Inline<usize>,
    /// Per input: byte stride of each coalesced dimension.
    strides: Inline<Inline<isize>>,
    /// Per input: byte stride of the innermost dimension (what the compiled code gets).
    inner: Inline<isize>,
    /// Per input: address of element `[0, 0, ...]`.
    bases: Inline<SendConstPtr>,
}

/// Inputs and outputs of a kernel call on [`CpuBackend::store_flat`]'s path, at most.
const FLAT_MAX: usize = 8;

/// The addresses and inner byte steps of `inputs` for one kernel call over all of `shape`
/// (the flat paths of [`CpuBackend::store_flat`] and `run_into`): each input is C-contiguous
/// with that shape (step: its element size) or a single element (step 0, broadcast). `None`
/// when an input is laid out otherwise or there are more than [`FLAT_MAX`].
fn flat_inputs(
    inputs: &[ArgView<'_>],
    shape: &[usize],
) -> Option<([*const u8; FLAT_MAX], [isize; FLAT_MAX])> {
    if inputs.len() > FLAT_MAX {
        return None;
    }
    let mut ptrs = [std::ptr::null::<u8>(); FLAT_MAX];
    let mut inner = [0isize; FLAT_MAX];
    for (j, a) in inputs.iter().enumerate() {
        inner[j] = if a.len() == 1 {
            0
        } else if a.shape() == shape && a.is_standard_layout() {
            a.dtype().size() as isize
        } else {
            return None;
        };
        ptrs[j] = a.as_ptr();
    }
    Some((ptrs, inner))
}

/// A per-input, per-output or per-dimension list: up to four entries live inline, so a call on
/// a few arrays of at most four dimensions allocates nothing for its bookkeeping (the small-array
/// path: only the outputs are allocated).
type Inline<T> = smallvec::SmallVec<[T; 4]>;

#[derive(Clone, Copy)]
struct SendConstPtr(*const u8);
// SAFETY: inputs are only read, and the borrow they come from outlives `run`.
unsafe impl Send for SendConstPtr {}
// SAFETY: as above.
unsafe impl Sync for SendConstPtr {}

/// The byte strides of `a` broadcast to `out_shape` (0 along broadcast dimensions).
fn broadcast_byte_strides(a: &ArgView<'_>, out_shape: &[usize]) -> Inline<isize> {
    let size = a.dtype().size() as isize;
    let mut s = broadcast_strides(a.shape(), a.strides(), out_shape);
    for st in &mut s {
        *st *= size;
    }
    s
}

impl Plan {
    fn new(inputs: &[ArgView<'_>], out_shape: &[usize]) -> Plan {
        let byte_strides: Inline<Inline<isize>> = inputs
            .iter()
            .map(|a| broadcast_byte_strides(a, out_shape))
            .collect();
        let bases = inputs.iter().map(|a| SendConstPtr(a.as_ptr())).collect();
        Plan::from_parts(out_shape, byte_strides, bases)
    }

    /// The plan of the space `shape` where input `j` starts at `bases[j]` and steps
    /// `byte_strides[j][d]` bytes along dimension `d`.
    fn from_parts(
        shape: &[usize],
        byte_strides: Inline<Inline<isize>>,
        bases: Inline<SendConstPtr>,
    ) -> Plan {
        let nd = shape.len();
        // Drop size-1 dimensions, then merge a dimension into the next inner one wherever every
        // input steps over it as one: stride[d] == stride[d + 1] * shape[d + 1]. (The output is
        // C-contiguous, which always allows the merge.)
        let mut dims: Inline<usize> = Inline::with_capacity(nd);
        let mut strides: Inline<Inline<isize>> =
            smallvec::smallvec![Inline::with_capacity(nd); byte_strides.len()];
        for d in 0..nd {
            if shape[d] == 1 {
                continue;
            }
            let mergeable = !dims.is_empty()
                && byte_strides
                    .iter()
                    .zip(&strides)
                    .all(|(bs, cs)| *cs.last().unwrap_or(&0) == bs[d] * shape[d] as isize);
            if mergeable {
                let last = dims.len() - 1;
                dims[last] *= shape[d];
                for (bs, cs) in byte_strides.iter().zip(strides.iter_mut()) {
                    cs[last] = bs[d];
                }
            } else {
                dims.push(shape[d]);
                for (bs, cs) in byte_strides.iter().zip(strides.iter_mut()) {
                    cs.push(bs[d]);
                }
            }
        }
        if dims.is_empty() {
            dims.push(1);
            for cs in strides.iter_mut() {
                cs.push(0);
            }
        }
        let inner = strides.iter().map(|cs| *cs.last().unwrap_or(&0)).collect();
        Plan {
            dims,
            strides,
            inner,
            bases,
        }
    }

    /// Per input: the byte offset of flat position `flat`.
    fn offsets(&self, flat: usize) -> Inline<isize> {
        let mut offs: Inline<isize> = smallvec::smallvec![0isize; self.strides.len()];
        let mut rest = flat;
        for d in (0..self.dims.len()).rev() {
            let i = (rest % self.dims[d]) as isize;
            rest /= self.dims[d];
            for (o, s) in offs.iter_mut().zip(&self.strides) {
                *o += i * s[d];
            }
        }
        offs
    }

    /// The bases moved by `offs` bytes (missing offsets: unmoved).
    fn bases_at(&self, offs: &[isize]) -> Inline<SendConstPtr> {
        self.bases
            .iter()
            .enumerate()
            .map(|(j, b)| SendConstPtr(b.0.wrapping_offset(offs.get(j).copied().unwrap_or(0))))
            .collect()
    }
}

/// Walks the flat range `pos..hi` of a plan in runs along the innermost dimension.
struct Walker<'p> {
    plan: &'p Plan,
    bases: Inline<*const u8>,
    idx: Inline<usize>,
    pos: usize,
    hi: usize,
    /// Per input: address of the current run's first element.
    ptrs: Inline<*const u8>,
}

impl<'p> Walker<'p> {
    fn new(plan: &'p Plan, lo: usize, hi: usize) -> Walker<'p> {
        Walker::at(plan, &plan.bases, lo, hi)
    }

    /// A walker over `plan` whose inputs start at `bases` instead of the plan's.
    fn at(plan: &'p Plan, bases: &[SendConstPtr], lo: usize, hi: usize) -> Walker<'p> {
        let mut idx: Inline<usize> = smallvec::smallvec![0; plan.dims.len()];
        let mut rest = lo;
        for d in (0..plan.dims.len()).rev() {
            idx[d] = rest % plan.dims[d];
            rest /= plan.dims[d];
        }
        Walker {
            plan,
            bases: bases.iter().map(|b| b.0).collect(),
            idx,
            pos: lo,
            hi,
            ptrs: smallvec::smallvec![std::ptr::null(); bases.len()],
        }
    }

    /// The next run of at most `max` elements: sets `ptrs`, returns `(flat position, length)`.
    fn next_run(&mut self, max: usize) -> Option<(usize, usize)> {
        if self.pos >= self.hi {
            return None;
        }
        let plan = self.plan;
        for (j, p) in self.ptrs.iter_mut().enumerate() {
            let off: isize = self
                .idx
                .iter()
                .zip(&plan.strides[j])
                .map(|(i, s)| *i as isize * s)
                .sum();
            // The offset addresses an element inside input j (broadcast index math), so the
            // wrapping add never actually wraps.
            *p = self.bases[j].wrapping_offset(off);
        }
        let last = plan.dims.len() - 1;
        let len = (plan.dims[last] - self.idx[last])
            .min(self.hi - self.pos)
            .min(max);
        let at = self.pos;
        self.pos += len;
        self.idx[last] += len;
        let mut d = last;
        while d > 0 && self.idx[d] == plan.dims[d] {
            self.idx[d] = 0;
            d -= 1;
            self.idx[d] += 1;
        }
        Some((at, len))
    }
}

impl std::fmt::Debug for CpuKernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CpuKernel(simd: {}) {}", self.code.simd, self.kernel)
    }
}

#[allow(dead_code)]
fn assert_send_sync() {
    fn is<T: Send + Sync>() {}
    is::<CpuBackend>();
    is::<CpuKernel>();
}
