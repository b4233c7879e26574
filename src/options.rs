//! What a user chooses for a session: the device plans run on, whether to optimize, threads,
//! and what invalid casts do. Vocabulary only: nothing here opens a device.
use crate::error::{Error, Result};
use std::fmt;

/// Where plans run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Device {
    /// Let fusebox choose per plan: the device with the lowest estimated time, data movement
    /// included (see `fusebox::unstable::place`). The CPU when no GPU adapter exists.
    #[default]
    Auto,
    /// The Cranelift JIT on the host.
    Cpu,
    /// GPU adapter number `n` (as listed by `fusebox devices`).
    Gpu(usize),
    /// The reference evaluator: plain ndarray, one operator at a time (the tests' oracle).
    Reference,
}

impl Device {
    /// Parse `auto`, `cpu`, `gpu`, `gpu:N`, `reference`.
    pub fn parse(s: &str) -> Result<Device> {
        Ok(match s {
            "auto" => Device::Auto,
            "cpu" => Device::Cpu,
            "gpu" => Device::Gpu(0),
            "reference" | "ref" => Device::Reference,
            _ => match s.strip_prefix("gpu:").and_then(|n| n.parse().ok()) {
                Some(n) => Device::Gpu(n),
                None => {
                    return Err(Error::Argument {
                        message: format!(
                            "unknown device `{s}` (expected auto, cpu, gpu, gpu:N or reference)"
                        ),
                    })
                }
            },
        })
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Auto => f.write_str("auto"),
            Device::Cpu => f.write_str("cpu"),
            Device::Gpu(n) => write!(f, "gpu:{n}"),
            Device::Reference => f.write_str("reference"),
        }
    }
}

/// Session options. Build them with the `with_*` methods (new options can be added without
/// breaking callers):
///
/// ```
/// use fusebox::{Device, Options, Session};
/// let s = Session::with_options(Options::default().with_device(Device::Cpu).with_threads(1));
/// assert_eq!(s.options().threads, 1);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Options {
    /// Where plans run (default [`Device::Auto`]).
    pub device: Device,
    /// `false`: no folding or rewrites, one kernel per operator with a temporary each (Blaze's
    /// `compute(expr, optimize=False)`, the unfused baseline).
    pub optimize: bool,
    /// CPU threads; 0 = all cores.
    pub threads: usize,
    /// What float -> integer casts do with NaN, infinities and out-of-range values.
    pub invalid_cast: InvalidCast,
    /// `true` (the default): a CPU plan whose reductions along axis 1 broadcast back per row
    /// runs in row form ([`crate::Explain::row_form`]); `false`: as its kernels (to compare).
    pub row_form: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            device: Device::Auto,
            optimize: true,
            threads: 0,
            invalid_cast: InvalidCast::MinInt,
            row_form: true,
        }
    }
}

impl Options {
    /// The defaults: `Device::Auto`, optimized, all cores, `InvalidCast::MinInt`.
    pub fn new() -> Options {
        Options::default()
    }
    /// Run plans on `device`.
    pub fn with_device(mut self, device: Device) -> Options {
        self.device = device;
        self
    }
    /// `false`: one kernel per operator with a temporary each (the unfused baseline).
    pub fn with_optimize(mut self, optimize: bool) -> Options {
        self.optimize = optimize;
        self
    }
    /// CPU threads; 0 = all cores.
    pub fn with_threads(mut self, threads: usize) -> Options {
        self.threads = threads;
        self
    }
    /// `false`: CPU plans run as their kernels, never in row form (a baseline to compare).
    pub fn with_row_form(mut self, row_form: bool) -> Options {
        self.row_form = row_form;
        self
    }
    /// What float -> integer casts do with values the integer cannot hold.
    pub fn with_invalid_cast(mut self, invalid_cast: InvalidCast) -> Options {
        self.invalid_cast = invalid_cast;
        self
    }
}

/// What a float -> integer `astype` does with a value the integer cannot hold (NaN, an
/// infinity, a value whose truncation is out of range): NumPy's `np.errstate(invalid=...)`
/// for casts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvalidCast {
    /// The integer's minimum, the value NumPy gives on x86-64 (where NumPy also warns).
    #[default]
    MinInt,
    /// [`Error::InvalidCast`] naming the cast, as under `np.errstate(invalid='raise')`. Every
    /// cast's operand is checked by a reduction the plan adds (`explain` shows it), on every
    /// element, also those a `where` discards, as NumPy does.
    Raise,
}
