//! WGSL code generation from the kernel IR, and naga validation.
//!
//! Kernels of stores: one invocation per output element on a 2-D grid of 256-thread
//! workgroups, one storage buffer per output. The parameter
//! buffer (`P`, `array<u32>`) holds: `[n, start, row, ndim, 1, shape[ndim],` then per input
//! `flag, base, strides[ndim]`, then the kernel's float constants ([`const_words`]): an
//! input's offset is `sum(index_d * stride_d)` over the output's multi-index (0 strides for
//! broadcast dimensions), or the flat global index (`flag == 2`, input of the output's shape)
//! or the index inside the current chunk (`flag == 1`, a streamed input). bool values are
//! `u32` in buffers and `bool` in registers.
//!
//! Reductions: a first pass and a combine pass per kernel, described at `write_reduce` (the
//! parameter layout, the thread mapping, the position-carrying outputs of
//! [`carries_position`]).
//!
//! Exactness under a fast-math driver. Mesa (lavapipe) compiles naga's SPIR-V, which declares
//! neither `SignedZeroInfNanPreserve` nor `NoContraction`, with fast-math assumptions: it
//! folds `x * 0.0` to `0.0` (wrong for NaN, inf), `x + 0.0` to `x` (wrong for -0.0), factors
//! `a * 1 + b * 1` into `(a + b) * 1` and contracts products into FMAs. So:
//! - float constants are never WGSL literals: their bits are read from `P` at run time (one
//!   word per f32, two per f64), and kernels that differ only in constants share a pipeline;
//! - each float product goes through `fb_o_*`, which adds to the bits a zero the driver
//!   cannot see (`P[4] - 1`; an add, not an xor: two xors of one zero cancel, and a barrier
//!   applied to a barrier's result was folded away): integer operations on the bits are
//!   opaque to the float optimizer, so the product is rounded on its own, as NumPy does (a
//!   float `* 1` barrier was factored out of sums and then fused);
//! - the right operand of each float `+`, `-`, `*` and `/` goes through it as well: Mesa
//!   folded `x - x` and `x + (-x)` to 0, `sqrt(x) * sqrt(x)` to `x` (wrong for NaN, inf and
//!   negatives) and divided by zeros it could prove (`x / (x ^ x)`) wrongly;
//! - and so does the result of each float `+`, `-` and `/` (like the product's): the math
//!   expansions' exact sums reuse an operand (`(1 + x) - x`, TwoSum), whose barrier is one
//!   shared value, and Mesa folded `(a + b) - b` to `a` through it (`log1p` and all built on
//!   it lost their last bit);
//! - so does a bool -> float cast: Mesa rewrote `f32(c) * x` into `c ? x : 0` (0, not NaN,
//!   for an infinite or NaN `x`);
//! - an i32 -> i64 cast goes through the same opaque zero: lavapipe miscompiled
//!   `(a < 0) != (b < 0)` (in `//`, `%`) and the bit tests of `**` on an i64 it could see was a
//!   sign-extended i32; the helpers also test signs as `(a ^ b) < 0`.
//!
//! Integer and bool constants stay literals (folding them is exact).
//! `tests/gpu/regressions.rs` holds one regression test per case.
//!
//! Math functions. No shader has a hand-written transcendental: before any WGSL is written,
//! [`lower`] expands every math function of the kernel with the kernel-IR math library
//! ([`crate::mathlib`], the CPU JIT's algorithms) for [`Target::WGSL`], and this generator
//! translates the primitives one by one. An f32 function runs in f32 arithmetic with i32 bit
//! manipulation (no f64, no i64 needed). Where the target differs from the CPU's:
//! - no fused multiply-add (WGSL's `fma` may or may not fuse): `exp` takes its algorithm
//!   without FMA, where the CPU's float64 `exp` uses a table of `2^(j/128)` and FMA;
//! - no scalar calls: `sin`, `cos` and `tan` reduce huge arguments in the kernel
//!   (Payne-Hanek in integer arithmetic, `src/mathlib/trig.rs`) where the CPU calls libm for
//!   those lanes, and an [`Inst::Fallback`] (of a kernel expanded for the CPU) becomes a
//!   select of its call, expanded too;
//! - tables are constant arrays of the shader (`const FB_T_... = array<...>`, `table_decls`).
//!
//! Hand-written helpers live in `shaders/` (included at build time), none of them a math
//! function: NumPy's `%`, `//`, `fmod` (exact long division), integer division by zero, shifts
//! out of range, NaN-propagating `maximum`/`minimum`, `sign`, float->int casts (MIN for
//! NaN/out of range), `nextafter`, `copysign`, bit access. WGSL's `round` is half to even
//! (checked by the tests).
//!
//! CPU-GPU agreement, measured on lavapipe by `src/gpu/agreement.rs` (`cargo test --lib
//! gpu::agreement -- --nocapture` prints it; the test asserts at most 1 ULP between the
//! devices for every function and the mathlib's bounds of the GPU against glibc). The
//! arguments are the mathlib accuracy tests' (dense sweeps where each algorithm switches
//! ranges, special values, signed powers of two over the whole exponent range, the functions'
//! edges) plus 50,000 random bit patterns, 50,000-280,000 per function and dtype. "CPU" is
//! the JIT as it runs (its expansions, or libm for the functions [`mathlib::expands`] leaves
//! to libm: `expm1`, `sinh`, `cosh`, `tanh`, `pow`, f64 `arccosh`, f64 `hypot`); "differ":
//! arguments whose values differ at all (any bit), and apart, NaNs of different signs;
//! "glibc": the GPU against glibc's f64 function (for f32, rounded to f32):
//!
//! | function | f64 CPU-GPU max ULP (differ) | f32 CPU-GPU max ULP (differ) | f64 GPU-glibc | f32 GPU-glibc |
//! |---|---|---|---|---|
//! | `exp` | 1 (4,707 of 116,809) | 1 (178 of 50,599) | 1 | 1 |
//! | `log` | 0 | 0 | 1 | 1 |
//! | `log2` | 0 | 0 | 1 | 1 |
//! | `log10` | 0 | 0 | 2 | 1 |
//! | `log1p` | 0 | 0 | 1 | 1 |
//! | `expm1` | 1 (130) | 1 (4) | 1 | 1 |
//! | `tanh` | 1 (2,745) | 1 (950) | 2 | 1 |
//! | `sinh` | 1 (606; 13 NaN signs) | 1 (13; 107 NaN signs) | 2 | 2 |
//! | `cosh` | 0 (12 NaN signs) | 0 (89 NaN signs) | 2 | 1 |
//! | `arctan` | 0 | 0 | 1 | 1 |
//! | `sin` | 1 (1,348 of 195,364) | 1 (1,197 of 175,476) | 1 | 1 |
//! | `cos` | 1 (1,303) | 1 (1,276) | 1 | 1 |
//! | `tan` | 1 (1,531) | 1 (2) | 1 | 1 |
//! | `arcsin` | 0 | 0 | 1 | 1 |
//! | `arccos` | 0 | 0 | 1 | 1 |
//! | `arcsinh` | 0 | 0 | 1 | 2 |
//! | `arccosh` | 1 (1,036) | 0 | 1 | 2 |
//! | `arctanh` | 0 | 0 | 1 | 2 |
//! | `pow` | 1 (7,086 of 277,089) | 1 (6,547 of 244,623) | 1 | 1 |
//! | `arctan2` | 0 | 0 | 1 | 1 |
//! | `hypot` | 1 (7,778 of 207,489) | 0 | 1 | 1 |
//!
//! Where both devices run the same expansion without FMA (the logarithms, `arctan`, the
//! inverse functions but f64 `arccosh`, `arctan2`, and f32 `hypot`), they agree bit for bit;
//! the 1-ULP differences come from `exp` (a different algorithm on each device, both within
//! 1 ULP of glibc), from what is built on it, from the trigonometric functions beyond the
//! CPU's Cody-Waite limit (libm on the CPU, Payne-Hanek on the GPU) and from libm on the CPU
//! (the NaN signs too: for `sinh` and `cosh` the CPU calls Rust's `libm`, which changes the
//! sign of some NaN arguments; the GPU keeps it, as glibc does). The GPU computes exactly
//! what the lowered IR means: `gpu_runs_the_wgsl_expansions_exactly` finds
//! the CPU JIT's bits on the same lowered kernels for every argument, and
//! `arithmetic_is_bitwise` the CPU's bits for `+ - * /` and polynomials (Horner and Estrin). On
//! the 40 float64 arguments closest to a multiple of pi/2 (`mathlib`'s
//! `wgsl_trig_of_the_hardest_arguments`) the GPU's `sin`/`cos`/`tan` are within 1 ULP of the
//! correctly rounded result, while glibc's (the CPU's there) are up to ~1.4e5 ULP off.
//!
//! Against `semantics.rs` (the reference evaluator's libm: glibc, and Rust's `libm` for the
//! hyperbolic functions and their inverses), `tests/gpu/elementwise.rs` (`transcendental_ulp_bounds`)
//! asserts [`ULP_BOUNDS`], which the differential suites use as the GPU's tolerance; measured
//! on its 4,000 arguments per function: f64 1 ULP for every function but `log10` (2) and
//! `cosh` (0), f32 1 ULP but `log10` (2), `tan` and `cosh` (0).
use crate::dtype::DType;
use crate::kir::{Const, Inst, Kernel, Output, Table};
use crate::mathlib::{self, Target};
use crate::ops::{BinaryOp, ReduceOp, UnaryOp};
use std::borrow::Cow;
use std::fmt::Write;
use thiserror::Error;

