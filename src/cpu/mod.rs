//! The CPU backend: kernels compiled to machine code with Cranelift, run over ndarray memory
//! by a driver that walks the iteration space in contiguous runs, on a rayon pool for large
//! arrays.
//!
//! Pieces, in the order a call goes through them:
//! - [`CpuBackend::compile`] verifies a [`Kernel`], then looks it up in a cache keyed by
//!   [`Kernel::fingerprint`] (confirmed by full equality) or compiles it (`codegen`); the cache
//!   is bounded (LRU, [`CpuBackend::set_cache_capacity`]) and compiles each kernel once even
//!   when threads ask for it together;
//! - [`CpuBackend::run`] checks the arguments, computes each input's byte strides broadcast to
//!   the output shape, coalesces dimensions (a contiguous array of any rank becomes one run),
//!   and calls the compiled function once per inner run. Large iteration spaces are split into
//!   contiguous chunks handled by the pool's threads.
//!
//! Architecture invariants: the backend sees only verified kernel IR (never `Expr`); compiled
//! code never traps (integer division by zero and `MIN / -1` are guarded); sums do not depend on
//! the number of threads (blocks and chunks have fixed boundaries, merged pairwise).
mod codegen;
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
use crate::kir::{Kernel, Output};
use codegen::Compiled;
use cranelift_codegen::isa::OwnedTargetIsa;
use cranelift_codegen::settings::{self, Configurable};
use ndarray::{Array, IxDyn};
use rayon::prelude::*;
use std::sync::Arc;

/// Below this many elements a kernel runs on the calling thread: handing work to the pool costs
/// a few microseconds, about what 2^16 cheap element operations take. (A later issue measures
/// it per kernel cost.)
pub const PARALLEL_THRESHOLD: usize = 1 << 16;
/// Reductions add up blocks of this many consecutive elements (the flat index decides the
/// block), then merge block sums pairwise, like NumPy's pairwise summation.
const SUM_BLOCK: usize = 128;
/// Reductions split the iteration space into chunks of this many elements (a power-of-two
/// number of blocks) wherever they run, so the result does not depend on the thread count.
const SUM_CHUNK_LOG2: u32 = 9;
const SUM_CHUNK: usize = SUM_BLOCK << SUM_CHUNK_LOG2;

/// Compiled-kernel cache and thread pool.
pub struct CpuBackend {
    isa: OwnedTargetIsa,
    threads: usize,
    pool: Option<rayon::ThreadPool>,
    /// Bounded LRU cache keyed by the kernel IR (see [`crate::cache`]).
    cache: KernelCache<Kernel, Arc<CpuKernel>>,
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

/// The compiled function's type (see `codegen`'s module docs).
type KernelFn = unsafe extern "C" fn(*const *const u8, *const isize, *mut u8, usize);

impl CpuBackend {
    /// A backend running on `threads` threads; `threads = 0` means all cores.
    pub fn new(threads: usize) -> Result<CpuBackend> {
        let threads = if threads == 0 {
            num_cpus::get().max(1)
        } else {
            threads
        };
        let mut flags = settings::builder();
        let set = |f: &mut settings::Builder, k: &str, v: &str| {
            f.set(k, v)
                .map_err(|e| Error::Compile(format!("Cranelift flag {k}={v}: {e}")))
        };
        set(&mut flags, "opt_level", "speed")?;
        set(&mut flags, "use_colocated_libcalls", "false")?;
        set(&mut flags, "is_pic", "false")?;
        let isa = cranelift_native::builder()
            .map_err(|e| Error::Device(format!("this CPU is not supported by Cranelift: {e}")))?
            .finish(settings::Flags::new(flags))
            .map_err(|e| Error::Compile(e.to_string()))?;
        let pool = if threads > 1 {
            Some(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .thread_name(|i| format!("fusebox-cpu-{i}"))
                    .build()
                    .map_err(|e| Error::Device(format!("cannot start {threads} threads: {e}")))?,
            )
        } else {
            None
        };
        Ok(CpuBackend {
            isa,
            threads,
            pool,
            cache: KernelCache::new(crate::cache::default_capacity()),
        })
    }

    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Verify, then compile `kernel` or return the cached compilation of an equal kernel.
    /// Threads asking for the same kernel at once share one compilation.
    pub fn compile(&self, kernel: &Kernel) -> Result<Arc<CpuKernel>> {
        kernel.verify()?;
        if kernel.outputs.len() != 1
            || matches!(kernel.output(), crate::kir::Output::Reduce { op, .. } if op != crate::ops::ReduceOp::Sum)
        {
            return Err(Error::Compile(
                "this backend does not compile multi-output kernels or reductions other than sum yet"
                    .into(),
            ));
        }
        let key = kernel.fingerprint();
        let (k, _hit) = self
            .cache
            .get_or_compile(key, kernel, || self.compile_uncached(kernel))?;
        Ok(k)
    }

