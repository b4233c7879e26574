//! Placement: what a plan costs on each device and where it runs.
//!
//! - [`model`]: the cost model, pure (kernel IR and numbers in, estimates out; imports no
//!   backend).
//! - [`probes`]: short measurements of a device that fill in its [`model::DeviceParams`].
//! - [`calibration`]: the per-machine file that keeps those measurements.
//! - [`auto`]: `Device::Auto`'s choice for a plan, from the three above.
//!
//! Architecture invariant: placement decides, it never runs a plan (the probes run their own
//! tiny kernels); [`crate::exec`] runs what was placed.
pub mod auto;
pub mod calibration;
pub mod model;
pub mod probes;

pub use calibration::{cache_path, cache_path_from, CalibrationCache};
pub use model::{
    choose, estimate_plan, gpu_floor, op_counts, ArgSource, Candidate, DeviceEstimate,
    DeviceParams, Estimate, KernelCost, Mode, PlanKernel, Residence, Target,
};
pub use probes::{calibrate_cpu, calibrate_gpu, cpu_key, cpu_params, gpu_key, gpu_params};