/// Maximum error in ULP of each math function on the GPU against `semantics.rs`, asserted by
/// `tests/gpu/elementwise.rs` and used as the GPU's tolerance by the differential suites:
/// `(name, f64 bound, f32 bound)`. Each is the smaller of the bound measured for the former
/// hand-written shaders and the mathlib's own bound ([`crate::mathlib::ULP_BOUNDS`]), whose
/// expansions the GPU now runs.
pub const ULP_BOUNDS: &[(&str, u64, u64)] = &[
    ("exp", 1, 1),
    ("expm1", 2, 2),
    ("log", 1, 1),
    ("log1p", 2, 2),
    ("log2", 1, 2),
    ("log10", 2, 2),
    ("sin", 2, 1),
    ("cos", 2, 1),
    ("tan", 2, 1),
    ("arcsin", 2, 1),
    ("arccos", 2, 1),
    ("arctan", 1, 2),
    ("sinh", 2, 2),
    ("cosh", 2, 2),
    ("tanh", 2, 2),
    ("arcsinh", 2, 2),
    ("arccosh", 2, 2),
    ("arctanh", 2, 2),
    ("pow", 2, 2),
    ("arctan2", 2, 2),
    ("hypot", 1, 2),
];

/// Why a kernel could not be turned into a valid shader.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum WgslError {
    #[error("kernel IR failed verification: {0}")]
    Invalid(String),
    #[error("{0}")]
    Unsupported(String),
    #[error("generated WGSL does not parse: {0}")]
    Parse(String),
    #[error("generated WGSL does not validate: {0}")]
    Validation(String),
}

/// Which float operations pass through the opaque barrier (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Barriers {
    /// Every float operand and result, and bool -> float casts: drivers that compile with
    /// fast-math assumptions (Mesa: lavapipe, RADV, ANV, NVK, ...; see
    /// `gpu::needs_fast_math_barriers`). The safe default.
    #[default]
    All,
    /// Only products (so that no driver contracts `a * b + c` into an FMA): drivers that keep
    /// IEEE semantics without being told (NVIDIA's, AMD's, Intel's Windows drivers, Metal).
    Products,
}

/// What the target adapter offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Options {
    /// Which float operations go through the opaque barrier.
    pub barriers: Barriers,
    /// `SHADER_F64`. The f64 math expansions and helpers need bit access (`bitcast<i64>`, and
    /// naga types `frexp(f64).exp` as i64), so f64 is only usable together with `i64`.
    pub f64: bool,
    /// `SHADER_INT64`.
    pub i64: bool,
    /// `SUBGROUP`: the reduction shaders combine the first tree levels with subgroup shuffles
    /// (see [`write_kernel_with`]). Element-wise shaders never use them, and are validated
    /// without the capability.
    pub subgroups: bool,
}

/// Whether the shaders of `k` use subgroup operations under `opts` (only reductions do).
pub fn uses_subgroups(k: &Kernel, opts: Options) -> bool {
    opts.subgroups && k.is_reduction()
}

/// `opts` as the shaders of `k` need them: `subgroups` only where they are used, so that naga
/// grants the subgroup capability to those shaders alone.
pub fn shader_options(k: &Kernel, opts: Options) -> Options {
    Options {
        subgroups: uses_subgroups(k, opts),
        ..opts
    }
}

const FLOAT: &str = include_str!("../../shaders/float.wgsl");
const FLOAT_I64: &str = include_str!("../../shaders/float_i64.wgsl");
const INT: &str = include_str!("../../shaders/int.wgsl");
const BITS_F32: &str = include_str!("../../shaders/bits_f32.wgsl");
const BITS_F64: &str = include_str!("../../shaders/bits_f64.wgsl");

fn ty(t: DType) -> &'static str {
    match t {
        DType::Bool => "bool",
        DType::I32 => "i32",
        DType::I64 => "i64",
        DType::F32 => "f32",
        DType::F64 => "f64",
        // `adapter::check_capabilities` refuses the other dtypes before any shader is built;
        // a name WGSL does not know keeps a slip a shader compile error, never a wrong result.
        _ => "fusebox_unsupported_dtype",
    }
}

fn storage_ty(t: DType) -> &'static str {
    match t {
        DType::Bool => "u32",
        t => ty(t),
    }
}

/// The helper library for the dtypes a shader uses (no math functions: those arrive expanded,
/// see [`lower`]).
fn library(uses: &[DType], barriers: Barriers) -> String {
    let mut s = String::new();
    let has = |t| uses.contains(&t);
    let float = match barriers {
        Barriers::All => FLOAT.replace("$O", "fb_bits_o_$F(x)"),
        Barriers::Products => FLOAT.replace("$O", "x"),
    };
    let float = float.as_str();
    if has(DType::F32) {
        s += BITS_F32;
        s += &float.replace("$F", "f32");
        if has(DType::I64) {
            s += &FLOAT_I64.replace("$F", "f32");
        }
    }
    if has(DType::F64) {
        s += BITS_F64;
        s += &float.replace("$F", "f64");
        if has(DType::I64) {
            s += &FLOAT_I64.replace("$F", "f64");
        }
    }
    if has(DType::I32) {
        s += &INT.replace("$I", "i32").replace("$BITS", "32");
    }
    if has(DType::I64) {
        s += &INT.replace("$I", "i64").replace("$BITS", "64");
    }
    s
}

/// WGSL for a constant. Integer and bool constants are literals (folding them is exact).
/// Float constants are read from the parameter buffer at run time (`P[cb + word]`, the words
/// [`const_words`] lists): Mesa compiles SPIR-V without `SignedZeroInfNanPreserve`, so a float
/// it can see at compile time gets folded with fast-math assumptions (`x * 0.0` -> `0.0`, wrong
/// for inf and NaN; `x + 0.0` -> `x`, wrong for -0.0), even through `fb_o_*`.
fn const_expr(c: Const, word: &mut usize) -> String {
    let w = *word;
    match c {
        Const::Bool(b) => b.to_string(),
        Const::I32(v) if v == i32::MIN => "(i32(-2147483647) - 1)".into(),
        Const::I32(v) => format!("i32({v})"),
        Const::I64(v) if v == i64::MIN => "(i64(-9223372036854775807) - i64(1))".into(),
        Const::I64(v) => format!("i64({v})"),
        c @ (Const::I8(_)
        | Const::I16(_)
        | Const::U8(_)
        | Const::U16(_)
        | Const::U32(_)
        | Const::U64(_)
        | Const::F16(_)) => format!("fusebox_unsupported_dtype({c})"),
        Const::F32(_) => {
            *word += 1;
            format!("bitcast<f32>(P[cb + {w}u])")
        }
        Const::F64(_) => {
            *word += 2;
            format!(
                "bitcast<f64>(u64(P[cb + {w}u]) | (u64(P[cb + {}u]) << 32u))",
                w + 1
            )
        }
    }
}

/// The parameter words that hold `k`'s float constants, in the order the shader reads them
/// (appended to the parameter buffer after the per-input entries): one word per f32, two per
/// f64 (low word first).
pub fn const_words(k: &Kernel) -> Vec<u32> {
    let k = lower(k);
    let mut w = Vec::new();
    for d in &k.insts {
        match d.inst {
            Inst::Const(Const::F32(v)) => w.push(v.to_bits()),
            Inst::Const(Const::F64(v)) => {
                let b = v.to_bits();
                w.push(b as u32);
                w.push((b >> 32) as u32);
            }
            _ => {}
        }
    }
    w
}

