//! Vector math as kernel IR: a pass that replaces `exp`, `log`, `log2`, `log10`, `log1p`,
//! `expm1`, `sinh`, `cosh`, `tanh`, `arctan`, `sin`, `cos`, `tan`, `arcsin`, `arccos`,
//! `arcsinh`, `arccosh`, `arctanh` and the binary `pow`, `arctan2`, `hypot` with sequences of
//! primitive instructions (add, mul, div, sqrt, round/floor/trunc, compare, select, integer
//! shifts and masks, bit casts). The code generators then see only primitives, so the CPU JIT
//! runs these functions in its SIMD loop instead of calling scalar libm per element. The JIT's
//! pass ([`expand`]) uses the ones that measured faster than libm (see [`expands`] and
//! [`expands_binary`]); [`expand_all`] uses all of them.
//!
//! This module is the only source of the math functions of both backends: the GPU's WGSL
//! generator expands every one of them ([`expand_all_for`] with [`Target::WGSL`],
//! `gpu::wgsl::lower`) and has no math of its own. Where the backends must differ, the
//! expansion reads the [`Target`] (fused multiply-add, constant tables, scalar calls for rare
//! lanes); nothing here imports a backend (the host's FMA detection is
//! [`crate::target::host_has_fma`], below both). On the GPU's target `exp` takes its algorithm without FMA and
//! `sin`/`cos`/`tan` reduce huge arguments with a Payne-Hanek reduction in the kernel
//! (`trig.rs`) instead of calling libm; the bounds below hold for every target
//! (`tests::wgsl_target_within_bounds`; the hardest reduction cases against correctly rounded
//! results in `tests::wgsl_trig_of_the_hardest_arguments`; the GPU's f32 `sin`, `cos`, `tan`
//! within 1 ULP over all 2^32 inputs, `FUSEBOX_EXHAUSTIVE_TARGET=wgsl` of
//! `accuracy::exhaustive_f32`), and the CPU-GPU agreement (at most 1 ULP, measured) is in the
//! docs of `gpu::wgsl`.
//!
//! Algorithms (written from the published descriptions of fdlibm/musl, with their minimax
//! coefficients; branches become selects, so every lane computes the same instructions):
//! - float64 `exp` on a [`Target`] with fused multiply-add and tables (the JIT's, where the CPU
//!   has FMA; about 30 vector instructions): `m = round(x 128/ln2)` by the same `1.5 * 2^52`
//!   addition, `r = x - m ln2/128` by two fma (|r| <= ln2/256), `e^r - 1` by its Taylor
//!   polynomial of degree 5 (two fma pairs), `2^(j/128)` (`j = m mod 128`) as a double-float
//!   `hi + lo` from two 128-entry tables ([`crate::kir::Inst::Lookup`]), the result
//!   `hi + fma(hi, e^r - 1, lo)` (one rounding of its size), and `2^(m div 128)` added into
//!   the exponent bits; |x| > 708, inf and NaN lanes are libm's. ~0.51 ULP from exact: it
//!   equals glibc's result in all but 0.13% of test arguments.
//! - `exp` on a [`Target`] with fused multiply-add but no tables (and float32 `exp` there; about
//!   40 vector instructions, no division): `k = round(x log2 e)` by adding `1.5 * 2^52` in an
//!   fma (the sum's low bits hold `k`), `r = x - k ln2` in two parts by two fma with the
//!   second's rounding error kept, `e^r = (1 + r) + r^2 q(r)` with a degree-9 (f32: 4)
//!   polynomial in Estrin's form and `1 + r` added as a sum and its exact error, then `2^k` as
//!   an integer add into the exponent bits. The lanes with `|x| > 708` (f32: 86), where `e^x`
//!   overflows, is subnormal or zero, and inf/NaN, are libm's ([`crate::kir::Inst::Fallback`]).
//!   Without fma: `k = round(x / ln 2)`, `r = x - k ln2` in two parts (Cody-Waite;
//!   `k * ln2_hi` is exact), `e^r` by the rational form `1 - ((lo - r c / (2 - c)) - hi)` with
//!   `c = r - r^2 P(r^2)`, then `* 2^k` as two exact power-of-two factors (so subnormal results
//!   round once). Out-of-range inputs are clamped first and fixed up last (inf, 0, NaN).
//! - `log`: `x = 2^k m` with `m` in `[sqrt(2)/2, sqrt(2))` by bit manipulation (subnormals are
//!   pre-scaled by `2^54` / `2^25`), `f = m - 1`, `s = f / (2 + f)`,
//!   `log(1+f) = f - (hfsq - s (hfsq + R(s^2)))`, plus `k ln 2` in two parts; then 0 -> -inf,
//!   negative -> NaN, inf -> inf, NaN -> NaN.
//! - `log2`, `log10`: the same reduction; `log(1+f)` split into a short-mantissa high part and
//!   an exact low part, each multiplied by `1/ln(base)` (also split), `k` (times `log10(2)`)
//!   added with its rounding error carried: `log2(2^k)` is exactly `k`.
//! - `log1p`: `u = 1 + x` reduced like `log`, the rounding error of `1 + x` restored as
//!   `c / u`; `log1p(x) = x` for tiny `x`, -1 -> -inf, below -1 -> NaN.
//! - `expm1`: `x = k ln2 + r` (k = 0 for |x| <= ln2/2) with the reduction's error `c` kept,
//!   `e^r - 1` by fdlibm's rational form, recombined with `2^k` in the order fdlibm uses for each
//!   range of k; `exp(x)` above 56 ln2 (27 ln2 for f32), -1 below its negative.
//! - `tanh`: one `expm1` of `±2|x|`; the quotient `t / (t + 2)` is corrected with exact
//!   residuals (TwoSum, Dekker's product) so it adds no error of its own.
//! - `sinh`, `cosh`: from `expm1(|x|)` near 0, `exp(|x|)` further out, and `exp(|x| - K ln2)`
//!   scaled by two exact powers of two where `e^|x|` alone would overflow.
//! - `arctan`: |x| reduced to one of five intervals (`atan(c) + atan((|x| - c)/(1 + c|x|))`,
//!   c in {0, 0.5, 1, 1.5, inf}), an odd minimax polynomial, `atan(c)` added in two parts.
//! - `sin`, `cos`, `tan` (`trig.rs`): Cody-Waite reduction by pi/2 in three parts (f32: four)
//!   to a double-word `hi + lo` for |x| < 2^20 pi/2 (f32: 2^12 pi/2), fdlibm's kernels on it;
//!   larger |x|, inf and NaN call libm in those lanes only ([`crate::kir::Inst::Fallback`]:
//!   such arguments are rare) on a target with scalar calls, and take a Payne-Hanek reduction
//!   in integer arithmetic from a table of the digits of 2/pi on one without (the GPU).
//! - `arcsin`, `arccos`, `arctan2`, `arcsinh`, `arccosh`, `arctanh`, `hypot` (`inverse.rs`):
//!   fdlibm's formulas (one rational and a split square root; `arctan2` on the `arctan`
//!   expansion; the inverse hyperbolics as one `log1p` each; `hypot` with one exact scale,
//!   exact squares and a corrected square root).
//! - `pow` (`pow.rs`): fdlibm's double-word `log2|x|` (about 64 bits), `y log2|x|` as a
//!   head and a tail, `2^(head + tail)` by `exp`'s rational form, all of C99's special cases.
//!
//! NaN results carry the sign glibc gives them (so `copysign` agrees with NumPy): invalid
//! logarithms, `arccosh` below 1, `arctanh` beyond 1 and `pow` of a negative base with a
//! non-integer exponent give x86's default NaN (sign bit set), `arcsin`/`arccos` beyond 1 a
//! positive NaN, NaN operands pass through as glibc passes them.
//!
//! Error bounds, measured against glibc's f64 functions (within 1 ULP of exact, most correctly
//! rounded) and, for f32, against the f64 result rounded to f32, over dense sweeps of each
//! function's domain where its algorithm switches ranges, its special values (NaN, ±inf, ±0,
//! subnormals, overflow and underflow edges), signed powers of two across the whole exponent
//! range, and 100,000 random bit patterns (200,000 more on the JIT for the functions of
//! `accuracy.rs`); `ULP_BOUNDS` and `BINARY_ULP_BOUNDS` hold them and the tests `ulp_table`,
//! `accuracy::new_unary_ulp_table` and `accuracy::binary_ulp_table` fail if any is exceeded
//! (they print the measured table with `--nocapture`). The f32 column of the functions marked
//! `*` was measured over all 2^32 inputs (`accuracy::exhaustive_f32`, ignored; binary functions:
//! every `x` against two `y`); on the test domains the JIT's results are the interpreter's bit
//! for bit (`accuracy::interpreter_and_jit_agree_bit_for_bit`):
//!
//! | function | f64 bound (measured) | f32 bound (measured) |
//! |---|---|---|
//! | `exp` (table, fma, rational) | 1 (1) | 1 (1) |
//! | `log` | 1 (1) | 1 (1) |
//! | `log2` | 2 (1) | 2 (1) |
//! | `log10` | 2 (2) | 2 (1) |
//! | `log1p` | 2 (1) | 2 (1) |
//! | `expm1` | 2 (1) | 2 (1) |
//! | `tanh` | 2 (2) | 2 (1) |
//! | `sinh` | 2 (2) | 2 (1) |
//! | `cosh` | 2 (2) | 2 (1) |
//! | `arctan` | 2 (1) | 2 (1) |
//! | `sin` * | 2 (1) | 1 (1) |
//! | `cos` * | 2 (1) | 1 (1) |
//! | `tan` * | 2 (1) | 1 (1) |
//! | `arcsin` * | 2 (1) | 1 (1) |
//! | `arccos` * | 2 (1) | 1 (1) |
//! | `arcsinh` * | 2 (1) | 2 (2) |
//! | `arccosh` * | 2 (1) | 2 (2) |
//! | `arctanh` * | 2 (1) | 2 (2) |
//! | `pow` * | 2 (1) | 2 (1) |
//! | `arctan2` * | 2 (1) | 2 (2) |
//! | `hypot` * | 2 (1) | 2 (1) |
//!
//! In the lanes where `sin`/`cos`/`tan` call libm the result is glibc's, bit for bit (glibc
//! itself is several ULP off the exact value within ~1e-9 of a multiple of pi/2 for huge
//! arguments: see `tests/gpu/regressions.rs`, `sin_cos_tan_of_huge_arguments`).

