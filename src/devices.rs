//! The backends a session has opened: the CPU JIT and GPU adapters by index, each opened on
//! first use, and the session's counters ([`Stats`]). The placer ([`crate::place`]) asks what
//! is open and cached here; the executor ([`crate::exec`]) runs kernels on what it gets here.
//!
//! GPU adapters are listed once per process ([`adapters`]), and only when a GPU can be a
//! candidate: listing them loads drivers.
use crate::cpu::CpuBackend;
use crate::error::{Error, Result};
use crate::gpu::{AdapterInfo, GpuBackend};
use crate::kir::Kernel;
use crate::options::Device;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// What actually happened in a session (counters only grow).
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Stats {
    /// Plans built (lowering + optimization + partition).
    pub plans: u64,
    /// Plans taken from a plan cache instead (a `compute*` call on an expression the session
    /// has seen with the same bindings; a compiled function's call with shapes it has seen).
    pub plans_reused: u64,
    /// Plans a compiled function derived for new lengths from a plan of the same ranks, which
    /// dims are 0 or 1, and which are equal ([`crate::Compiled`]): the same steps and
    /// compiled kernels with the sizes re-derived, without lowering, optimizing or compiling.
    pub plans_resized: u64,
    pub kernels_launched: u64,
    /// Bytes kernels read from their inputs (each input counted once per launch).
    pub bytes_read: u64,
    /// Bytes kernels wrote to their outputs.
    pub bytes_written: u64,
    /// Kernel compilations, and compile requests answered from a cache (the backend's kernel
    /// cache, or a cached plan's kernels: one per kernel of the plan).
    pub compilations: u64,
    pub cache_hits: u64,
    /// Kernels dropped from the backends' bounded caches (LRU; see [`crate::cache`]).
    pub evictions: u64,
    /// Wall time spent running kernels on the CPU.
    pub cpu_time: Duration,
    /// Wall time spent running kernels on the GPU (uploads and read-backs included).
    pub gpu_time: Duration,
    /// Bytes copied host -> GPU and GPU -> host.
    pub bytes_uploaded: u64,
    pub bytes_downloaded: u64,
    /// Plans `Device::Auto` placed on the CPU and on a GPU.
    pub auto_cpu: u64,
    pub auto_gpu: u64,
    /// Plans `Device::Auto` had placed on a GPU that failed there (shader rejected, device
    /// lost, out of memory) and ran on the CPU instead.
    pub gpu_fallbacks: u64,
}

impl Stats {
    /// The counters as one JSON object (times in seconds), for `fusebox eval --stats`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "plans": self.plans,
            "plans_reused": self.plans_reused,
            "plans_resized": self.plans_resized,
            "kernels_launched": self.kernels_launched,
            "bytes_read": self.bytes_read,
            "bytes_written": self.bytes_written,
            "compilations": self.compilations,
            "cache_hits": self.cache_hits,
            "evictions": self.evictions,
            "cpu_time_s": self.cpu_time.as_secs_f64(),
            "gpu_time_s": self.gpu_time.as_secs_f64(),
            "bytes_uploaded": self.bytes_uploaded,
            "bytes_downloaded": self.bytes_downloaded,
            "auto_cpu": self.auto_cpu,
            "auto_gpu": self.auto_gpu,
            "gpu_fallbacks": self.gpu_fallbacks,
        })
    }
}

/// GPU adapters a session can open (by index, as listed by `fusebox devices`).
pub const MAX_GPUS: usize = 8;

/// The GPU adapters, enumerated once per process (listing them loads drivers: milliseconds).
pub fn adapters() -> &'static [AdapterInfo] {
    static LIST: OnceLock<Vec<AdapterInfo>> = OnceLock::new();
    LIST.get_or_init(crate::gpu::adapters)
}

/// A session's backends, opened lazily, and its counters.
pub(crate) struct Devices {
    threads: usize,
    cpu: OnceLock<Result<CpuBackend>>,
    /// GPU adapters by index, each opened on first use.
    gpus: Vec<OnceLock<Result<GpuBackend>>>,
    stats: Mutex<Stats>,
}