/// `k` with every math function replaced by primitive instructions, as the shaders compute
/// it: the kernel-IR math library ([`crate::mathlib`]) expanded for [`Target::WGSL`] (no
/// fused multiply-add, no scalar calls, tables as constant arrays); an [`Inst::Fallback`]
/// (of a kernel expanded for the CPU) becomes a select of its call, expanded too. Borrowed
/// unchanged when `k` has neither (as an already lowered kernel).
pub fn lower(k: &Kernel) -> Cow<'_, Kernel> {
    let math = k.insts.iter().any(|d| match d.inst {
        Inst::Unary { op, .. } => mathlib::implements(op, d.ty),
        Inst::Binary { op, .. } => mathlib::implements_binary(op, d.ty),
        Inst::Fallback { .. } => true,
        _ => false,
    });
    if math {
        Cow::Owned(mathlib::expand_all_for(k, Target::WGSL))
    } else {
        Cow::Borrowed(k)
    }
}

/// The module-scope constant arrays of the tables `k` reads ([`Inst::Lookup`]): entries as
/// `i32`/`i64` (a float table's as its bits).
fn table_decls(k: &Kernel) -> String {
    let mut tables: Vec<Table> = k
        .insts
        .iter()
        .filter_map(|d| match d.inst {
            Inst::Lookup { table, .. } => Some(table),
            _ => None,
        })
        .collect();
    tables.dedup();
    let mut s = String::new();
    for t in Table::ALL.into_iter().filter(|t| tables.contains(t)) {
        let e = t.entries();
        let (ity, suffix) = if t.dtype().size() == 8 {
            ("i64", "li")
        } else {
            ("i32", "i")
        };
        let items: Vec<String> = e
            .iter()
            .map(|&b| {
                let v = if t.dtype().size() == 8 {
                    b as i64
                } else {
                    b as u32 as i32 as i64
                };
                if v < 0 {
                    format!("-{}{suffix}", v.unsigned_abs())
                } else {
                    format!("{v}{suffix}")
                }
            })
            .collect();
        let _ = writeln!(
            s,
            "const FB_T_{} = array<{ity}, {}>({});",
            t.name(),
            e.len(),
            items.join(", ")
        );
    }
    s
}

fn unary(op: UnaryOp, t: DType, a: &str) -> Result<String, WgslError> {
    use UnaryOp::*;
    let ts = ty(t);
    Ok(match (op, t) {
        (Neg, DType::Bool) | (Sign, DType::Bool) | (Round, DType::Bool) => {
            return Err(WgslError::Unsupported(format!("{op} of bool")))
        }
        (Abs | Floor | Ceil | Trunc, DType::Bool) => a.to_string(),
        (Not, DType::Bool) => format!("!{a}"),
        (Not, DType::I32 | DType::I64) => format!("~{a}"),
        (Not, _) => return Err(WgslError::Unsupported(format!("{op} of {t}"))),
        (Neg, DType::I32 | DType::I64) => format!("({}(0) - {a})", ts),
        (Neg, _) => format!("(-{a})"),
        (Abs, DType::I32 | DType::I64) => format!("fb_abs_{ts}({a})"),
        (Abs, _) => format!("abs({a})"),
        (Sign, _) => format!("fb_sign_{ts}({a})"),
        (Floor | Ceil | Trunc | Round, DType::I32 | DType::I64) => a.to_string(),
        (Floor, _) => format!("floor({a})"),
        (Ceil, _) => format!("ceil({a})"),
        (Trunc, _) => format!("trunc({a})"),
        (Round, _) => format!("round({a})"),
        (Sqrt, _) => format!("sqrt({a})"),
        // Math functions arrive expanded into primitives ([`lower`]).
        _ => return Err(WgslError::Unsupported(format!("{op} of {t}"))),
    })
}

fn binary(op: BinaryOp, t: DType, a: &str, b: &str) -> Result<String, WgslError> {
    use BinaryOp::*;
    let ts = ty(t);
    let unsupported = || Err(WgslError::Unsupported(format!("{op} of {t}")));
    if op.is_comparison() {
        let sym = op.symbol().unwrap_or("==");
        return Ok(match (op, t) {
            // naga lowers float `!=` to an ordered comparison (false for NaN): negate `==`.
            (Ne, _) => format!("!({a} == {b})"),
            (Eq, _) => format!("({a} == {b})"),
            (_, DType::Bool) => format!("(u32({a}) {sym} u32({b}))"),
            _ => format!("({a} {sym} {b})"),
        });
    }
    Ok(match t {
        DType::Bool => match op {
            Add | Or | Maximum => format!("({a} || {b})"),
            Mul | And | Minimum => format!("({a} && {b})"),
            Xor => format!("({a} != {b})"),
            _ => return unsupported(),
        },
        DType::I32 | DType::I64 => match op {
            Add => format!("({a} + {b})"),
            Sub => format!("({a} - {b})"),
            // Products pass through the opaque 1, so a driver cannot contract `a * b + c` into
            // an FMA (WGSL allows it; NumPy rounds the product first).
            Mul if t.is_float() => format!("fb_o_{}({a} * {b})", ty(t)),
            Mul => format!("({a} * {b})"),
            And => format!("({a} & {b})"),
            Or => format!("({a} | {b})"),
            Xor => format!("({a} ^ {b})"),
            FloorDiv => format!("fb_floordiv_{ts}({a}, {b})"),
            Rem => format!("fb_rem_{ts}({a}, {b})"),
            Fmod => format!("fb_fmod_{ts}({a}, {b})"),
            Pow => format!("fb_pow_{ts}({a}, {b})"),
            Shl => format!("fb_shl_{ts}({a}, {b})"),
            Shr => format!("fb_shr_{ts}({a}, {b})"),
            Maximum => format!("fb_max_{ts}({a}, {b})"),
            Minimum => format!("fb_min_{ts}({a}, {b})"),
            _ => return unsupported(),
        },
        // The right operand of a float sum, difference, product or quotient passes through the
        // opaque identity too: Mesa folds `x - x` and `x + (-x)` to 0 and `sqrt(x) * sqrt(x)`
        // to `x` (wrong for NaN, inf, negatives) and divides by a zero it can prove, unless it
        // cannot see that the operands are related. So does every result: the math
        // expansions' exact sums (`(1 + x) - x`, TwoSum) reuse an operand, whose barrier is
        // one shared value, and Mesa folded `(a + b) - b` to `a` through it.
        DType::I8 | DType::I16 | DType::U8 | DType::U16 | DType::U32 | DType::U64 | DType::F16 => {
            return unsupported()
        }
        DType::F32 | DType::F64 => match op {
            Add => format!("fb_o_{t}({a} + fb_o_{t}({b}))", t = ty(t)),
            Sub => format!("fb_o_{t}({a} - fb_o_{t}({b}))", t = ty(t)),
            // Products pass through the opaque 1, so a driver cannot contract `a * b + c` into
            // an FMA (WGSL allows it; NumPy rounds the product first).
            Mul => format!("fb_p_{t}({a} * fb_o_{t}({b}))", t = ty(t)),
            Div => format!("fb_o_{t}({a} / fb_o_{t}({b}))", t = ty(t)),
            FloorDiv => format!("fb_floordiv_{ts}({a}, {b})"),
            Rem => format!("fb_rem_{ts}({a}, {b})"),
            Fmod => format!("fb_fmod_{ts}({a}, {b})"),
            Maximum => format!("fb_maximum_{ts}({a}, {b})"),
            Minimum => format!("fb_minimum_{ts}({a}, {b})"),
            Copysign => format!("fb_copysign_{ts}({a}, {b})"),
            Nextafter => format!("fb_nextafter_{ts}({a}, {b})"),
            // Pow, Arctan2 and Hypot arrive expanded into primitives ([`lower`]).
            _ => return unsupported(),
        },
    })
}