// The coefficients (and fdlibm's pi/2, pi/4, 1/ln 2 splits) are written with all the digits
// they were published with; each literal is
// the f64 nearest to that decimal, which is the value the algorithm was fitted for.
#![allow(clippy::excessive_precision, clippy::approx_constant)]
use crate::dtype::DType;
use crate::kir::{Call, Const, Inst, Kernel, KernelBuilder, Output, Value};
use crate::ops::{BinaryOp, UnaryOp};

#[cfg(test)]
pub(crate) mod accuracy;
mod exp;
mod helpers;
mod inverse;
mod log;
mod pow;

mod trig;

/// `(function, dtype, max ULP vs glibc)` for every expanded function: the documented table.
pub const ULP_BOUNDS: [(UnaryOp, DType, u64); 36] = [
    (UnaryOp::Exp, DType::F64, 1),
    (UnaryOp::Exp, DType::F32, 1),
    (UnaryOp::Log, DType::F64, 1),
    (UnaryOp::Log, DType::F32, 1),
    (UnaryOp::Log2, DType::F64, 2),
    (UnaryOp::Log2, DType::F32, 2),
    (UnaryOp::Log10, DType::F64, 2),
    (UnaryOp::Log10, DType::F32, 2),
    (UnaryOp::Log1p, DType::F64, 2),
    (UnaryOp::Log1p, DType::F32, 2),
    (UnaryOp::Expm1, DType::F64, 2),
    (UnaryOp::Expm1, DType::F32, 2),
    (UnaryOp::Tanh, DType::F64, 2),
    (UnaryOp::Tanh, DType::F32, 2),
    (UnaryOp::Sinh, DType::F64, 2),
    (UnaryOp::Sinh, DType::F32, 2),
    (UnaryOp::Cosh, DType::F64, 2),
    (UnaryOp::Cosh, DType::F32, 2),
    (UnaryOp::Arctan, DType::F64, 2),
    (UnaryOp::Arctan, DType::F32, 2),
    (UnaryOp::Sin, DType::F64, 2),
    (UnaryOp::Sin, DType::F32, 1),
    (UnaryOp::Cos, DType::F64, 2),
    (UnaryOp::Cos, DType::F32, 1),
    (UnaryOp::Tan, DType::F64, 2),
    (UnaryOp::Tan, DType::F32, 1),
    (UnaryOp::Arcsin, DType::F64, 2),
    (UnaryOp::Arcsin, DType::F32, 1),
    (UnaryOp::Arccos, DType::F64, 2),
    (UnaryOp::Arccos, DType::F32, 1),
    (UnaryOp::Arcsinh, DType::F64, 2),
    (UnaryOp::Arcsinh, DType::F32, 2),
    (UnaryOp::Arccosh, DType::F64, 2),
    (UnaryOp::Arccosh, DType::F32, 2),
    (UnaryOp::Arctanh, DType::F64, 2),
    (UnaryOp::Arctanh, DType::F32, 2),
];

