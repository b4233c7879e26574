//! Facts about the execution targets that the layers above the backends need, as data and pure
//! rules: the size of an element in GPU memory, the CPU backend's rule for when its thread pool
//! pays. The cost model reads them here instead of importing a backend; the backends apply the
//! same functions, so the model and the device cannot drift apart. The host's features
//! (fused multiply-add) are read here too, so that the math expansions can choose their variant
//! without importing the JIT.
use crate::dtype::DType;

/// Element size of a dtype inside shaders (bool is a u32).
pub fn device_size(t: DType) -> usize {
    match t {
        DType::Bool => 4,
        t => t.size(),
    }
}

/// Bytes of one chunk of the GPU's streamed host path (per array): kernels of stores on host
/// data go through a ring of staging buffers in chunks of this size, so that the upload of
/// one chunk, the compute of the previous and the download of the one before overlap. The
/// cost model counts the overlap with the same figure.
pub const GPU_STREAM_CHUNK_BYTES: u64 = 16 << 20;

/// Chunks of [`GPU_STREAM_CHUNK_BYTES`] that `bytes` of one array take (at least 1).
pub fn stream_chunks(bytes: u64) -> u64 {
    bytes.div_ceil(GPU_STREAM_CHUNK_BYTES).max(1)
}

/// Whether `work_s` seconds of single-threaded work, split over `threads`, finishes sooner on
/// the pool, by a margin of one hand-off: the time saved, `work_s * (1 - 1/threads)`, must be
/// at least `2 * handoff_s`.
pub fn pool_pays(work_s: f64, threads: usize, handoff_s: f64) -> bool {
    threads > 1 && work_s * (1.0 - 1.0 / threads as f64) >= 2.0 * handoff_s
}

/// Whether this machine has an exact, fast fused multiply-add that the JIT uses (x86-64: FMA3
/// and AVX, the features Cranelift's native ISA detection turns on; AArch64 always has it), so
/// that [`crate::mathlib::Target::host`] lets the math expansions use
/// [`crate::kir::Inst::Fma`]. Detected once. The JIT checks its own ISA flags, which are
/// detected from the same CPU features.
pub fn host_has_fma() -> bool {
    static FMA: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *FMA.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            std::arch::is_x86_feature_detected!("fma") && std::arch::is_x86_feature_detected!("avx")
        }
        #[cfg(target_arch = "aarch64")]
        {
            true
        }
        #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
        {
            false
        }
    })
}