fn cast(from: DType, to: DType, a: &str) -> String {
    use DType::*;
    if from == to {
        return a.to_string();
    }
    match (from, to) {
        (_, Bool) if from.is_float() => format!("!({a} == {}(0.0))", ty(from)),
        (_, Bool) => format!("({a} != {}(0))", ty(from)),
        // A float 0/1 from a bool goes through the opaque identity: Mesa rewrites
        // `b2f(c) * x` into `c ? x : 0`, which is 0 (not NaN) for an infinite or NaN `x`.
        (Bool, F32 | F64) => format!("fb_o_{t}(select({t}(0), {t}(1), {a}))", t = ty(to)),
        (Bool, _) => format!("select({t}(0), {t}(1), {a})", t = ty(to)),
        (F32 | F64, I32) => format!("fb_to_i32_{}({a})", ty(from)),
        (F32 | F64, I64) => format!("fb_to_i64_{}({a})", ty(from)),
        // Sign extension through an opaque zero: lavapipe miscompiles comparisons and bit
        // tests on an i64 it can see is a sign-extended i32 (`(a < 0) != (b < 0)`, `b & 1`
        // in `//`, `%`, `**`: checked by tests/gpu/regressions.rs).
        (I32, I64) => format!("(i64({a}) ^ i64(P[4] - 1u))"),
        _ => format!("{}({a})", ty(to)),
    }
}

/// Every dtype a kernel touches (inputs, values, the sum accumulator).
fn dtypes_used(k: &Kernel) -> Vec<DType> {
    let mut v: Vec<DType> = k.inputs.clone();
    v.extend(k.insts.iter().map(|d| d.ty));
    v.sort();
    v.dedup();
    v
}

/// WGSL for `k`, for an adapter that has exactly the features the kernel's dtypes need.
pub fn write_kernel(k: &Kernel) -> Result<String, WgslError> {
    let used = dtypes_used(k);
    write_kernel_with(
        k,
        Options {
            f64: used.contains(&DType::F64),
            i64: used.contains(&DType::I64) || used.contains(&DType::F64),
            ..Default::default()
        },
    )
}

/// Whether a reduction output carries positions beside its values: `argmin`/`argmax`, and float
/// `min`/`max`, whose ties (`0.0` and `-0.0`) and NaNs must resolve by position ("the later of
/// equal values, the first NaN") whatever order the workgroup tree combines them in.
pub fn carries_position(op: ReduceOp, acc: DType) -> bool {
    op.is_arg() || (matches!(op, ReduceOp::Min | ReduceOp::Max) && acc.is_float())
}

/// Storage bindings of a kernel's outputs, in binding order after the parameter buffer: one per
/// store; per reduction its values and, when it [`carries_position`], its positions.
pub fn output_bindings(k: &Kernel) -> usize {
    k.outputs
        .iter()
        .map(|o| match *o {
            Output::Store { .. } => 1,
            Output::Reduce { op, value } => 1 + carries_position(op, k.ty(value)) as usize,
        })
        .sum()
}

/// Capabilities the shaders of `k` need, checked against `opts`.
fn check_features(k: &Kernel, opts: Options) -> Result<Options, WgslError> {
    k.verify().map_err(|e| WgslError::Invalid(e.to_string()))?;
    let used = dtypes_used(k);
    if used.contains(&DType::F64) && !(opts.f64 && opts.i64) {
        return Err(WgslError::Unsupported(
            "float64 needs SHADER_F64 and SHADER_INT64".into(),
        ));
    }
    if used.contains(&DType::I64) && !opts.i64 {
        return Err(WgslError::Unsupported("int64 needs SHADER_INT64".into()));
    }
    Ok(Options {
        f64: opts.f64 && opts.i64,
        ..shader_options(k, opts)
    })
}

/// `let vN: T = ...;` for every instruction (inputs read at offsets `o{i}`).
fn write_body(w: &mut String, k: &Kernel, indent: &str) -> Result<(), WgslError> {
    let mut word = 0usize;
    for (i, d) in k.insts.iter().enumerate() {
        let t = d.ty;
        let v = |x: crate::kir::Value| format!("v{}", x.0);
        let e = match d.inst {
            Inst::Load { input } => {
                if t == DType::Bool {
                    format!("(IN{input}[o{input}] != 0u)")
                } else {
                    format!("IN{input}[o{input}]")
                }
            }
            Inst::Const(c) => const_expr(c, &mut word),
            Inst::Unary { op, arg } => unary(op, t, &v(arg))?,
            Inst::Binary { op, lhs, rhs } => binary(op, k.ty(lhs), &v(lhs), &v(rhs))?,
            Inst::Select {
                cond,
                on_true,
                on_false,
            } => {
                format!("select({}, {}, {})", v(on_false), v(on_true), v(cond))
            }
            Inst::Cast { arg } => cast(k.ty(arg), t, &v(arg)),
            // Only the math expansions emit bit casts; naga rejects the 64-bit ones where the
            // adapter has no 64-bit integers, and that surfaces as a typed error.
            Inst::Bitcast { arg } => format!("bitcast<{}>({})", ty(t), v(arg)),
            // The WGSL target computes every lane in the kernel ([`lower`]): no scalar calls.
            Inst::Fallback { call, .. } => {
                return Err(WgslError::Unsupported(format!(
                    "a scalar call ({call}) in a shader"
                )))
            }
            // WGSL's `fma` may be computed unfused (lavapipe differs from a fused result in
            // ~0.05% of cases), so an exact fused multiply-add has no WGSL form.
            Inst::Fma { .. } => {
                return Err(WgslError::Unsupported(
                    "fma (a fused multiply-add rounded once) has no exact WGSL form".into(),
                ))
            }
            // The table is a constant array of the shader ([`table_decls`]); the index is
            // masked into it as the IR specifies.
            Inst::Lookup { table, index } => {
                let n = table.entries().len() - 1;
                let it = ty(k.ty(index));
                let e = format!("FB_T_{}[u32({} & {it}({n}))]", table.name(), v(index));
                match table.dtype() {
                    DType::F64 => format!("bitcast<f64>({e})"),
                    DType::F32 => format!("bitcast<f32>({e})"),
                    _ => e,
                }
            }
        };
        let _ = writeln!(w, "{indent}let v{i}: {} = {e};", ty(t));
    }
    Ok(())
}

/// WGSL for `k` on an adapter with `opts`: the element-wise kernel for stores, the first pass
/// (inputs -> per-workgroup partial results) for reductions (see [`write_combine_pass`]).
pub fn write_kernel_with(k: &Kernel, opts: Options) -> Result<String, WgslError> {
    k.verify().map_err(|e| WgslError::Invalid(e.to_string()))?;
    let k = &*lower(k);
    let opts = check_features(k, opts)?;
    if k.is_reduction() {
        return write_reduce(k, opts, false);
    }
    let used = dtypes_used(k);
    let mut s = String::new();
    let w = &mut s;
    let n_in = k.inputs.len();
    let n_out = k.outputs.len();
    let _ = writeln!(w, "@group(0) @binding(0) var<storage, read> P: array<u32>;");
    for (o, t) in k.output_dtypes().iter().enumerate() {
        let _ = writeln!(
            w,
            "@group(0) @binding({}) var<storage, read_write> OUT{o}: array<{}>;",
            1 + o,
            storage_ty(*t)
        );
    }
    for (i, t) in k.inputs.iter().enumerate() {
        let _ = writeln!(
            w,
            "@group(0) @binding({}) var<storage, read> IN{i}: array<{}>;",
            1 + n_out + i,
            storage_ty(*t)
        );
    }
    let _ = writeln!(w, "@compute @workgroup_size(256)");
    let _ = writeln!(
        w,
        "fn main(@builtin(global_invocation_id) gid: vec3<u32>) {{"
    );
    let _ = writeln!(w, "    let n = P[0];\n    let local = gid.x + gid.y * P[2];\n    let g = P[1] + local;\n    let ndim = P[3];");
    // Where the float constants start in `P` (after the per-input entries).
    let _ = writeln!(w, "    let cb = 5u + ndim + {n_in}u * (2u + ndim);");
    let _ = writeln!(w, "    if (local >= n) {{ return; }}");
    for i in 0..n_in {
        let _ = writeln!(w, "    var o{i} = 0u;");
    }
    if n_in > 0 {
        let _ = writeln!(w, "    var rem = g;");
        let _ = writeln!(w, "    for (var d = ndim; d > 0u; d = d - 1u) {{");
        let _ = writeln!(
            w,
            "        let size = P[4u + d];\n        let c = rem % size;\n        rem = rem / size;"
        );
        for i in 0..n_in {
            let _ = writeln!(
                w,
                "        o{i} = o{i} + c * P[5u + ndim + {i}u * (2u + ndim) + 1u + d];"
            );
        }
        let _ = writeln!(w, "    }}");
        for i in 0..n_in {
            let _ = writeln!(w, "    let f{i} = P[5u + ndim + {i}u * (2u + ndim)];");
            let _ = writeln!(
                w,
                "    o{i} = select(select(o{i}, g, f{i} == 2u), local, f{i} == 1u);"
            );
        }
    }
    write_body(w, k, "    ")?;
    for (o, out) in k.outputs.iter().enumerate() {
        let value = out.value();
        let val = if k.ty(value) == DType::Bool {
            format!("select(0u, 1u, v{})", value.0)
        } else {
            format!("v{}", value.0)
        };
        let _ = writeln!(w, "    OUT{o}[local] = {val};");
    }
    let _ = writeln!(w, "}}");
    s.push_str(&table_decls(k));
    s.push_str(&library(&used, opts.barriers));
    validate(&s, opts)?;
    Ok(s)
}

