//! Facts about the execution targets that the layers above the backends need, as data and pure
//! rules: the size of an element in GPU memory, the CPU backend's rule for when its thread pool
//! pays. The cost model reads them here instead of importing a backend; the backends apply the
//! same functions, so the model and the device cannot drift apart.
use crate::dtype::DType;

/// Element size of a dtype inside shaders (bool is a u32).
pub fn device_size(t: DType) -> usize {
    match t {
        DType::Bool => 4,
        t => t.size(),
    }
}

/// Whether `work_s` seconds of single-threaded work, split over `threads`, finishes sooner on
/// the pool, by a margin of one hand-off: the time saved, `work_s * (1 - 1/threads)`, must be
/// at least `2 * handoff_s`.
pub fn pool_pays(work_s: f64, threads: usize, handoff_s: f64) -> bool {
    threads > 1 && work_s * (1.0 - 1.0 / threads as f64) >= 2.0 * handoff_s
}
