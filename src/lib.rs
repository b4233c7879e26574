//! # fusebox
//!
//! Array expressions at the speed of the memory bus. NumPy evaluates `(5.0*t + 4.0)*t + 1.0`
//! one operator at a time, writing a temporary array per operator, so the polynomial moves
//! 4.5x the bytes of `t + 1`. fusebox keeps the expression lazy (like Blaze), optimizes it, and
//! compiles the whole tree into one loop (like Numba) that reads its inputs once and writes its
//! output once: with Cranelift on the CPU, or as a WGSL compute shader on the GPU.
//!
//! ```
//! use fusebox::{DType, Session};
//! use ndarray::Array1;
//!
//! let s = Session::new();
//! let x = s.named_data("x", Array1::linspace(-5.0, 5.0, 1001));
//! let poly = (5.0 * &x + 4.0) * &x + 1.0;          // lazy: nothing computed yet
//! let y = s.compute(&poly)?.into_f64()?;            // one fused kernel
//! assert_eq!(y[[0]], (5.0 * -5.0 + 4.0) * -5.0 + 1.0);
//!
//! let plan = s.explain(&poly)?;                     // what runs, and the bytes it moves
//! assert_eq!((plan.bytes_fused, plan.bytes_unfused), (16 * 1001, 72 * 1001));
//!
//! // Reductions fuse their producers; several results can share one pass:
//! let stats = s.compute_many(&[x.min(), x.max(), (&x * &x).sum()])?;
//! assert_eq!(stats[1].scalar_f64(), Some(5.0));
//!
//! // Compile once, call on new arrays (like numba.vectorize):
//! let t = s.symbol("t", DType::F64, &[3]);
//! let f = s.compile(&((&t - 1.0).exp()))?;
//! let out = f.call(&[(&Array1::from(vec![1.0, 2.0])).into()])?;
//! assert_eq!(out.into_f64()?[[0]], 1.0);
//! # Ok::<(), fusebox::Error>(())
//! ```
//!
//! ## Architecture
//!
//! Data flows one way:
//!
//! ```text
//!  parse (numexpr strings) ─┐
//!  expr (Rust operators)  ──┴─> Expr ──> opt ──────────────────────> kir::Kernel ──> cpu (Cranelift JIT)
//!                                        lower -> rewrite -> fuse      (verified)  └─> gpu (WGSL via wgpu)
//!                                                                                  └─> interp (IR oracle)
//!  reference: Expr evaluated operator by operator with ndarray (the tests' oracle)
//!  session: drives the pipeline, caches, counters, explain
//! ```
//!
//! Code map, in processing order:
//! - [`dtype`], [`ops`], [`semantics`]: the vocabulary. Dtypes and NumPy 2 promotion (NEP 50);
//!   operators with their typing rules; the scalar definition of every operator on every dtype.
//! - [`expr`]: the lazy user API ([`Expr`]), typed eagerly so errors surface early.
//! - [`parse`]: numexpr syntax to [`Expr`]. [`npy`]: `.npy` files.
//! - [`opt`]: lowering to a typed hash-consed graph (CSE; `mean`/`var`/`std` become sums and
//!   a count), constant folding and the rewrite table, dead-node removal, partition into
//!   kernels: element-wise producers fused into their stores and reductions, multi-kernel plans
//!   in dependency order (recompute or materialize a shared subexpression, whichever moves
//!   fewer bytes), independent passes over one iteration space fused into multi-output kernels.
//! - [`kir`]: the kernel IR (typed scalar SSA over strided loads, ending in one or more
//!   stores or reductions over run-time axes), its printer and verifier. [`mathlib`]: `exp`,
//!   `log`, `log2`, `log10`, `log1p`, `expm1`, `sinh`, `cosh`, `tanh`, `arctan`, `sin`, `cos`,
//!   `tan`, `arcsin`, `arccos`, `arcsinh`, `arccosh`, `arctanh`, `pow`, `arctan2`, `hypot`
//!   expanded into kernel-IR primitives (so they vectorize; float64 `exp` reads a small
//!   constant table through `Lookup`; rare lanes such as huge `sin` arguments call libm
//!   through `Fallback`; the JIT uses those that beat libm), with tested ULP tables.
//! - [`cpu`]: Cranelift code generation and the multi-threaded driver. [`cache`]: the bounded
//!   LRU kernel cache both backends use.
//! - [`gpu`]: WGSL generation (validated with naga) and the wgpu runtime.
//! - [`interp`], [`mod@reference`]: oracles.
//! - [`cost`]: the cost model: bytes and operations per kernel, calibrated device parameters,
//!   estimates per device, the choice `Device::Auto` makes.
//! - [`session`]: [`Session`], `compute_many`, compiled functions, [`Stats`], [`Explain`],
//!   [`DeviceArray`], placement and the GPU fallback.
//! - [`mod@bench`]: the benchmark matrix (`fusebox bench`, `benches/`).
//!
//! Architecture invariants:
//! - Backends never see [`Expr`]; they compile [`kir::Kernel`]s only, and only after
//!   [`kir::Kernel::verify`] succeeds.
//! - [`opt`] never imports a backend; [`kir`] imports neither `opt` nor a backend.
//! - After lowering, operators are homogeneous: every implicit conversion is an explicit cast,
//!   so code generators never promote.
//! - Every rewrite gives the bits NumPy gives for the expression as written.
//! - The reference evaluator shares only typing and [`semantics`] with the pipeline, never the
//!   optimizer, so it can catch the optimizer's mistakes.
//! - User input never panics: every fallible call returns [`Error`].
//! - A kernel's outputs are all stores or all reductions over the same axes; a plan's steps
//!   only read plan inputs and results of earlier steps.
// The layers, bottom to top (see ARCHITECTURE.md). Only the re-exports below and the
// modules marked `pub` are the stable API; everything else is reachable through
// [`unstable`], outside semver.
mod array;
mod bench;
mod cache;
mod cpu;
mod devices;
mod dtype;
mod error;
mod exec;
mod explain;
mod expr;
mod fmt;
mod gpu;
mod interp;
mod kir;
mod mathlib;
pub mod npy;
mod ops;
mod opt;
mod options;
pub mod parse;
mod place;
mod reference;
mod semantics;
mod session;
mod target;