/// The second pass of a reduction kernel: combines the partial results of the first pass (or of
/// an earlier second pass) per output element, `[groups, kept]` -> `[groups', kept]`, until one
/// group is left. Positions travel with the values (see [`carries_position`]).
pub fn write_combine_pass(k: &Kernel, opts: Options) -> Result<String, WgslError> {
    k.verify().map_err(|e| WgslError::Invalid(e.to_string()))?;
    let k = &*lower(k);
    let opts = check_features(k, opts)?;
    if !k.is_reduction() {
        return Err(WgslError::Invalid(
            "a combine pass needs a reduction kernel".into(),
        ));
    }
    write_reduce(k, opts, true)
}

/// The identity of a reduction in its storage type (positions mark empty slots of the others).
fn reduce_identity(op: ReduceOp, t: DType) -> String {
    use ReduceOp::*;
    match (op, t) {
        // -0.0 is the exact additive identity (0.0 + -0.0 would be +0.0).
        (Sum, DType::F32) => "bitcast<f32>(0x80000000u)".into(),
        (Sum, DType::F64) => "bitcast<f64>(0x8000000000000000lu)".into(),
        (Sum, _) => format!("{}(0)", storage_ty(t)),
        (Prod, _) => format!("{}(1)", storage_ty(t)),
        (Min, DType::I32) => "i32(2147483647)".into(),
        (Min, DType::I64) => "i64(9223372036854775807)".into(),
        (Max, DType::I32) => "(i32(-2147483647) - 1)".into(),
        (Max, DType::I64) => "(i64(-9223372036854775807) - i64(1))".into(),
        (Min | All, DType::Bool) => "1u".into(),
        (Max | Any, DType::Bool) => "0u".into(),
        _ => format!("{}(0)", storage_ty(t)),
    }
}

/// Statements combining `(b, pb)` into the accumulator `(a, pa)` (all storage-typed names).
fn reduce_step(op: ReduceOp, t: DType, a: &str, pa: &str, b: &str, pb: &str) -> String {
    use ReduceOp::*;
    let st = storage_ty(t);
    if carries_position(op, t) {
        return format!(
            "{{ let c = rc_{}_{st}({a}, {pa}, {b}, {pb}); {a} = c.v; {pa} = c.p; }}",
            op.name()
        );
    }
    match (op, t) {
        (Sum, _) => format!("{a} = {a} + {b};"),
        (Prod, _) => format!("{a} = {a} * {b};"),
        (Min | All, DType::Bool) | (All, _) => format!("{a} = {a} & {b};"),
        (Max | Any, DType::Bool) | (Any, _) => format!("{a} = {a} | {b};"),
        (Min, _) => format!("{a} = select({a}, {b}, {b} < {a});"),
        _ => format!("{a} = select({a}, {b}, {b} > {a});"),
    }
}

/// `rc_<op>_<T>`: combine two (value, position) pairs of a position-carrying reduction in any
/// order. Position `0xffffffff` marks an empty slot. NaN is detected on the bits (a fast-math
/// driver may fold `x != x`), and the winner is chosen on bits too (it may treat `-0.0` and
/// `0.0` as interchangeable in a float select).
fn position_helper(op: ReduceOp, t: DType) -> String {
    let st = storage_ty(t);
    let cmp = if matches!(op, ReduceOp::Min | ReduceOp::ArgMin) {
        "<"
    } else {
        ">"
    };
    // Ties: the first position for argmin/argmax, the later one for min/max.
    let tie = if op.is_arg() { "pa < pb" } else { "pa > pb" };
    let (nan, pick) = match t {
        DType::F32 => (
            "let na = (bitcast<u32>(a) & 0x7fffffffu) > 0x7f800000u;\n    let nb = (bitcast<u32>(b) & 0x7fffffffu) > 0x7f800000u;",
            "bitcast<f32>(select(bitcast<u32>(b), bitcast<u32>(a), ta))",
        ),
        DType::F64 => (
            "let na = (bitcast<u64>(a) & 0x7ffffffffffffffflu) > 0x7ff0000000000000lu;\n    let nb = (bitcast<u64>(b) & 0x7ffffffffffffffflu) > 0x7ff0000000000000lu;",
            "bitcast<f64>(select(bitcast<u64>(b), bitcast<u64>(a), ta))",
        ),
        _ => ("let na = false;\n    let nb = false;", "select(b, a, ta)"),
    };
    format!(
        "fn rc_{name}_{st}(a: {st}, pa: u32, b: {st}, pb: u32) -> RV_{st} {{
    if (pb == 0xffffffffu) {{ return RV_{st}(a, pa); }}
    if (pa == 0xffffffffu) {{ return RV_{st}(b, pb); }}
    {nan}
    var ta = {tie};
    if (na || nb) {{ ta = na && (!nb || pa < pb); }}
    else if (a {cmp} b) {{ ta = true; }}
    else if (b {cmp} a) {{ ta = false; }}
    return RV_{st}({pick}, select(pb, pa, ta));
}}
",
        name = op.name()
    )
}

