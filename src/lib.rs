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
//! ## The public API
//!
//! - [`Session`]: compute (typed: [`Session::compute_as`]), numexpr strings from code
//!   ([`Session::evaluate`], [`Session::evaluate_many`], [`Session::compile_str`]), compile
//!   one or several expressions ([`Compiled`]), explain ([`Explain`]), counters ([`Stats`]),
//!   data kept on a GPU ([`DeviceArray`]); configured by [`Options`] ([`Device`],
//!   [`InvalidCast`]). Repeated calls reuse their plans (a session's plan cache; a compiled
//!   function's plan per argument shapes).
//! - [`Expr`]: the lazy expression API (operators with every Rust number type as a weak
//!   scalar on either side, reductions with axis shorthands such as
//!   `z.max_axis(1).keepdims()`, [`Expr::clip`]); the functions ([`exp`], [`maximum`],
//!   [`where_`], [`clip`], ...) both at the root and in [`functions`]; [`ExprKind`] to
//!   inspect a tree.
//! - [`DType`], [`Scalar`], [`DynArray`], [`ArgView`], [`Element`]: dtypes and arrays;
//!   [`DynArray::into_array`] moves a result into a typed ndarray without a copy, and
//!   [`DynArray::scalar`] reads a 0-d result as a `Result<T>`.
//! - [`parse`]: numexpr strings to expressions. [`npy`]: `.npy` files.
//! - [`table`]: named columns from Parquet, Arrow IPC, CSV and `.npz`, with missing values,
//!   filters and derived columns, streamed through the same fused kernels.
//! - [`Error`] and [`Result`]: every fallible call; bad input never panics. Each error
//!   carries fields to match on (shapes, names, dtypes, axes, positions, paths) and renders
//!   its message from them.
//!
//! Everything else (the kernel IR, the optimizer, the backends, the cost model, the bench
//! harness) is internal; the hidden `fusebox::unstable` module reaches it for fusebox's own
//! CLI, benches and tests, outside semver.
//!
//! ## Architecture
//!
//! Data flows one way: `expr`/`parse` -> `opt` (lower, rewrite, fuse) -> kernel IR (`kir`,
//! with `mathlib` expanding transcendentals) -> `place` (the cost model, `Device::Auto`) ->
//! `exec` (the one executor) -> `cpu` (Cranelift JIT) | `gpu` (WGSL via wgpu). The pipeline,
//! the invariants of each boundary, one call followed end to end and where new things go are
//! in `ARCHITECTURE.md` at the repository root; `tests/architecture.rs` checks its layering
//! rules.
// The internals' docs link to each other (read them with `cargo doc --document-private-items`);
// the public items' links resolve in the public docs.
#![allow(rustdoc::private_intra_doc_links)]

// The layers, bottom to top (see ARCHITECTURE.md). Only the re-exports below and the
// modules marked `pub` are the stable API; everything else is reachable through
// [`unstable`], outside semver.
mod array;
mod bench;
mod cache;
mod cpu;
mod devices;
mod dtype;
mod elem;
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
pub mod table;
mod target;
mod view;

pub use array::{ArgView, ArgViewMut, DynArray, Element};
pub use devices::Stats;
pub use dtype::{f16, DType, Scalar};
pub use error::{Error, Result};
pub use explain::{Explain, KernelInfo, RowForm};
pub use expr::functions::*;
pub use expr::{functions, Expr, ExprKind, Meta, ReduceAxes};
pub use ops::{BinaryOp, ReduceOp, Reduction, UnaryOp};
pub use options::{Device, InvalidCast, Options};
pub use place::{DeviceEstimate, Estimate, Residence};
pub use session::{Compiled, DeviceArray, Session};
pub use view::{SliceSpec, ViewOp};

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