pub use array::{ArgView, DynArray, Element};
pub use devices::Stats;
pub use dtype::{DType, Scalar};
pub use error::{Error, Result};
pub use explain::{Explain, KernelInfo};
pub use expr::{functions, where_, Expr, ExprKind, Meta, ReduceAxes};
pub use ops::{BinaryOp, ReduceOp, Reduction, UnaryOp};
pub use options::{Device, InvalidCast, Options};
pub use place::{DeviceEstimate, Estimate, Residence};
pub use session::{Compiled, DeviceArray, Session};

/// The internals: kernel IR, optimizer, backends, cost model, oracles and the bench harness.
///
/// **Outside semver.** These modules change whenever the pipeline does; they are public only
/// so that fusebox's own CLI, benchmarks and tests (and the curious) can reach them. Build on
/// the crate root instead.
#[doc(hidden)]
pub mod unstable {
    /// Dense arrays of any dtype and the broadcasting helpers.
    pub mod array {
        pub use crate::array::*;
    }
    /// The benchmark matrix (`fusebox bench`).
    pub mod bench {
        pub use crate::bench::*;
    }
    /// The bounded LRU kernel cache.
    pub mod cache {
        pub use crate::cache::*;
    }
    /// The Cranelift backend.
    pub mod cpu {
        pub use crate::cpu::*;
    }
    /// The backends a session opened, and the adapter list.
    pub mod devices {
        pub use crate::devices::*;
    }
    /// Dtypes, promotion, constants.
    pub mod dtype {
        pub use crate::dtype::*;
    }
    /// Expression internals.
    pub mod expr {
        pub use crate::expr::*;
    }
    /// Number formatting.
    pub mod fmt {
        pub use crate::fmt::*;
    }
    /// The WGSL backend.
    pub mod gpu {
        pub use crate::gpu::*;
    }
    /// The kernel IR interpreter (an oracle).
    pub mod interp {
        pub use crate::interp::*;
    }
    /// The kernel IR.
    pub mod kir {
        pub use crate::kir::*;
    }
    /// Transcendental functions as kernel IR.
    pub mod mathlib {
        pub use crate::mathlib::*;
    }
    /// Operators and their typing rules.
    pub mod ops {
        pub use crate::ops::*;
    }
    /// The optimizer.
    pub mod opt {
        pub use crate::opt::*;
    }
    /// The cost model, probes, calibration and `Auto`.
    pub mod place {
        pub use crate::place::*;
    }
    /// The reference evaluator (an oracle).
    pub mod reference {
        pub use crate::reference::*;
    }
    /// The scalar definition of every operator.
    pub mod semantics {
        pub use crate::semantics::*;
    }
    /// Facts about the targets.
    pub mod target {
        pub use crate::target::*;
    }
}