/// The reduction shaders. Parameters (`P`, u32 words): `[K, rstart, rend, rfast, 1, TK, J, KB,
/// G, part_base, final, nk, nr, kept shape[nk], reduced shape[nr]]`, then per input `flag,
/// kept strides[nk], reduced strides[nr]` (flag 1: a streamed input, read at `r - rstart`),
/// then the float constants. The iteration space is seen as `[kept..., reduced...]`: `K` output
/// elements, each combining the positions `r` in `rstart..rend` of the reduced space.
/// Workgroups are `KB x G` (kept blocks x segments of the reduced range); a workgroup's 256
/// threads are `TK` along the kept axis by `TR = 256 / TK` along the reduced one (`rfast`:
/// adjacent threads take adjacent `r`, else adjacent `k`, so adjacent threads read adjacent
/// addresses either way). Each thread combines `J` values `TR` apart (short sequential
/// stretches), then the workgroup combines its threads' values in a tree (subgroup shuffles for
/// the first levels when `opts.subgroups`, see [`write_subgroup_levels`]; shared memory above), and
/// thread 0 of each column writes the partial `[part_base + g * K + k]` (or, when `final`, the
/// result: positions as int64 `(lo, 0)` word pairs for argmin/argmax).
///
/// The combine pass (`combine`) is the same with the partial values (and positions) of the
/// previous pass as input instead of the kernel body.
fn write_reduce(k: &Kernel, opts: Options, combine: bool) -> Result<String, WgslError> {
    let used = dtypes_used(k);
    let n_in = if combine { 0 } else { k.inputs.len() };
    let outs: Vec<(ReduceOp, crate::kir::Value, DType)> = k
        .outputs
        .iter()
        .filter_map(|o| match *o {
            Output::Reduce { op, value } => Some((op, value, k.ty(value))),
            Output::Store { .. } => None,
        })
        .collect();
    let mut s = String::new();
    let w = &mut s;
    let _ = writeln!(w, "@group(0) @binding(0) var<storage, read> P: array<u32>;");
    let mut binding = 1usize;
    let mut slots = |w: &mut String, prefix: &str, access: &str| {
        for (o, &(op, _, t)) in outs.iter().enumerate() {
            let _ = writeln!(
                w,
                "@group(0) @binding({binding}) var<storage, {access}> {prefix}R{o}: array<{}>;",
                storage_ty(t)
            );
            binding += 1;
            if carries_position(op, t) {
                let _ = writeln!(
                    w,
                    "@group(0) @binding({binding}) var<storage, {access}> {prefix}Q{o}: array<u32>;"
                );
                binding += 1;
            }
        }
    };
    slots(w, "", "read_write");
    if combine {
        slots(w, "I", "read");
    } else {
        for (i, t) in k.inputs.iter().enumerate() {
            let _ = writeln!(
                w,
                "@group(0) @binding({binding}) var<storage, read> IN{i}: array<{}>;",
                storage_ty(*t)
            );
            binding += 1;
        }
    }
    let mut helpers: Vec<(ReduceOp, DType)> = Vec::new();
    for (o, &(op, _, t)) in outs.iter().enumerate() {
        let _ = writeln!(w, "var<workgroup> W{o}: array<{}, 256>;", storage_ty(t));
        if carries_position(op, t) {
            let _ = writeln!(w, "var<workgroup> X{o}: array<u32, 256>;");
            if !helpers.contains(&(op, t)) {
                helpers.push((op, t));
            }
        }
    }
    let mut structs: Vec<&str> = helpers.iter().map(|&(_, t)| storage_ty(t)).collect();
    structs.sort();
    structs.dedup();
    for st in structs {
        let _ = writeln!(w, "struct RV_{st} {{ v: {st}, p: u32 }}");
    }
    for &(op, t) in &helpers {
        w.push_str(&position_helper(op, t));
    }
    let sg = opts.subgroups;
    if sg {
        let _ = writeln!(
            w,
            "var<workgroup> SGBAD: atomic<u32>;\nvar<workgroup> SGF: u32;"
        );
    }
    let _ = writeln!(w, "@compute @workgroup_size(256)");
    let sg_args = if sg {
        ", @builtin(subgroup_invocation_id) sid: u32, @builtin(subgroup_size) sz: u32"
    } else {
        ""
    };
    let _ = writeln!(w, "fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>{sg_args}) {{");
    let _ = writeln!(
        w,
        "    let K = P[0];
    let rstart = P[1];
    let rend = P[2];
    let rfast = P[3] == 1u;
    let tkn = P[5];
    let trn = 256u / tkn;
    let J = P[6];
    let KB = P[7];
    let G = P[8];
    let nk = P[11];
    let nr = P[12];
    let cb = 13u + nk + nr + {n_in}u * (1u + nk + nr);
    let wg = wid.x + wid.y * nwg.x;
    let kb = wg % KB;
    let g = wg / KB;
    let tk = select(lid % tkn, lid / trn, rfast);
    let tr = select(lid / tkn, lid % trn, rfast);
    let k = kb * tkn + tk;
    let live = g < G && k < K;"
    );
    for (o, &(op, _, t)) in outs.iter().enumerate() {
        let _ = writeln!(
            w,
            "    var acc{o}: {} = {};",
            storage_ty(t),
            reduce_identity(op, t)
        );
        if carries_position(op, t) {
            let _ = writeln!(w, "    var pos{o} = 0xffffffffu;");
        }
    }
    // Offsets of each input at the output element (kept axes), once per thread.
    for i in 0..n_in {
        let _ = writeln!(w, "    let ib{i} = 13u + nk + nr + {i}u * (1u + nk + nr);");
        let _ = writeln!(w, "    var ko{i} = 0u;");
    }
    if n_in > 0 {
        let _ = writeln!(w, "    if (live) {{\n        var rem = k;");
        let _ = writeln!(w, "        for (var d = nk; d > 0u; d = d - 1u) {{");
        let _ = writeln!(w, "            var c = rem;\n            if (d > 1u) {{ let size = P[12u + d]; c = rem % size; rem = rem / size; }}");
        for i in 0..n_in {
            let _ = writeln!(w, "            ko{i} = ko{i} + c * P[ib{i} + d];");
        }
        let _ = writeln!(w, "        }}\n    }}");
    }
    let _ = writeln!(w, "    let seg = rstart + g * trn * J;");
    let _ = writeln!(w, "    for (var j = 0u; j < J; j = j + 1u) {{");
    let _ = writeln!(w, "        let r = seg + j * trn + tr;");
    let _ = writeln!(w, "        if (live && r < rend) {{");
    if combine {
        let _ = writeln!(w, "            let at = r * K + k;");
        for (o, &(op, _, t)) in outs.iter().enumerate() {
            let pos = if carries_position(op, t) {
                format!("IQ{o}[at]")
            } else {
                "0u".into()
            };
            let _ = writeln!(
                w,
                "            let x{o} = IR{o}[at];\n            let q{o} = {pos};"
            );
            let step = reduce_step(
                op,
                t,
                &format!("acc{o}"),
                &format!("pos{o}"),
                &format!("x{o}"),
                &format!("q{o}"),
            );
            let _ = writeln!(w, "            {step}");
        }
    } else {
        for i in 0..n_in {
            let _ = writeln!(w, "            var o{i} = ko{i};");
        }
        if n_in > 0 {
            let _ = writeln!(w, "            var rem = r;");
            let _ = writeln!(w, "            for (var d = nr; d > 0u; d = d - 1u) {{");
            let _ = writeln!(w, "                var c = rem;\n                if (d > 1u) {{ let size = P[12u + nk + d]; c = rem % size; rem = rem / size; }}");
            for i in 0..n_in {
                let _ = writeln!(w, "                o{i} = o{i} + c * P[ib{i} + nk + d];");
            }
            let _ = writeln!(w, "            }}");
            for i in 0..n_in {
                let _ = writeln!(
                    w,
                    "            if (P[ib{i}] == 1u) {{ o{i} = r - rstart; }}"
                );
            }
        }
        write_body(w, k, "            ")?;
        for (o, &(op, value, t)) in outs.iter().enumerate() {
            let x = if t == DType::Bool {
                format!("select(0u, 1u, v{})", value.0)
            } else {
                format!("v{}", value.0)
            };
            let _ = writeln!(w, "            let x{o} = {x};");
            let step = reduce_step(
                op,
                t,
                &format!("acc{o}"),
                &format!("pos{o}"),
                &format!("x{o}"),
                "r",
            );
            let _ = writeln!(w, "            {step}");
        }
    }
    let _ = writeln!(w, "        }}\n    }}");
    let _ = writeln!(w, "    let rs = select(tkn, 1u, rfast);");
    if sg {
        write_subgroup_levels(w, &outs);
    }
    // The workgroup tree: column `tk` combines its `TR` threads' values (those of its
    // subgroup blocks of `sub` threads, when the subgroup levels ran).
    for (o, &(op, _, t)) in outs.iter().enumerate() {
        let _ = writeln!(w, "    W{o}[lid] = acc{o};");
        if carries_position(op, t) {
            let _ = writeln!(w, "    X{o}[lid] = pos{o};");
        }
    }
    let _ = writeln!(w, "    workgroupBarrier();");
    let last = if sg { "s >= sub" } else { "s > 0u" };
    let _ = writeln!(w, "    for (var s = trn / 2u; {last}; s = s >> 1u) {{");
    let _ = writeln!(
        w,
        "        if (tr < s) {{\n            let b = lid + s * rs;"
    );
    for (o, &(op, _, t)) in outs.iter().enumerate() {
        let _ = writeln!(w, "            var a{o} = W{o}[lid];");
        let cp = carries_position(op, t);
        let _ = writeln!(
            w,
            "            var p{o} = {};",
            if cp {
                format!("X{o}[lid]")
            } else {
                "0u".into()
            }
        );
        let _ = writeln!(w, "            let y{o} = W{o}[b];");
        let _ = writeln!(
            w,
            "            let q{o} = {};",
            if cp { format!("X{o}[b]") } else { "0u".into() }
        );
        let step = reduce_step(
            op,
            t,
            &format!("a{o}"),
            &format!("p{o}"),
            &format!("y{o}"),
            &format!("q{o}"),
        );
        let _ = writeln!(w, "            {step}");
        let _ = writeln!(w, "            W{o}[lid] = a{o};");
        if cp {
            let _ = writeln!(w, "            X{o}[lid] = p{o};");
        }
    }
    let _ = writeln!(w, "        }}\n        workgroupBarrier();\n    }}");
    let _ = writeln!(w, "    if (tr == 0u && live) {{");
    let _ = writeln!(w, "        let at = P[9] + g * K + k;");
    let _ = writeln!(w, "        let fin = P[10] == 1u;");
    for (o, &(op, _, t)) in outs.iter().enumerate() {
        if op.is_arg() {
            let _ = writeln!(w, "        if (fin) {{ Q{o}[2u * k] = X{o}[lid]; Q{o}[2u * k + 1u] = 0u; }} else {{ R{o}[at] = W{o}[lid]; Q{o}[at] = X{o}[lid]; }}");
        } else if carries_position(op, t) {
            let _ = writeln!(
                w,
                "        R{o}[at] = W{o}[lid];\n        if (!fin) {{ Q{o}[at] = X{o}[lid]; }}"
            );
        } else {
            let _ = writeln!(w, "        R{o}[at] = W{o}[lid];");
        }
    }
    let _ = writeln!(w, "    }}\n}}");
    if !combine {
        s.push_str(&table_decls(k));
        s.push_str(&library(&used, opts.barriers));
    }
    validate(&s, opts)?;
    Ok(s)
}