/// `(function, dtype, max ULP vs glibc)` for every expanded binary function.
pub const BINARY_ULP_BOUNDS: [(BinaryOp, DType, u64); 6] = [
    (BinaryOp::Pow, DType::F64, 2),
    (BinaryOp::Pow, DType::F32, 2),
    (BinaryOp::Arctan2, DType::F64, 2),
    (BinaryOp::Arctan2, DType::F32, 2),
    (BinaryOp::Hypot, DType::F64, 2),
    (BinaryOp::Hypot, DType::F32, 2),
];

/// Whether this module has a primitive sequence for the operation on this dtype.
pub fn implements(op: UnaryOp, dtype: DType) -> bool {
    use UnaryOp::*;
    matches!(
        op,
        Exp | Log
            | Log2
            | Log10
            | Log1p
            | Expm1
            | Tanh
            | Sinh
            | Cosh
            | Arctan
            | Sin
            | Cos
            | Tan
            | Arcsin
            | Arccos
            | Arcsinh
            | Arccosh
            | Arctanh
    ) && dtype.is_float()
}

/// Whether this module has a primitive sequence for the binary operation on this dtype.
pub fn implements_binary(op: BinaryOp, dtype: DType) -> bool {
    matches!(op, BinaryOp::Pow | BinaryOp::Arctan2 | BinaryOp::Hypot) && dtype.is_float()
}