impl Devices {
    /// No backend opened yet; the CPU will run `threads` threads (0: all cores).
    pub fn new(threads: usize) -> Devices {
        Devices {
            threads,
            cpu: OnceLock::new(),
            gpus: (0..MAX_GPUS).map(|_| OnceLock::new()).collect(),
            stats: Mutex::new(Stats::default()),
        }
    }

    /// The CPU backend (opened on first use).
    pub fn cpu(&self) -> Result<&CpuBackend> {
        self.cpu
            .get_or_init(|| CpuBackend::new(self.threads))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The GPU backend of adapter `index` (opened on first use).
    pub fn gpu(&self, index: usize) -> Result<&GpuBackend> {
        let slot = self.gpus.get(index).ok_or_else(|| Error::Device {
            message: format!(
                "no GPU adapter with index {index} (a session opens adapters 0 to {})",
                MAX_GPUS - 1
            ),
        })?;
        slot.get_or_init(|| GpuBackend::new(index))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The CPU backend if it is open (opens nothing).
    pub fn open_cpu(&self) -> Option<&CpuBackend> {
        match self.cpu.get() {
            Some(Ok(c)) => Some(c),
            _ => None,
        }
    }

    /// GPU `index` if it is open (opens nothing).
    pub fn open_gpu(&self, index: usize) -> Option<&GpuBackend> {
        match self.gpus.get(index).and_then(OnceLock::get) {
            Some(Ok(g)) => Some(g),
            _ => None,
        }
    }

    /// Whether opening the CPU, or GPU `index`, was attempted (its start-up cost is paid).
    pub fn started(&self, gpu: Option<usize>) -> bool {
        match gpu {
            None => self.cpu.get().is_some(),
            Some(n) => self.gpus.get(n).is_some_and(|g| g.get().is_some()),
        }
    }

    /// Whether any GPU of this session was opened.
    pub fn any_gpu_started(&self) -> bool {
        self.gpus.iter().any(|g| g.get().is_some())
    }

    /// Whether `k` is compiled on the CPU (`gpu: None`) or on GPU `n` already.
    pub fn is_cached(&self, gpu: Option<usize>, k: &Kernel) -> bool {
        match gpu {
            None => self.open_cpu().is_some_and(|c| c.is_cached(k)),
            Some(n) => self.open_gpu(n).is_some_and(|g| g.is_cached(k)),
        }
    }

    /// Human-readable name of a device: `gpu:0 (llvmpipe, Vulkan)` (opens the GPU).
    pub fn device_name(&self, device: Device) -> String {
        match device {
            Device::Gpu(n) => match self.gpu(n) {
                Ok(g) => format!("gpu:{n} ({}, {})", g.info().name, g.info().backend),
                Err(_) => format!("gpu:{n}"),
            },
            d => d.to_string(),
        }
    }

    /// Update the counters.
    pub fn record(&self, f: impl FnOnce(&mut Stats)) {
        if let Ok(mut st) = self.stats.lock() {
            f(&mut st);
        }
    }

    /// The counters, with the backends' own (compilations, cache, transfers) added in.
    pub fn stats(&self) -> Stats {
        let mut s = self.stats.lock().map(|s| s.clone()).unwrap_or_default();
        if let Some(cpu) = self.open_cpu() {
            let c = cpu.counters();
            s.compilations += c.compilations;
            s.cache_hits += c.cache_hits;
            s.evictions += c.evictions;
        }
        for n in 0..self.gpus.len() {
            if let Some(gpu) = self.open_gpu(n) {
                let c = gpu.counters();
                s.compilations += c.compilations;
                s.cache_hits += c.cache_hits;
                s.evictions += c.evictions;
                s.bytes_uploaded += c.bytes_uploaded;
                s.bytes_downloaded += c.bytes_downloaded;
            }
        }
        s
    }
}