/// Whether this invocation's subgroup is laid out as the subgroup levels need (see
/// [`write_subgroup_levels`]): `canonical`, from `lid`, `sid` (`subgroup_invocation_id`) and
/// `sz` (`subgroup_size`). Every lane must be active for `subgroupShuffle` from lane 0 to mean
/// anything, which `lanes == sz` checks first.
const SUBGROUP_LAYOUT_CHECK: &str = "    let lane0 = subgroupShuffle(lid, 0u);
    let lanes = subgroupAdd(1u);
    let canonical = (sz & (sz - 1u)) == 0u && lanes == sz && sid == lid % sz && lane0 + sid == lid;
";

/// A shader running the reduction shaders' subgroup layout check on each of its invocations:
/// `OUT[global index]` is the subgroup size where the layout is the one the subgroup levels
/// use, 0 elsewhere (binding 0 is an unused parameter buffer). Test support.
#[doc(hidden)]
pub fn subgroup_probe() -> String {
    let mut s = String::from(
        "@group(0) @binding(0) var<storage, read> P: array<u32>;
@group(0) @binding(1) var<storage, read_write> OUT: array<u32>;
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(subgroup_invocation_id) sid: u32, @builtin(subgroup_size) sz: u32) {
",
    );
    s.push_str(SUBGROUP_LAYOUT_CHECK);
    s.push_str("    OUT[wid.x * 256u + lid] = select(0u, sz, canonical);\n}\n");
    s
}

/// `subgroupShuffleXor` of a storage-typed value: 32-bit types directly, 64-bit ones (f64, i64,
/// and the i64 accumulators of integer sums) as two u32 halves (WGSL promises subgroup
/// operations on 32-bit types only; 64-bit ones need an extension wgpu does not request).
fn shuffle_xor(t: DType, x: &str, mask: &str) -> String {
    let st = storage_ty(t);
    if t.size() == 8 {
        format!(
            "bitcast<{st}>((u64(subgroupShuffleXor(u32(bitcast<u64>({x}) >> 32u), {mask})) << 32u) | u64(subgroupShuffleXor(u32(bitcast<u64>({x}) & 0xfffffffflu), {mask})))"
        )
    } else {
        format!("subgroupShuffleXor({x}, {mask})")
    }
}