/// Whether [`expand`] (the CPU JIT's pass) expands the operation: the functions whose vector
/// code beat a scalar libm loop when measured side by side on the development machine (exp
/// 2.4-3.3x without FMA; with FMA (and vector constants folded into their instructions, see
/// `cpu::codegen`) 3.8x in f64 at 2.3 ns per element, 2.4x in f32; the f64 table algorithm,
/// 2026-12-02: 2.6x at 2.4 ns per element on 1e6, 2.19 ns against the FMA polynomial's 2.56
/// on 1e4 cached elements, `cpu::tests::exp_algorithms_speed`; log1p 1.0-1.5x, arctan
/// 1.2-1.8x; the logarithms about even). `expm1`, `sinh`, `cosh` and `tanh` (110-200
/// instructions, two or three exponentials' worth) ran at 0.3-0.55x of libm before constants
/// were folded: Cranelift kept their many constants live across the loop and spilled 128-bit
/// registers, so the JIT calls libm for them until they are measured again. [`expand_all`]
/// expands every implemented function (the ULP tests use it).
///
/// The trigonometric and inverse functions, measured as libm time / vector time on 1e6
/// elements, one thread, interleaved, the minimum of 15 (60 for the close calls) runs each,
/// in release, in three runs on the loaded 2-core machine (`accuracy::speed`, ignored):
///
/// | function | f64 | f32 |
/// |---|---|---|
/// | `sin` | 3.0-4.2x | 3.4-5.4x |
/// | `cos` | 3.3-4.2x | 3.4-5.0x |
/// | `tan` | 1.9-2.3x | 3.1-4.3x |
/// | `arcsin` | 2.9-3.9x | 5.1-7.0x |
/// | `arccos` | 4.5-5.0x | 8.5-9.3x |
/// | `arcsinh` | 1.1-1.8x (1.41x over 60 runs) | 3.5-4.5x |
/// | `arccosh` | 1.00-1.09x (not expanded) | 2.0-3.0x |
/// | `arctanh` | 2.0-2.2x | 6.7-8.2x |
///
/// f64 `sin` and `cos` are expanded although NumPy's are glibc's bit for bit: glibc is not
/// correctly rounded there (4 of 631 fixture inputs), so no faster algorithm can match it
/// exactly, and the bound for them is 2 ULP; the expansion is within 1 ULP of
/// glibc (26 of 513 fixture values differ by 1 ULP), so `tests/golden_numpy.rs` allows 1 ULP
/// for them, as it does for `exp` and `log`. `arccosh` f64 is even
/// with libm, so it keeps libm's results.
pub fn expands(op: UnaryOp, dtype: DType) -> bool {
    use UnaryOp::*;
    implements(op, dtype)
        && match op {
            Exp | Log | Log2 | Log10 | Log1p | Arctan => true,
            Arccosh => dtype == DType::F32,
            Sin | Cos | Tan | Arcsin | Arccos | Arcsinh | Arctanh => true,
            _ => false,
        }
}

/// [`expands`] for the binary operations, measured the same way:
///
/// | function | f64 | f32 |
/// |---|---|---|
/// | `arctan2` | 2.3-2.5x | 12.9-13.5x |
/// | `hypot` | 0.70-0.91x (not expanded; one loaded run said 1.5x) | 1.1-1.6x |
/// | `pow` | 0.28-0.41x (not expanded) | 0.27-0.35x (not expanded) |
///
/// `pow` (260 instructions, double-word arithmetic without FMA) loses to glibc's table-driven
/// `pow`/`powf`: timed apart, its `log2` part alone ran 1.3x and its `2^x` part 2.8x faster
/// than the whole libm call (f64), but the two together took 2.2x the sum of their times
/// (Cranelift spills, as in `expm1`).
/// `hypot` f64 loses to glibc's short scaled square root: the corrected square root costs
/// three exact products.
pub fn expands_binary(op: BinaryOp, dtype: DType) -> bool {
    implements_binary(op, dtype)
        && match op {
            BinaryOp::Arctan2 => true,
            BinaryOp::Hypot => dtype == DType::F32,
            _ => false,
        }
}