    fn compile_uncached(&self, kernel: &Kernel) -> Result<Arc<CpuKernel>> {
        // The SIMD variant can fail where Cranelift has no lowering for some vector
        // instruction; the scalar-only function always works.
        // exp/log become primitive instructions, so they run in the SIMD loop (see mathlib).
        let lowered = crate::mathlib::expand(kernel);
        lowered.verify()?;
        let code = match codegen::simd_width(&lowered) {
            Some(w) => codegen::compile(&self.isa, &lowered, Some(w))
                .or_else(|_| codegen::compile(&self.isa, &lowered, None))?,
            None => codegen::compile(&self.isa, &lowered, None)?,
        };
        Ok(Arc::new(CpuKernel {
            kernel: kernel.clone(),
            code,
        }))
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
        k.kernel.check_axes(axes, shape.len())?;
        if k.kernel.is_reduction() && axes.len() != shape.len() {
            return Err(Error::Compile(
                "the CPU backend does not reduce along some axes yet".into(),
            ));
        }
        Ok(vec![self.run(k, inputs, shape)?])
    }

    /// Run `k` over the iteration space `out_shape` (see the module docs).
    pub fn run(
        &self,
        k: &CpuKernel,
        inputs: &[ArgView<'_>],
        out_shape: &[usize],
    ) -> Result<DynArray> {
        let kernel = &k.kernel;
        kernel.check_args(inputs, out_shape)?;
        let out_dt = kernel.output_dtype();
        let n = checked_len(out_shape, out_dt.size())?;
        let plan = Plan::new(inputs, out_shape);
        // SAFETY (for both calls): the function was compiled from `kernel`, whose inputs have
        // the dtypes checked above; the plan's pointers and strides stay inside the inputs.
        let f: KernelFn = unsafe { std::mem::transmute::<*const u8, KernelFn>(k.code.code) };
        match kernel.output() {
            Output::Store { .. } => match out_dt {
                DType::Bool => self.store::<bool>(f, &plan, n, out_shape),
                DType::I32 => self.store::<i32>(f, &plan, n, out_shape),
                DType::I64 => self.store::<i64>(f, &plan, n, out_shape),
                DType::F32 => self.store::<f32>(f, &plan, n, out_shape),
                DType::F64 => self.store::<f64>(f, &plan, n, out_shape),
            },
            Output::Reduce { .. } => Ok(match out_dt {
                DType::F32 => scalar_array(self.sum::<f64>(f, &plan, n) as f32),
                DType::F64 => scalar_array(self.sum::<f64>(f, &plan, n)),
                _ => scalar_array(self.sum::<i64>(f, &plan, n)),
            }),
        }
    }

    fn store<T: Element>(
        &self,
        f: KernelFn,
        plan: &Plan,
        n: usize,
        shape: &[usize],
    ) -> Result<DynArray> {
        let mut out = uninit_output::<T>(shape, n);
        let base = SendPtr(out.as_mut_ptr() as *mut u8);
        let size = std::mem::size_of::<T>();
        let fill = |lo: usize, hi: usize| {
            let mut w = Walker::new(plan, lo, hi);
            while let Some((pos, len)) = w.next_run(usize::MAX) {
                // SAFETY: `pos + len <= n`, the output holds `n` elements of `size` bytes, and
                // the pointers in `w.ptrs` address `len` elements of each input at its stride.
                unsafe {
                    f(
                        w.ptrs.as_ptr(),
                        plan.inner.as_ptr(),
                        base.at(pos * size),
                        len,
                    );
                }
            }
        };
        match &self.pool {
            Some(pool) if n >= PARALLEL_THRESHOLD => {
                // Ranges are disjoint, so the threads write disjoint parts of the output.
                let chunks = (self.threads * 4)
                    .min(n.div_ceil(PARALLEL_THRESHOLD / 4))
                    .max(1);
                let per = n.div_ceil(chunks);
                pool.install(|| {
                    (0..chunks)
                        .into_par_iter()
                        .for_each(|c| fill((c * per).min(n), ((c + 1) * per).min(n)))
                });
            }
            _ if n > 0 => fill(0, n),
            _ => {}
        }
        // SAFETY: every flat index in 0..n was written by exactly one run above (the runs of
        // the walkers tile 0..n), and the compiled code writes valid values of T (bool as 0/1).
        let out = unsafe { out.assume_init() };
        Ok(T::wrap(out.into_shared()))
    }

    fn sum<A: Accum>(&self, f: KernelFn, plan: &Plan, n: usize) -> A {
        let chunk_sum = |c: usize| -> A {
            let lo = c * SUM_CHUNK;
            let hi = (lo + SUM_CHUNK).min(n);
            let mut w = Walker::new(plan, lo, hi);
            let mut stack = Pairwise::<A>::new();
            let mut pos = lo;
            while pos < hi {
                let end = (pos + SUM_BLOCK).min(hi);
                let mut block = A::ZERO;
                while pos < end {
                    let Some((_, len)) = w.next_run(end - pos) else {
                        break;
                    };
                    let mut part = A::ZERO;
                    // SAFETY: the run's pointers address `len` elements of each input; the
                    // function writes one accumulator (f64 or i64, matching A) at `part`.
                    unsafe {
                        f(
                            w.ptrs.as_ptr(),
                            plan.inner.as_ptr(),
                            &mut part as *mut A as *mut u8,
                            len,
                        );
                    }
                    block = block.add(part);
                    pos += len;
                }
                stack.push(block, 0);
            }
            stack.finish()
        };
        let chunks = n.div_ceil(SUM_CHUNK);
        let partials: Vec<A> = match &self.pool {
            Some(pool) if n >= PARALLEL_THRESHOLD => {
                pool.install(|| (0..chunks).into_par_iter().map(chunk_sum).collect())
            }
            _ => (0..chunks).map(chunk_sum).collect(),
        };
        // Merge chunk sums with the same pairwise tree a single pass over all blocks builds:
        // full chunks enter at their level, the last (partial) one is already folded.
        let mut stack = Pairwise::<A>::new();
        for (c, p) in partials.into_iter().enumerate() {
            let full = (c + 1) * SUM_CHUNK <= n;
            stack.push(p, if full { SUM_CHUNK_LOG2 } else { 0 });
        }
        stack.finish()
    }
}

fn scalar_array<T: Element>(x: T) -> DynArray {
    T::wrap(ndarray::arr0(x).into_dyn().into_shared())
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
// SAFETY: only used for the output buffer, whose parts written by different threads are
// disjoint (see `CpuBackend::store`).
unsafe impl Send for SendPtr {}
// SAFETY: as above.
unsafe impl Sync for SendPtr {}

/// The iteration space after broadcasting and coalescing.
struct Plan {
    /// Coalesced dimensions, outermost first (at least one).
    dims: Vec<usize>,
    /// Per input: byte stride of each coalesced dimension.
    strides: Vec<Vec<isize>>,
    /// Per input: byte stride of the innermost dimension (what the compiled code gets).
    inner: Vec<isize>,
    /// Per input: address of element `[0, 0, ...]`.
    bases: Vec<SendConstPtr>,
}

#[derive(Clone, Copy)]
struct SendConstPtr(*const u8);
// SAFETY: inputs are only read, and the borrow they come from outlives `run`.
unsafe impl Send for SendConstPtr {}
// SAFETY: as above.
unsafe impl Sync for SendConstPtr {}

impl Plan {
    fn new(inputs: &[ArgView<'_>], out_shape: &[usize]) -> Plan {
        let nd = out_shape.len();
        let byte_strides: Vec<Vec<isize>> = inputs
            .iter()
            .map(|a| {
                let size = a.dtype().size() as isize;
                broadcast_strides(a.shape(), a.strides(), out_shape)
                    .into_iter()
                    .map(|s| s * size)
                    .collect()
            })
            .collect();
        // Drop size-1 dimensions, then merge a dimension into the next inner one wherever every
        // input steps over it as one: stride[d] == stride[d + 1] * shape[d + 1]. (The output is
        // C-contiguous, which always allows the merge.)
        let mut dims: Vec<usize> = Vec::with_capacity(nd);
        let mut strides: Vec<Vec<isize>> = vec![Vec::with_capacity(nd); inputs.len()];
        for d in 0..nd {
            if out_shape[d] == 1 {
                continue;
            }
            let mergeable = !dims.is_empty()
                && byte_strides
                    .iter()
                    .zip(&strides)
                    .all(|(bs, cs)| *cs.last().unwrap_or(&0) == bs[d] * out_shape[d] as isize);
            if mergeable {
                let last = dims.len() - 1;
                dims[last] *= out_shape[d];
                for (bs, cs) in byte_strides.iter().zip(strides.iter_mut()) {
                    cs[last] = bs[d];
                }
            } else {
                dims.push(out_shape[d]);
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
        let bases = inputs.iter().map(|a| SendConstPtr(a.as_ptr())).collect();
        Plan {
            dims,
            strides,
            inner,
            bases,
        }
    }
}

/// Walks the flat range `pos..hi` of a plan in runs along the innermost dimension.
struct Walker<'p> {
    plan: &'p Plan,
    idx: Vec<usize>,
    pos: usize,
    hi: usize,
    /// Per input: address of the current run's first element.
    ptrs: Vec<*const u8>,
}

impl<'p> Walker<'p> {
    fn new(plan: &'p Plan, lo: usize, hi: usize) -> Walker<'p> {
        let mut idx = vec![0; plan.dims.len()];
        let mut rest = lo;
        for d in (0..plan.dims.len()).rev() {
            idx[d] = rest % plan.dims[d];
            rest /= plan.dims[d];
        }
        Walker {
            plan,
            idx,
            pos: lo,
            hi,
            ptrs: vec![std::ptr::null(); plan.bases.len()],
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
            *p = plan.bases[j].0.wrapping_offset(off);
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

/// Accumulator types of reductions.
trait Accum: Copy + Send + Sync + 'static {
    const ZERO: Self;
    fn add(self, other: Self) -> Self;
}
impl Accum for f64 {
    const ZERO: f64 = 0.0;
    fn add(self, other: f64) -> f64 {
        self + other
    }
}
impl Accum for i64 {
    const ZERO: i64 = 0;
    fn add(self, other: i64) -> i64 {
        self.wrapping_add(other)
    }
}

/// Pairwise summation as a binary counter: equal-level neighbours merge as soon as both exist,
/// so memory is O(log n) and the tree depends only on the sequence of pushed values.
struct Pairwise<A> {
    vals: [A; 64],
    levels: [u32; 64],
    len: usize,
}

impl<A: Accum> Pairwise<A> {
    fn new() -> Self {
        Pairwise {
            vals: [A::ZERO; 64],
            levels: [0; 64],
            len: 0,
        }
    }
    fn push(&mut self, v: A, level: u32) {
        self.vals[self.len] = v;
        self.levels[self.len] = level;
        self.len += 1;
        while self.len >= 2 && self.levels[self.len - 1] == self.levels[self.len - 2] {
            self.vals[self.len - 2] = self.vals[self.len - 2].add(self.vals[self.len - 1]);
            self.levels[self.len - 2] += 1;
            self.len -= 1;
        }
    }
    /// Fold what is left, smallest (most recent) first.
    fn finish(&self) -> A {
        let mut acc = A::ZERO;
        for k in (0..self.len).rev() {
            acc = if k + 1 == self.len {
                self.vals[k]
            } else {
                self.vals[k].add(acc)
            };
        }
        acc
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