/// The subgroup levels of the reduction tree, before the shared-memory levels. Each thread's
/// column (its `tr` values) is spread over lanes: with `rfast` the low bits of `lid` are `tr`
/// bits, else the bits above `log2(TK)`. When subgroups are laid out as `lid = subgroup base +
/// subgroup_invocation_id` (full subgroups of a power-of-two size), lanes `lid ^ (m * rs)` for
/// `m < sub = min(TR, max(1, subgroup_size / rs))` are in the same subgroup and column, so a
/// butterfly over those masks, with the same combine step as the tree, leaves every lane with
/// the combination of its block of `sub` consecutive `tr`; the shared-memory tree then starts
/// at stride `sub`. Any other layout (which Vulkan permits: wgpu neither requires full
/// subgroups nor fixes their size) is detected per workgroup and sets `sub = 1`: the
/// shared-memory tree alone, as without subgroups. Two barriers make the choice uniform.
fn write_subgroup_levels(w: &mut String, outs: &[(ReduceOp, crate::kir::Value, DType)]) {
    w.push_str(SUBGROUP_LAYOUT_CHECK);
    let _ = writeln!(
        w,
        "    if (!canonical) {{ atomicStore(&SGBAD, 1u); }}
    workgroupBarrier();
    if (lid == 0u) {{ SGF = atomicLoad(&SGBAD); }}
    var sub = 1u;
    if (workgroupUniformLoad(&SGF) == 0u) {{ sub = min(trn, max(1u, sz / rs)); }}
    for (var m = 1u; m < sub; m = m << 1u) {{
        let lm = m * rs;"
    );
    for (o, &(op, _, t)) in outs.iter().enumerate() {
        let cp = carries_position(op, t);
        let _ = writeln!(
            w,
            "        let y{o} = {};",
            shuffle_xor(t, &format!("acc{o}"), "lm")
        );
        if cp {
            let _ = writeln!(w, "        let q{o} = subgroupShuffleXor(pos{o}, lm);");
        }
        let step = reduce_step(
            op,
            t,
            &format!("acc{o}"),
            &format!("pos{o}"),
            &format!("y{o}"),
            &format!("q{o}"),
        );
        let _ = writeln!(w, "        {step}");
    }
    let _ = writeln!(w, "    }}");
}

/// Parse and validate WGSL with naga, with the capabilities `opts` grants.
pub fn validate(source: &str, opts: Options) -> Result<(), WgslError> {
    let module = naga::front::wgsl::parse_str(source)
        .map_err(|e| WgslError::Parse(e.emit_to_string(source)))?;
    let mut caps = naga::valid::Capabilities::empty();
    if opts.f64 {
        caps |= naga::valid::Capabilities::FLOAT64;
    }
    if opts.i64 {
        caps |= naga::valid::Capabilities::SHADER_INT64;
    }
    if opts.subgroups {
        caps |= naga::valid::Capabilities::SUBGROUP;
    }
    naga::valid::Validator::new(naga::valid::ValidationFlags::all(), caps)
        .validate(&module)
        .map_err(|e| WgslError::Validation(e.emit_to_string(source)))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kir::KernelBuilder;

    fn unary_kernel(op: UnaryOp, t: DType) -> Kernel {
        let mut b = KernelBuilder::new();
        let x = b.input(t);
        let v = b.push(Inst::Load { input: x }, t);
        let (_, r) = op.signature(t).unwrap();
        let u = b.push(Inst::Unary { op, arg: v }, r);
        b.finish(Output::Store { value: u })
    }

    /// `a * b + a`: one product, one sum.
    fn mul_add_kernel(t: DType) -> Kernel {
        let mut b = KernelBuilder::new();
        let x = b.input(t);
        let y = b.input(t);
        let (a, c) = (
            b.push(Inst::Load { input: x }, t),
            b.push(Inst::Load { input: y }, t),
        );
        let m = b.push(
            Inst::Binary {
                op: BinaryOp::Mul,
                lhs: a,
                rhs: c,
            },
            t,
        );
        let r = b.push(
            Inst::Binary {
                op: BinaryOp::Add,
                lhs: m,
                rhs: a,
            },
            t,
        );
        b.finish(Output::Store { value: r })
    }

    #[test]
    fn fast_math_barriers_only_where_asked_products_always() {
        for t in [DType::F32, DType::F64] {
            let k = mul_add_kernel(t);
            let ts = ty(t);
            let opts = |barriers| Options {
                barriers,
                f64: true,
                i64: true,
                subgroups: false,
            };
            let all = write_kernel_with(&k, opts(Barriers::All)).unwrap();
            let prod = write_kernel_with(&k, opts(Barriers::Products)).unwrap();
            // The product goes through the bit barrier either way (no FMA contraction).
            let p_fn = format!("fn fb_p_{ts}(x: {ts}) -> {ts} {{\n    return fb_bits_o_{ts}(x);");
            assert!(all.contains(&p_fn) && prod.contains(&p_fn), "{t}");
            assert!(all.contains(&format!("fb_p_{ts}(")), "{t}");
            // Every other operand and result: through the bits on Mesa, as it is elsewhere.
            let o_all = format!("fn fb_o_{ts}(x: {ts}) -> {ts} {{\n    return fb_bits_o_{ts}(x);");
            let o_none = format!("fn fb_o_{ts}(x: {ts}) -> {ts} {{\n    return x;");
            assert!(all.contains(&o_all) && !all.contains(&o_none), "{t}");
            assert!(prod.contains(&o_none) && !prod.contains(&o_all), "{t}");
        }
    }

    #[test]
    fn every_unary_op_validates() {
        for t in DType::ALL
            .into_iter()
            .filter(|t| crate::gpu::adapter::gpu_dtype(*t))
        {
            for op in UnaryOp::ALL {
                match op.signature(t) {
                    Ok((c, _)) if c == t => {}
                    _ => continue,
                }
                let k = unary_kernel(op, t);
                for opts in [
                    Options {
                        f64: true,
                        i64: true,
                        ..Default::default()
                    },
                    Options {
                        f64: t == DType::F64,
                        i64: t.size() == 8,
                        ..Default::default()
                    },
                ] {
                    if let Err(e) = write_kernel_with(&k, opts) {
                        panic!("{op} {t} {opts:?}: {e}");
                    }
                }
            }
        }
    }

    #[test]
    fn every_binary_op_and_cast_validates() {
        for t in DType::ALL
            .into_iter()
            .filter(|t| crate::gpu::adapter::gpu_dtype(*t))
        {
            for op in BinaryOp::ALL {
                let Ok((c, r)) = op.signature(t) else {
                    continue;
                };
                if c != t {
                    continue;
                }
                let mut b = KernelBuilder::new();
                let x = b.input(t);
                let y = b.input(t);
                let vx = b.push(Inst::Load { input: x }, t);
                let vy = b.push(Inst::Load { input: y }, t);
                let v = b.push(
                    Inst::Binary {
                        op,
                        lhs: vx,
                        rhs: vy,
                    },
                    r,
                );
                let k = b.finish(Output::Store { value: v });
                write_kernel_with(
                    &k,
                    Options {
                        f64: true,
                        i64: true,
                        ..Default::default()
                    },
                )
                .unwrap_or_else(|e| panic!("{op} {t}: {e}"));
            }
            for to in DType::ALL
                .into_iter()
                .filter(|t| crate::gpu::adapter::gpu_dtype(*t))
            {
                let mut b = KernelBuilder::new();
                let x = b.input(t);
                let vx = b.push(Inst::Load { input: x }, t);
                let v = b.push(Inst::Cast { arg: vx }, to);
                let k = b.finish(Output::Store { value: v });
                write_kernel(&k).unwrap_or_else(|e| panic!("cast {t}->{to}: {e}"));
            }
        }
    }

    #[test]
    fn every_reduction_and_its_combine_pass_validate() {
        let all = Options {
            f64: true,
            i64: true,
            ..Default::default()
        };
        let sg = Options {
            subgroups: true,
            ..all
        };
        for t in DType::ALL
            .into_iter()
            .filter(|t| crate::gpu::adapter::gpu_dtype(*t))
        {
            let mut outs = Vec::new();
            let mut b = KernelBuilder::new();
            let x = b.input(t);
            let v = b.push(Inst::Load { input: x }, t);
            for op in ReduceOp::ALL {
                let (acc, _) = op.signature(t).unwrap();
                let value = if acc == t {
                    v
                } else {
                    b.push(Inst::Cast { arg: v }, acc)
                };
                outs.push(Output::Reduce { op, value });
            }
            // Every op alone, then all of them in one multi-output kernel; with and without
            // subgroups.
            let k = b.finish_many(outs.clone());
            for opts in [all, sg] {
                for o in &outs {
                    let one = Kernel {
                        outputs: vec![*o],
                        ..k.clone()
                    };
                    write_kernel_with(&one, opts)
                        .unwrap_or_else(|e| panic!("{o:?} {t} {opts:?}: {e}"));
                    write_combine_pass(&one, opts)
                        .unwrap_or_else(|e| panic!("{o:?} {t} {opts:?}: {e}"));
                }
                let first = write_kernel_with(&k, opts).unwrap_or_else(|e| panic!("{t}: {e}"));
                let second = write_combine_pass(&k, opts).unwrap_or_else(|e| panic!("{t}: {e}"));
                for src in [&first, &second] {
                    assert_eq!(src.contains("subgroupShuffleXor"), opts.subgroups, "{t}");
                    if opts.subgroups {
                        // The capability is granted only to the shaders that use it.
                        assert!(matches!(validate(src, all), Err(WgslError::Validation(_))));
                    }
                }
            }
            assert_eq!(
                output_bindings(&k),
                8 + 2 + 2 * t.is_float() as usize,
                "{t}"
            );
        }
    }

    #[test]
    fn element_wise_shaders_never_use_subgroups() {
        let k = unary_kernel(UnaryOp::Exp, DType::F32);
        let opts = Options {
            subgroups: true,
            ..Default::default()
        };
        let src = write_kernel_with(&k, opts).unwrap();
        assert!(!src.contains("subgroup"));
        // Validated without the capability.
        validate(&src, Options::default()).unwrap();
        assert!(!shader_options(&k, opts).subgroups);
    }

    #[test]
    fn f64_without_the_feature_is_refused() {
        let k = unary_kernel(UnaryOp::Exp, DType::F64);
        assert!(matches!(
            write_kernel_with(&k, Options::default()),
            Err(WgslError::Unsupported(_))
        ));
    }

    /// The fused multiply-add of the CPU's math expansions has no exact WGSL form: a typed
    /// error, not a shader that rounds differently.
    #[test]
    fn fma_is_refused() {
        let mut b = KernelBuilder::new();
        let x = b.input(DType::F32);
        let v = b.push(Inst::Load { input: x }, DType::F32);
        let f = b.push(Inst::Fma { a: v, b: v, c: v }, DType::F32);
        let k = b.finish(Output::Store { value: f });
        k.verify().unwrap();
        assert!(matches!(write_kernel(&k), Err(WgslError::Unsupported(_))));
    }

    /// A table lookup reads the table from a constant array of the shader, masked into it;
    /// float tables as their bits.
    #[test]
    fn table_lookups_read_constant_arrays() {
        for (table, it) in [
            (crate::kir::Table::Exp2Hi, DType::I64),
            (crate::kir::Table::TwoOverPi32, DType::I64),
            (crate::kir::Table::TwoOverPi16, DType::I32),
        ] {
            let mut b = KernelBuilder::new();
            let x = b.input(it);
            let v = b.push(Inst::Load { input: x }, it);
            let t = b.push(Inst::Lookup { table, index: v }, table.dtype());
            let k = b.finish(Output::Store { value: t });
            k.verify().unwrap();
            let src = write_kernel(&k).unwrap();
            let n = table.entries().len();
            assert!(
                src.contains(&format!("const FB_T_{} = array<", table.name()))
                    && src.contains(&format!(", {n}>("))
                    && src.contains(&format!("[u32(v0 & {}({}))]", ty(it), n - 1)),
                "{src}"
            );
            if table.dtype().is_float() {
                assert!(src.contains("bitcast<f64>(FB_T_"), "{src}");
            }
        }
    }

    /// Math functions arrive as primitives ([`lower`]): the shader of `exp` has no call of
    /// it, its constants are the expansion's, and an already lowered kernel stays as it is.
    #[test]
    fn math_functions_are_lowered_first() {
        let k = unary_kernel(UnaryOp::Exp, DType::F32);
        let low = lower(&k);
        assert!(matches!(low, Cow::Owned(_)));
        assert!(matches!(lower(&low), Cow::Borrowed(_)));
        assert!(const_words(&k).len() > 5);
        assert_eq!(const_words(&k), const_words(&low));
        let src = write_kernel(&k).unwrap();
        // No `exp(` (`frexp(`, `ldexp(` of the helpers are other functions).
        let called = src
            .match_indices("exp(")
            .any(|(i, _)| !src[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_'));
        assert!(!called, "{src}");
        assert_eq!(src, write_kernel(&low).unwrap());
        // A scalar call (of a kernel expanded for the CPU) is computed in the kernel too.
        let cpu = mathlib::expand_all_for(&unary_kernel(UnaryOp::Sin, DType::F64), Target::host());
        assert!(cpu.to_string().contains("fallback"));
        let gpu = lower(&cpu);
        assert!(!gpu.to_string().contains("fallback"), "{gpu}");
        write_kernel(&cpu).unwrap();
    }
}