/// What the emitted primitives may use on the backend that will run them: the one place where
/// the expansions differ by backend. The CPU JIT's target is [`Target::cpu`] (fused
/// multiply-add where the machine has it, tables, scalar calls for rare lanes); the GPU's is
/// [`Target::WGSL`] (none of the three: WGSL's `fma` may not fuse, and a shader cannot call
/// libm; tables become constant arrays in the shader).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Target {
    /// The backend computes [`Inst::Fma`] exactly (one rounding) and fast: `exp` then uses
    /// its FMA algorithm (see the module docs), when `fallback` holds too.
    pub fma: bool,
    /// The backend reads constant tables ([`Inst::Lookup`]): with `fma` too, float64 `exp`
    /// uses its table algorithm (see the module docs); without `fallback`, `sin`, `cos` and
    /// `tan` read the digits of `2/pi` for their Payne-Hanek reduction.
    pub tables: bool,
    /// The backend can call the scalar function in rare lanes ([`Inst::Fallback`]: `exp` of
    /// FMA targets beyond |x| > 708, `sin`/`cos`/`tan` of huge arguments, infinities, NaN).
    /// Without it every lane is computed in the kernel: `exp` takes its algorithm without FMA
    /// (valid on the whole domain), the trigonometric functions a Payne-Hanek reduction
    /// (`trig.rs`), which reads the digits of 2/pi from a table whatever `tables` says: a
    /// target without scalar calls must read tables.
    pub fallback: bool,
}

impl Target {
    /// The WGSL generator's target (`gpu::wgsl`): plain arithmetic, constant tables,
    /// every lane in the kernel.
    pub const WGSL: Target = Target {
        fma: false,
        tables: true,
        fallback: false,
    };

    /// The CPU JIT's target, given whether its ISA has an exact, fast fused multiply-add.
    pub fn cpu(fma: bool) -> Target {
        Target {
            fma,
            tables: true,
            fallback: true,
        }
    }

    /// This machine's CPU JIT ([`crate::target::host_has_fma`], detected once; tables and
    /// scalar calls always).
    pub fn host() -> Target {
        Target::cpu(crate::target::host_has_fma())
    }
}

/// Rewrite `k` for this machine's CPU JIT ([`Target::host`]), replacing each function
/// [`expands`] selects by its primitive sequence.
pub fn expand(k: &Kernel) -> Kernel {
    expand_for(k, Target::host())
}

/// [`expand`] for a given target.
pub fn expand_for(k: &Kernel, target: Target) -> Kernel {
    expand_if(k, target, expands, expands_binary)
}

/// Rewrite `k` for [`Target::host`], replacing every function this module implements.
pub fn expand_all(k: &Kernel) -> Kernel {
    expand_all_for(k, Target::host())
}

/// [`expand_all`] for a given target.
pub fn expand_all_for(k: &Kernel, target: Target) -> Kernel {
    expand_if(k, target, implements, implements_binary)
}

fn expand_if(
    k: &Kernel,
    target: Target,
    unary: fn(UnaryOp, DType) -> bool,
    binary: fn(BinaryOp, DType) -> bool,
) -> Kernel {
    if !k.insts.iter().any(|d| match d.inst {
        Inst::Unary { op, .. } => unary(op, d.ty),
        Inst::Binary { op, .. } => binary(op, d.ty),
        Inst::Fallback { .. } => !target.fallback,
        _ => false,
    }) {
        return k.clone();
    }
    let mut b = KernelBuilder::new();
    for t in &k.inputs {
        b.input(*t);
    }
    let mut map: Vec<Value> = Vec::with_capacity(k.insts.len());
    for d in &k.insts {
        let m = |v: Value| map[v.index()];
        let inst = match d.inst {
            Inst::Unary { op, arg } if unary(op, d.ty) => {
                map.push(expand_unary(&mut b, target, d.ty, op, m(arg)));
                continue;
            }
            Inst::Binary { op, lhs, rhs } if binary(op, d.ty) => {
                map.push(expand_binary(&mut b, target, d.ty, op, m(lhs), m(rhs)));
                continue;
            }
            // A target without scalar calls computes the call in every lane (expanded where
            // this module implements it) and selects.
            Inst::Fallback { cond, value, call } if !target.fallback => {
                let r = match call {
                    Call::Unary(op, a) if implements(op, d.ty) => {
                        expand_unary(&mut b, target, d.ty, op, m(a))
                    }
                    Call::Unary(op, a) => b.push(Inst::Unary { op, arg: m(a) }, d.ty),
                    Call::Binary(op, l, r) if implements_binary(op, d.ty) => {
                        expand_binary(&mut b, target, d.ty, op, m(l), m(r))
                    }
                    Call::Binary(op, l, r) => b.push(
                        Inst::Binary {
                            op,
                            lhs: m(l),
                            rhs: m(r),
                        },
                        d.ty,
                    ),
                };
                let sel = Inst::Select {
                    cond: m(cond),
                    on_true: r,
                    on_false: m(value),
                };
                map.push(b.push(sel, d.ty));
                continue;
            }
            Inst::Load { input } => Inst::Load { input },
            Inst::Const(c) => Inst::Const(c),
            Inst::Unary { op, arg } => Inst::Unary { op, arg: m(arg) },
            Inst::Binary { op, lhs, rhs } => Inst::Binary {
                op,
                lhs: m(lhs),
                rhs: m(rhs),
            },
            Inst::Select {
                cond,
                on_true,
                on_false,
            } => Inst::Select {
                cond: m(cond),
                on_true: m(on_true),
                on_false: m(on_false),
            },
            Inst::Cast { arg } => Inst::Cast { arg: m(arg) },
            Inst::Bitcast { arg } => Inst::Bitcast { arg: m(arg) },
            Inst::Fallback { cond, value, call } => Inst::Fallback {
                cond: m(cond),
                value: m(value),
                call: call.map(m),
            },
            Inst::Fma { a, b, c } => Inst::Fma {
                a: m(a),
                b: m(b),
                c: m(c),
            },
            Inst::Lookup { table, index } => Inst::Lookup {
                table,
                index: m(index),
            },
        };
        map.push(b.push(inst, d.ty));
    }
    let outputs = k
        .outputs
        .iter()
        .map(|o| match *o {
            Output::Store { value } => Output::Store {
                value: map[value.index()],
            },
            Output::Reduce { op, value } => Output::Reduce {
                op,
                value: map[value.index()],
            },
        })
        .collect();
    b.finish_many(outputs)
}

