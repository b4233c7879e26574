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
pub mod array;
pub mod bench;
pub mod cache;
pub mod cost;
pub mod cpu;
pub mod dtype;
pub mod error;
pub mod expr;
pub mod fmt;
pub mod gpu;
pub mod interp;
pub mod kir;
pub mod mathlib;
pub mod npy;
pub mod ops;
pub mod opt;
pub mod parse;
pub mod reference;
pub mod semantics;
pub mod session;
pub mod target;

pub use array::{ArgView, DynArray, Element};
pub use dtype::{DType, Scalar};
pub use error::{Error, Result};
pub use expr::{functions, where_, Expr};
pub use session::{
    Compiled, Device, DeviceArray, Explain, InvalidCast, KernelInfo, Options, Session, Stats,
};