/// The primitive sequence of the unary function `op` on `x` of float type `t`.
fn expand_unary(b: &mut KernelBuilder, target: Target, t: DType, op: UnaryOp, x: Value) -> Value {
    let mut e = Emit::new(b, t, target);
    match op {
        UnaryOp::Exp if target.fma && target.tables && target.fallback && t == DType::F64 => {
            e.exp_table(x)
        }
        UnaryOp::Exp if target.fma && target.fallback => e.exp_fma(x),
        UnaryOp::Exp => e.exp(x),
        UnaryOp::Log => e.log(x),
        UnaryOp::Log2 => e.log_base(x, 2),
        UnaryOp::Log10 => e.log_base(x, 10),
        UnaryOp::Log1p => e.log1p(x),
        UnaryOp::Expm1 => e.expm1(x),
        UnaryOp::Tanh => e.tanh(x),
        UnaryOp::Sinh => e.sinh(x),
        UnaryOp::Cosh => e.cosh(x),
        UnaryOp::Sin => e.trig(x, trig::Trig::Sin),
        UnaryOp::Cos => e.trig(x, trig::Trig::Cos),
        UnaryOp::Tan => e.trig(x, trig::Trig::Tan),
        UnaryOp::Arcsin => e.asin_acos(x, false),
        UnaryOp::Arccos => e.asin_acos(x, true),
        UnaryOp::Arcsinh => e.asinh(x),
        UnaryOp::Arccosh => e.acosh(x),
        UnaryOp::Arctanh => e.atanh(x),
        _ => e.atan(x),
    }
}

/// The primitive sequence of the binary function `op` on `x`, `y` of float type `t`.
fn expand_binary(
    b: &mut KernelBuilder,
    target: Target,
    t: DType,
    op: BinaryOp,
    x: Value,
    y: Value,
) -> Value {
    let mut e = Emit::new(b, t, target);
    match op {
        BinaryOp::Pow => e.pow(x, y),
        BinaryOp::Arctan2 => e.atan2(x, y),
        _ => e.hypot(x, y),
    }
}

/// Emits primitive instructions for one float type `t` and its same-width integer type.
struct Emit<'a> {
    b: &'a mut KernelBuilder,
    t: DType,
    it: DType,
    target: Target,
}

impl<'a> Emit<'a> {
    fn new(b: &'a mut KernelBuilder, t: DType, target: Target) -> Emit<'a> {
        let it = if t == DType::F64 {
            DType::I64
        } else {
            DType::I32
        };
        Emit { b, t, it, target }
    }
    fn f64(&self) -> bool {
        self.t == DType::F64
    }
    fn c(&mut self, v: f64) -> Value {
        let c = if self.f64() {
            Const::F64(v)
        } else {
            Const::F32(v as f32)
        };
        self.b.push(Inst::Const(c), self.t)
    }
    fn ci(&mut self, v: i64) -> Value {
        let c = if self.f64() {
            Const::I64(v)
        } else {
            Const::I32(v as i32)
        };
        self.b.push(Inst::Const(c), self.it)
    }
    fn bin(&mut self, op: BinaryOp, a: Value, b: Value) -> Value {
        let ty = if op.is_comparison() {
            DType::Bool
        } else {
            self.b.ty(a)
        };
        self.b.push(Inst::Binary { op, lhs: a, rhs: b }, ty)
    }
    fn add(&mut self, a: Value, b: Value) -> Value {
        self.bin(BinaryOp::Add, a, b)
    }
    fn sub(&mut self, a: Value, b: Value) -> Value {
        self.bin(BinaryOp::Sub, a, b)
    }
    fn mul(&mut self, a: Value, b: Value) -> Value {
        self.bin(BinaryOp::Mul, a, b)
    }
    fn div(&mut self, a: Value, b: Value) -> Value {
        self.bin(BinaryOp::Div, a, b)
    }
    fn unary(&mut self, op: UnaryOp, a: Value) -> Value {
        self.b.push(Inst::Unary { op, arg: a }, self.t)
    }
    fn select(&mut self, c: Value, a: Value, b: Value) -> Value {
        let ty = self.b.ty(a);
        self.b.push(
            Inst::Select {
                cond: c,
                on_true: a,
                on_false: b,
            },
            ty,
        )
    }
    fn bits(&mut self, a: Value) -> Value {
        self.b.push(Inst::Bitcast { arg: a }, self.it)
    }
    fn float(&mut self, a: Value) -> Value {
        self.b.push(Inst::Bitcast { arg: a }, self.t)
    }
    /// The NaN an invalid operation produces on x86 (and so in glibc and NumPy): sign bit set,
    /// quiet, no payload. `copysign` and the bits show the difference from `f64::NAN`.
    fn default_nan(&mut self) -> Value {
        let c = if self.f64() {
            Const::F64(f64::from_bits(0xFFF8_0000_0000_0000))
        } else {
            Const::F32(f32::from_bits(0xFFC0_0000))
        };
        self.b.push(Inst::Const(c), self.t)
    }
    /// `a * b + c`, rounded once ([`Inst::Fma`]; only for a [`Target`] with `fma`).
    fn fma(&mut self, a: Value, b: Value, c: Value) -> Value {
        debug_assert!(self.target.fma);
        let ty = self.b.ty(a);
        self.b.push(Inst::Fma { a, b, c }, ty)
    }
    /// `c0 + c1 x + c2 x^2 + ...` in Estrin's form with fused multiply-adds (`x2 = x * x`):
    /// pairs `c0 + c1 x`, `c2 + c3 x`, ... combined pairwise with `x^2`, `x^4`, ..., so the
    /// dependency chain is logarithmic in the degree (Horner's is linear).
    fn estrin_fma(&mut self, x: Value, x2: Value, coeffs: &[f64]) -> Value {
        let mut level: Vec<Value> = coeffs
            .chunks(2)
            .map(|p| {
                let c0 = self.c(p[0]);
                match p.get(1) {
                    Some(&c1) => {
                        let c1 = self.c(c1);
                        self.fma(c1, x, c0)
                    }
                    None => c0,
                }
            })
            .collect();
        let mut pw = x2;
        while level.len() > 1 {
            let next: Vec<Value> = level
                .chunks(2)
                .map(|p| match p {
                    [a, b] => self.fma(*b, pw, *a),
                    _ => p[0],
                })
                .collect();
            level = next;
            if level.len() > 1 {
                pw = self.mul(pw, pw);
            }
        }
        level[0]
    }
    /// `c0 + x*(c1 + x*(c2 + ...))`.
    fn horner(&mut self, x: Value, coeffs: &[f64]) -> Value {
        let mut acc = self.c(coeffs[coeffs.len() - 1]);
        for &c in coeffs[..coeffs.len() - 1].iter().rev() {
            let p = self.mul(acc, x);
            let cv = self.c(c);
            acc = self.add(cv, p);
        }
        acc
    }
    /// Mantissa width and exponent bias of the float type.
    fn layout(&self) -> (i64, i64) {
        if self.f64() {
            (52, 1023)
        } else {
            (23, 127)
        }
    }
    /// `1.5 * 2^mantissa_bits`: adding a small integer-valued float to it puts the integer in
    /// the low bits of the sum's representation.
    fn magic(&self) -> f64 {
        1.5 * (1u64 << self.layout().0) as f64
    }
    /// `2^k` for an integer-valued float `k` in the normal exponent range.
    fn pow2(&mut self, k: Value) -> Value {
        let (mbits, bias) = self.layout();
        let off = self.c(bias as f64 + self.magic());
        let t = self.add(k, off);
        let tb = self.bits(t);
        let sh = self.ci(mbits);
        let e = self.bin(BinaryOp::Shl, tb, sh);
        self.float(e)
    }
    /// A small non-negative integer held in an integer value, as a float.
    fn int_to_float(&mut self, i: Value) -> Value {
        let m = self.magic();
        let mc = self.c(m);
        let mb = self.bits(mc);
        let o = self.bin(BinaryOp::Or, i, mb);
        let f = self.float(o);
        self.sub(f, mc)
    }

    /// `arctan`: |x| reduced to one of five intervals around 0, 0.5, 1, 1.5 and infinity
    /// (`atan(|x|) = atan(c) + atan((|x| - c) / (1 + c|x|))`), an odd minimax polynomial, and
    /// `atan(c)` added back in two parts; the sign last.
    fn atan(&mut self, x: Value) -> Value {
        let f64 = self.f64();
        let (hi, lo, at): ([f64; 4], [f64; 4], &[f64]) = if f64 {
            (
                [
                    4.63647609000806093515e-01,
                    7.85398163397448278999e-01,
                    9.82793723247329054082e-01,
                    1.57079632679489655800e+00,
                ],
                [
                    2.26987774529616870924e-17,
                    3.06161699786838301793e-17,
                    1.39033110312309984516e-17,
                    6.12323399573676603587e-17,
                ],
                &[
                    3.33333333333329318027e-01,
                    -1.99999999998764832476e-01,
                    1.42857142725034663711e-01,
                    -1.11111104054623557880e-01,
                    9.09088713343650656196e-02,
                    -7.69187620504482999495e-02,
                    6.66107313738753120669e-02,
                    -5.83357013379057348645e-02,
                    4.97687799461593236017e-02,
                    -3.65315727442169155270e-02,
                    1.62858201153657823623e-02,
                ],
            )
        } else {
            (
                [
                    4.6364760399e-01,
                    7.8539812565e-01,
                    9.8279368877e-01,
                    1.5707962513e+00,
                ],
                [
                    5.0121582440e-09,
                    3.7748947079e-08,
                    3.4473217170e-08,
                    7.5497894159e-08,
                ],
                &[
                    3.3333328366e-01,
                    -1.9999158382e-01,
                    1.4253635705e-01,
                    -1.0648017377e-01,
                    6.1687607318e-02,
                ],
            )
        };
        let a = self.unary(UnaryOp::Abs, x);
        let one = self.c(1.0);
        let two = self.c(2.0);
        let onehalf = self.c(1.5);
        let mone = self.c(-1.0);
        // Interval id: -1 below 0.4375, then 0..3 split at 0.6875, 1.1875, 2.4375.
        let b0 = self.c(0.4375);
        let b1 = self.c(0.6875);
        let b2 = self.c(1.1875);
        let b3 = self.c(2.4375);
        let ge0 = self.bin(BinaryOp::Ge, a, b0);
        let ge1 = self.bin(BinaryOp::Ge, a, b1);
        let ge2 = self.bin(BinaryOp::Ge, a, b2);
        let ge3 = self.bin(BinaryOp::Ge, a, b3);
        // Numerator and denominator of the reduced argument per interval.
        let a2 = self.mul(two, a);
        let n0 = self.sub(a2, one);
        let d0 = self.add(two, a);
        let n1 = self.sub(a, one);
        let d1 = self.add(a, one);
        let n2 = self.sub(a, onehalf);
        let a15 = self.mul(onehalf, a);
        let d2 = self.add(one, a15);
        let num = self.select(ge0, n0, a);
        let den = self.select(ge0, d0, one);
        let num = self.select(ge1, n1, num);
        let den = self.select(ge1, d1, den);
        let num = self.select(ge2, n2, num);
        let den = self.select(ge2, d2, den);
        let num = self.select(ge3, mone, num);
        let den = self.select(ge3, a, den);
        let r = self.div(num, den);
        let z = self.mul(r, r);
        let w = self.mul(z, z);
        let even: Vec<f64> = at.iter().step_by(2).copied().collect();
        let odd: Vec<f64> = at.iter().skip(1).step_by(2).copied().collect();
        let s1p = self.horner(w, &even);
        let s1 = self.mul(z, s1p);
        let s2p = self.horner(w, &odd);
        let s2 = self.mul(w, s2p);
        let s = self.add(s1, s2);
        let rs = self.mul(r, s);
        let small = self.sub(r, rs);
        let pick = |e: &mut Self, v: [f64; 4]| {
            let c0 = e.c(v[0]);
            let c1 = e.c(v[1]);
            let c2 = e.c(v[2]);
            let c3 = e.c(v[3]);
            let t = e.select(ge1, c1, c0);
            let t = e.select(ge2, c2, t);
            e.select(ge3, c3, t)
        };
        let h = pick(self, hi);
        let l = pick(self, lo);
        let t = self.sub(rs, l);
        let t = self.sub(t, r);
        let big = self.sub(h, t);
        let res = self.select(ge0, big, small);
        let res = self.bin(BinaryOp::Copysign, res, x);
        let is_nan = self.bin(BinaryOp::Ne, x, x);
        self.select(is_nan, x, res)
    }
}

const LN_2: f64 = std::f64::consts::LN_2;

#[cfg(test)]
mod tests;
