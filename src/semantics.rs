//! Scalar semantics of every operator for every dtype, following NumPy 2 on x86-64.
//!
//! This module is the written-down definition the reference evaluator applies element by
//! element, and the CPU JIT calls for operations Cranelift has no instruction for
//! (transcendentals, `pow`, float `%` and `//`, ...). Cases NumPy defines specially:
//! - integer `//`, `%` and `fmod` by zero give 0 (NumPy warns and returns 0);
//!   `MIN // -1` wraps to `MIN`; integer arithmetic wraps;
//! - float `//` by zero is `a / b` (inf or NaN); float `%` by zero is NaN; the sign of `%`
//!   follows the divisor, a zero remainder takes the divisor's sign;
//! - `maximum`/`minimum` propagate NaN and return the second operand on ties (so
//!   `maximum(0.0, -0.0)` is `-0.0`); `sign(NaN)` is NaN and `sign(±0)` is `+0`;
//! - `round` is half to even; `floor`/`ceil`/`trunc`/`round` keep integer dtypes;
//! - unsigned `//`, `%` and `fmod` are plain unsigned division (by zero: 0); unsigned `-x`
//!   wraps (`-uint8(1)` is 255) and `abs` is the identity; `abs` of a signed minimum wraps to
//!   itself;
//! - shifts by a negative amount or by at least the bit width give 0 (`>>` of a negative: -1);
//! - integer `**` with a negative exponent (NumPy raises; fusebox cannot raise per element)
//!   gives the truncated real result: 1 for base 1, ±1 for base -1, else 0;
//! - float to int32/int64 casts of NaN or out-of-range values give the integer's minimum (what
//!   NumPy's C cast gives on x86-64); the narrower and unsigned integers follow NumPy's x86-64
//!   loops as [`float_to_int`] describes;
//! - NaN signs follow glibc on x86-64 where `copysign` can see them: `arccosh` below 1 and
//!   `arctanh` beyond 1 give the default NaN (sign bit set); `hypot` passes a NaN operand
//!   through (the first if both are NaN) unless the other operand is infinite.
use crate::dtype::{f16, f16_from_f32, f16_from_f64, f16_to_f32};
use crate::ops::{BinaryOp, UnaryOp};

macro_rules! float_semantics {
    ($unary:ident, $binary:ident, $t:ty, $m:ident) => {
        /// Element-wise unary operator on this float type.
        pub fn $unary(op: UnaryOp, x: $t) -> $t {
            use UnaryOp::*;
            match op {
                Neg => -x,
                Not => <$t>::NAN,
                Abs => x.abs(),
                Sign => {
                    if x > 0.0 {
                        1.0
                    } else if x < 0.0 {
                        -1.0
                    } else if x == 0.0 {
                        0.0
                    } else {
                        x
                    }
                }
                Sqrt => x.sqrt(),
                Exp => x.exp(),
                Expm1 => x.exp_m1(),
                Log => x.ln(),
                Log1p => x.ln_1p(),
                Log2 => x.log2(),
                Log10 => x.log10(),
                Sin => x.sin(),
                Cos => x.cos(),
                Tan => x.tan(),
                Arcsin => x.asin(),
                Arccos => x.acos(),
                Arctan => x.atan(),
                Sinh => libm::$m::sinh(x),
                Cosh => libm::$m::cosh(x),
                Tanh => libm::$m::tanh(x),
                Arcsinh => libm::$m::asinh(x),
                // libm's acosh returns finite garbage below 1; NumPy (glibc) gives x86's
                // default NaN there (sign bit set), as for atanh beyond 1.
                Arccosh => {
                    if x < 1.0 {
                        -<$t>::NAN
                    } else {
                        libm::$m::acosh(x)
                    }
                }
                Arctanh => {
                    if x.abs() > 1.0 {
                        -<$t>::NAN
                    } else {
                        libm::$m::atanh(x)
                    }
                }
                Floor => x.floor(),
                Ceil => x.ceil(),
                Round => x.round_ties_even(),
                Trunc => x.trunc(),
            }
        }

        /// Element-wise binary operator on this float type (comparisons: see [`compare`]).
        pub fn $binary(op: BinaryOp, a: $t, b: $t) -> $t {
            use BinaryOp::*;
            match op {
                Add => a + b,
                Sub => a - b,
                Mul => a * b,
                Div => a / b,
                FloorDiv => {
                    // npy_floor_divide / npy_divmod.
                    if b == 0.0 {
                        return a / b;
                    }
                    let m = a % b;
                    let mut div = (a - m) / b;
                    if m != 0.0 && ((b < 0.0) != (m < 0.0)) {
                        div -= 1.0;
                    }
                    if div != 0.0 {
                        let mut f = div.floor();
                        if div - f > 0.5 {
                            f += 1.0;
                        }
                        f
                    } else {
                        (0.0 as $t).copysign(a / b)
                    }
                }
                Rem => {
                    // npy_remainder: sign of the divisor; by zero: NaN.
                    if b == 0.0 {
                        return a % b;
                    }
                    let m = a % b;
                    if m != 0.0 {
                        if (b < 0.0) != (m < 0.0) {
                            m + b
                        } else {
                            m
                        }
                    } else {
                        (0.0 as $t).copysign(b)
                    }
                }
                Pow => a.powf(b),
                // NumPy 2.4 (measured): the second operand on ties, so maximum(0.0, -0.0)
                // is -0.0; NaN in either operand propagates.
                Maximum => {
                    if a > b || a.is_nan() {
                        a
                    } else {
                        b
                    }
                }
                Minimum => {
                    if a < b || a.is_nan() {
                        a
                    } else {
                        b
                    }
                }
                Arctan2 => a.atan2(b),
                // glibc (so NumPy): an infinity wins over NaN; else the NaN operand, the
                // first if both (libm clears the sign of a NaN).
                Hypot => {
                    if a.is_infinite() || b.is_infinite() {
                        <$t>::INFINITY
                    } else if a.is_nan() {
                        a
                    } else if b.is_nan() {
                        b
                    } else {
                        libm::$m::hypot(a, b)
                    }
                }
                Fmod => a % b,
                Copysign => a.copysign(b),
                Nextafter => libm::$m::nextafter(a, b),
                And | Or | Xor | Shl | Shr | Eq | Ne | Lt | Le | Gt | Ge => <$t>::NAN,
            }
        }
    };
}

/// Element-wise unary operator on float16: NumPy's float16 loops convert to float32, apply
/// the float32 function and round the result to float16 (exact for `sqrt`, whose double
/// rounding through float32 is innocuous).
pub fn unary_f16(op: UnaryOp, x: f16) -> f16 {
    f16_from_f32(unary_f32(op, f16_to_f32(x)))
}

/// Element-wise binary operator on float16: computed in float32 and rounded (for `+ - * /`
/// the double rounding is exact), except where NumPy's float16 loop is its own:
/// `maximum`/`minimum` return the *first* operand on ties (`maximum(0.0, -0.0)` is `0.0`,
/// unlike float32's loop) and on two NaNs, and `nextafter` steps one float16.
pub fn binary_f16(op: BinaryOp, a: f16, b: f16) -> f16 {
    let (x, y) = (f16_to_f32(a), f16_to_f32(b));
    match op {
        BinaryOp::Maximum if x >= y || x.is_nan() => a,
        BinaryOp::Minimum if x <= y || x.is_nan() => a,
        BinaryOp::Maximum | BinaryOp::Minimum => b,
        BinaryOp::Nextafter => nextafter_f16(a, b),
        _ => f16_from_f32(binary_f32(op, x, y)),
    }
}

/// NumPy's `npy_half_nextafter`: the next float16 after `x` towards `y`.
pub fn nextafter_f16(x: f16, y: f16) -> f16 {
    let (xf, yf) = (f16_to_f32(x), f16_to_f32(y));
    if xf.is_nan() || yf.is_nan() {
        return f16::from_bits(0x7e00);
    }
    if xf == yf {
        return x;
    }
    let bits = x.to_bits();
    if xf == 0.0 {
        // The smallest subnormal, with y's sign.
        return f16::from_bits((y.to_bits() & 0x8000) | 1);
    }
    // Away from zero when moving towards the larger magnitude on the same side.
    let away = (xf < yf) == (xf > 0.0);
    f16::from_bits(if away { bits + 1 } else { bits - 1 })
}

mod libm {
    pub mod f64 {
        pub use ::libm::{acosh, asinh, atanh, cosh, hypot, nextafter, sinh, tanh};
    }
    pub mod f32 {
        pub use ::libm::{
            acoshf as acosh, asinhf as asinh, atanhf as atanh, coshf as cosh, hypotf as hypot,
            nextafterf as nextafter, sinhf as sinh, tanhf as tanh,
        };
    }
}

float_semantics!(unary_f64, binary_f64, f64, f64);
float_semantics!(unary_f32, binary_f32, f32, f32);

macro_rules! int_semantics {
    ($unary:ident, $binary:ident, $t:ty) => {
        /// Element-wise unary operator on this integer type (wrapping).
        pub fn $unary(op: UnaryOp, x: $t) -> $t {
            use UnaryOp::*;
            match op {
                Neg => x.wrapping_neg(),
                Not => !x,
                Abs => x.wrapping_abs(),
                Sign => x.signum(),
                Floor | Ceil | Round | Trunc => x,
                _ => 0,
            }
        }

        /// Element-wise binary operator on this integer type (wrapping; see module docs).
        pub fn $binary(op: BinaryOp, a: $t, b: $t) -> $t {
            use BinaryOp::*;
            const BITS: $t = <$t>::BITS as $t;
            match op {
                Add => a.wrapping_add(b),
                Sub => a.wrapping_sub(b),
                Mul => a.wrapping_mul(b),
                FloorDiv => {
                    if b == 0 {
                        0
                    } else if b == -1 {
                        a.wrapping_neg()
                    } else {
                        let q = a / b;
                        if a % b != 0 && ((a < 0) != (b < 0)) {
                            q - 1
                        } else {
                            q
                        }
                    }
                }
                Rem => {
                    if b == 0 || b == -1 {
                        0
                    } else {
                        let r = a % b;
                        if r != 0 && ((r < 0) != (b < 0)) {
                            r + b
                        } else {
                            r
                        }
                    }
                }
                Fmod => {
                    if b == 0 || b == -1 {
                        0
                    } else {
                        a % b
                    }
                }
                Pow => {
                    if b < 0 {
                        return match a {
                            1 => 1,
                            -1 => {
                                if b % 2 == 0 {
                                    1
                                } else {
                                    -1
                                }
                            }
                            _ => 0,
                        };
                    }
                    let (mut base, mut e, mut acc) = (a, b, 1 as $t);
                    while e > 0 {
                        if e & 1 == 1 {
                            acc = acc.wrapping_mul(base);
                        }
                        base = base.wrapping_mul(base);
                        e >>= 1;
                    }
                    acc
                }
                Maximum => a.max(b),
                Minimum => a.min(b),
                And => a & b,
                Or => a | b,
                Xor => a ^ b,
                Shl => {
                    if !(0..BITS).contains(&b) {
                        0
                    } else {
                        a << b
                    }
                }
                Shr => {
                    if !(0..BITS).contains(&b) {
                        if a < 0 {
                            -1
                        } else {
                            0
                        }
                    } else {
                        a >> b
                    }
                }
                Div | Arctan2 | Hypot | Copysign | Nextafter | Eq | Ne | Lt | Le | Gt | Ge => 0,
            }
        }
    };
}

int_semantics!(unary_i64, binary_i64, i64);
int_semantics!(unary_i32, binary_i32, i32);
int_semantics!(unary_i16, binary_i16, i16);
int_semantics!(unary_i8, binary_i8, i8);

macro_rules! uint_semantics {
    ($unary:ident, $binary:ident, $t:ty) => {
        /// Element-wise unary operator on this unsigned type (wrapping: `-1` is the maximum).
        pub fn $unary(op: UnaryOp, x: $t) -> $t {
            use UnaryOp::*;
            match op {
                Neg => x.wrapping_neg(),
                Not => !x,
                Abs | Floor | Ceil | Round | Trunc => x,
                Sign => (x != 0) as $t,
                _ => 0,
            }
        }

        /// Element-wise binary operator on this unsigned type (wrapping; by zero: 0; shifts by
        /// at least the bit width: 0).
        pub fn $binary(op: BinaryOp, a: $t, b: $t) -> $t {
            use BinaryOp::*;
            match op {
                Add => a.wrapping_add(b),
                Sub => a.wrapping_sub(b),
                Mul => a.wrapping_mul(b),
                FloorDiv => a.checked_div(b).unwrap_or(0),
                Rem | Fmod => a.checked_rem(b).unwrap_or(0),
                Pow => {
                    let (mut base, mut e, mut acc) = (a, b, 1 as $t);
                    while e > 0 {
                        if e & 1 == 1 {
                            acc = acc.wrapping_mul(base);
                        }
                        base = base.wrapping_mul(base);
                        e >>= 1;
                    }
                    acc
                }
                Maximum => a.max(b),
                Minimum => a.min(b),
                And => a & b,
                Or => a | b,
                Xor => a ^ b,
                Shl => a
                    .checked_shl(u32::try_from(b).unwrap_or(u32::MAX))
                    .unwrap_or(0),
                Shr => a
                    .checked_shr(u32::try_from(b).unwrap_or(u32::MAX))
                    .unwrap_or(0),
                Div | Arctan2 | Hypot | Copysign | Nextafter | Eq | Ne | Lt | Le | Gt | Ge => 0,
            }
        }
    };
}

uint_semantics!(unary_u8, binary_u8, u8);
uint_semantics!(unary_u16, binary_u16, u16);
uint_semantics!(unary_u32, binary_u32, u32);
uint_semantics!(unary_u64, binary_u64, u64);

/// Element-wise unary operator on bool.
pub fn unary_bool(op: UnaryOp, x: bool) -> bool {
    match op {
        UnaryOp::Not => !x,
        _ => x,
    }
}

/// Element-wise binary operator on bool (`+` is `or`, `*` is `and`, as in NumPy).
pub fn binary_bool(op: BinaryOp, a: bool, b: bool) -> bool {
    use BinaryOp::*;
    match op {
        Add | Or | Maximum => a | b,
        Mul | And | Minimum => a & b,
        Xor => a ^ b,
        _ => false,
    }
}

/// Comparison operators (IEEE for floats: NaN compares unequal to everything).
pub fn compare<T: PartialOrd>(op: BinaryOp, a: T, b: T) -> bool {
    use BinaryOp::*;
    match op {
        Eq => a == b,
        Ne => a != b,
        Lt => a < b,
        Le => a <= b,
        Gt => a > b,
        Ge => a >= b,
        _ => false,
    }
}

/// Float to int64 with NumPy's x86-64 result for NaN and out-of-range values (`i64::MIN`).
pub fn f64_to_i64(x: f64) -> i64 {
    const TWO_63: f64 = (1u64 << 63) as f64;
    let t = x.trunc();
    if (-TWO_63..TWO_63).contains(&t) {
        t as i64
    } else {
        i64::MIN
    }
}

/// Float to int32 with NumPy's x86-64 result for NaN and out-of-range values (`i32::MIN`).
pub fn f64_to_i32(x: f64) -> i32 {
    let t = x.trunc();
    if (-2147483648.0..2147483648.0).contains(&t) {
        t as i32
    } else {
        i32::MIN
    }
}

/// Float to an integer dtype `to` with NumPy's x86-64 results (what its contiguous `astype`
/// loops give), as the integer's value:
/// - int8, int16, uint8, uint16 and int32 convert through int32 (NaN and out-of-range values
///   become `i32::MIN`) and keep the low bits: `300.0 -> int8` is 44, `-1.0 -> uint8` is 255;
/// - int64 gives `i64::MIN` for NaN and out-of-range values;
/// - uint32 (uint64) converts values from 2^31 (2^63) up as `x - 2^31` through int32 (int64)
///   with the top bit flipped, smaller ones directly: NaN and `-inf` give 2^31 (2^63), `+inf`
///   and values past the range give 0, `-1.0` gives the maximum.
///
/// `to` must be an integer dtype (bool and floats give 0).
pub fn float_to_int(x: f64, to: crate::dtype::DType) -> i128 {
    use crate::dtype::DType;
    const TWO_31: f64 = 2147483648.0;
    const TWO_63: f64 = 9223372036854775808.0;
    match to {
        DType::I8 | DType::I16 | DType::I32 | DType::U8 | DType::U16 => f64_to_i32(x) as i128,
        DType::I64 => f64_to_i64(x) as i128,
        DType::U32 => {
            if x >= TWO_31 {
                ((f64_to_i32(x - TWO_31) as u32) ^ 0x8000_0000) as i128
            } else {
                f64_to_i32(x) as u32 as i128
            }
        }
        DType::U64 => {
            if x >= TWO_63 {
                ((f64_to_i64(x - TWO_63) as u64) ^ (1 << 63)) as i128
            } else {
                f64_to_i64(x) as u64 as i128
            }
        }
        DType::Bool | DType::F16 | DType::F32 | DType::F64 => 0,
    }
}

/// Convert a constant to `to` with NumPy's `astype` results (see the module docs and
/// [`float_to_int`]): integers wrap to the target's width (two's complement), integers to
/// floats round to nearest, anything to bool is `!= 0`.
pub fn cast(c: crate::dtype::Const, to: crate::dtype::DType) -> crate::dtype::Const {
    use crate::dtype::Const::{self, *};
    use crate::dtype::DType;
    match (c, to) {
        (F16(v), DType::F16) => F16(v),
        (F64(v), DType::F16) => F16(f16_from_f64(v)),
        (F32(v), DType::F16) => F16(f16_from_f32(v)),
        // Everything else converts to float16 through float32 (bool and integers: see
        // `Const::wrap_int`).
        (F16(v), DType::F32) => F32(f16_to_f32(v)),
        // NumPy's float16 -> uint32 loop is a C cast that goes through int64 (NaN and the
        // infinities give 0), unlike its float32 loop.
        (F16(v), DType::U32) => U32(f64_to_i64(f16_to_f32(v) as f64) as u32),
        (F16(_), t) => cast(F32(f16_to_f32_of(c)), t),
        (F32(v), DType::F32) => F32(v),
        (F64(v), DType::F32) => F32(v as f32),
        (F32(_) | F64(_), DType::F64) => F64(c.as_f64()),
        (F32(_) | F64(_), DType::Bool) => Bool(c.as_f64() != 0.0),
        (F32(_) | F64(_), t) => Const::wrap_int(float_to_int(c.as_f64(), t), t),
        // Rust's `as` rounds integers to the nearest float, like C and NumPy (`wrap_int` does
        // for float targets).
        (c, t) => Const::wrap_int(c.as_i128().unwrap_or(0), t),
    }
}

fn f16_to_f32_of(c: crate::dtype::Const) -> f32 {
    match c {
        crate::dtype::Const::F16(v) => f16_to_f32(v),
        _ => 0.0,
    }
}

/// Distance in units in the last place between two non-NaN f64 values, on the line of floats
/// ordered by value, with `-0.0` and `+0.0` the same point (infinities sit one step past the
/// largest finite value). The measure of every ULP bound the tests and tables state; callers
/// decide how NaN and infinities count.
pub fn ulp_distance_f64(a: f64, b: f64) -> u64 {
    fn key(x: f64) -> i128 {
        let bits = x.to_bits() as i64;
        if bits < 0 {
            i64::MIN as i128 - bits as i128
        } else {
            bits as i128
        }
    }
    (key(a) - key(b)).unsigned_abs() as u64
}

/// [`ulp_distance_f64`] for f32 values.
pub fn ulp_distance_f32(a: f32, b: f32) -> u64 {
    fn key(x: f32) -> i64 {
        let bits = x.to_bits() as i32;
        if bits < 0 {
            i32::MIN as i64 - bits as i64
        } else {
            bits as i64
        }
    }
    (key(a) - key(b)).unsigned_abs()
}

/// Reinterpret a constant's bits as `to` (f64 <-> i64, f32 <-> i32); `None` for other pairs.
pub fn bitcast(c: crate::dtype::Const, to: crate::dtype::DType) -> Option<crate::dtype::Const> {
    use crate::dtype::Const::*;
    use crate::dtype::DType;
    Some(match (c, to) {
        (F64(x), DType::I64) => I64(x.to_bits() as i64),
        (I64(x), DType::F64) => F64(f64::from_bits(x as u64)),
        (F32(x), DType::I32) => I32(x.to_bits() as i32),
        (I32(x), DType::F32) => F32(f32::from_bits(x as u32)),
        (F64(x), DType::U64) => U64(x.to_bits()),
        (U64(x), DType::F64) => F64(f64::from_bits(x)),
        (F32(x), DType::U32) => U32(x.to_bits()),
        (U32(x), DType::F32) => F32(f32::from_bits(x)),
        _ => return None,
    })
}

/// `a * b + c` rounded once (IEEE 754 fusedMultiplyAdd, `mul_add`) on three floats of one
/// type: [`crate::kir::Inst::Fma`]; `None` for other operands.
pub fn fma(
    a: crate::dtype::Const,
    b: crate::dtype::Const,
    c: crate::dtype::Const,
) -> Option<crate::dtype::Const> {
    use crate::dtype::Const::{F32, F64};
    match (a, b, c) {
        (F64(a), F64(b), F64(c)) => Some(F64(a.mul_add(b, c))),
        (F32(a), F32(b), F32(c)) => Some(F32(a.mul_add(b, c))),
        _ => None,
    }
}

/// Apply a unary operator to a constant of the operator's compute dtype.
pub fn fold_unary(op: UnaryOp, c: crate::dtype::Const) -> crate::dtype::Const {
    use crate::dtype::Const::*;
    match c {
        Bool(x) => Bool(unary_bool(op, x)),
        I32(x) => I32(unary_i32(op, x)),
        I64(x) => I64(unary_i64(op, x)),
        I8(x) => I8(unary_i8(op, x)),
        I16(x) => I16(unary_i16(op, x)),
        U8(x) => U8(unary_u8(op, x)),
        U16(x) => U16(unary_u16(op, x)),
        U32(x) => U32(unary_u32(op, x)),
        U64(x) => U64(unary_u64(op, x)),
        F16(x) => F16(unary_f16(op, x)),
        F32(x) => F32(unary_f32(op, x)),
        F64(x) => F64(unary_f64(op, x)),
    }
}

/// Apply a binary operator to two constants of the operator's compute dtype (comparisons give
/// `Bool`). `None` if the dtypes differ.
pub fn fold_binary(
    op: BinaryOp,
    a: crate::dtype::Const,
    b: crate::dtype::Const,
) -> Option<crate::dtype::Const> {
    use crate::dtype::Const::*;
    Some(match (a, b) {
        (Bool(x), Bool(y)) if op.is_comparison() => Bool(compare(op, x, y)),
        (I32(x), I32(y)) if op.is_comparison() => Bool(compare(op, x, y)),
        (I64(x), I64(y)) if op.is_comparison() => Bool(compare(op, x, y)),
        (F16(x), F16(y)) if op.is_comparison() => Bool(compare(op, f16_to_f32(x), f16_to_f32(y))),
        (F32(x), F32(y)) if op.is_comparison() => Bool(compare(op, x, y)),
        (F64(x), F64(y)) if op.is_comparison() => Bool(compare(op, x, y)),
        (I8(x), I8(y)) if op.is_comparison() => Bool(compare(op, x, y)),
        (I16(x), I16(y)) if op.is_comparison() => Bool(compare(op, x, y)),
        (U8(x), U8(y)) if op.is_comparison() => Bool(compare(op, x, y)),
        (U16(x), U16(y)) if op.is_comparison() => Bool(compare(op, x, y)),
        (U32(x), U32(y)) if op.is_comparison() => Bool(compare(op, x, y)),
        (U64(x), U64(y)) if op.is_comparison() => Bool(compare(op, x, y)),
        (Bool(x), Bool(y)) => Bool(binary_bool(op, x, y)),
        (I32(x), I32(y)) => I32(binary_i32(op, x, y)),
        (I64(x), I64(y)) => I64(binary_i64(op, x, y)),
        (I8(x), I8(y)) => I8(binary_i8(op, x, y)),
        (I16(x), I16(y)) => I16(binary_i16(op, x, y)),
        (U8(x), U8(y)) => U8(binary_u8(op, x, y)),
        (U16(x), U16(y)) => U16(binary_u16(op, x, y)),
        (U32(x), U32(y)) => U32(binary_u32(op, x, y)),
        (U64(x), U64(y)) => U64(binary_u64(op, x, y)),
        (F16(x), F16(y)) => F16(binary_f16(op, x, y)),
        (F32(x), F32(y)) => F32(binary_f32(op, x, y)),
        (F64(x), F64(y)) => F64(binary_f64(op, x, y)),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use BinaryOp::*;

    #[test]
    fn float_division_family_matches_numpy() {
        // Values printed by NumPy 2.4 for np.remainder and np.floor_divide.
        let a = [5.0, -5.0, 5.0, 0.0, -0.0];
        let b = [-3.0, 3.0, 0.0, -2.0, 2.0];
        let rem: Vec<f64> = a
            .iter()
            .zip(&b)
            .map(|(x, y)| binary_f64(Rem, *x, *y))
            .collect();
        assert_eq!(rem[..2], [-1.0, 1.0]);
        assert!(rem[2].is_nan());
        assert!(rem[3] == 0.0 && rem[3].is_sign_negative());
        assert!(rem[4] == 0.0 && rem[4].is_sign_positive());
        let fd = [
            binary_f64(FloorDiv, 5.0, -3.0),
            binary_f64(FloorDiv, -5.0, 3.0),
            binary_f64(FloorDiv, 5.0, 0.0),
            binary_f64(FloorDiv, -1.0, 0.0),
        ];
        assert_eq!(fd, [-2.0, -2.0, f64::INFINITY, f64::NEG_INFINITY]);
        assert!(binary_f64(FloorDiv, 0.0, -2.0).is_sign_negative());
    }

    #[test]
    fn integer_edge_cases_match_numpy() {
        assert_eq!(binary_i32(FloorDiv, 7, 0), 0);
        assert_eq!(binary_i32(Rem, 7, 0), 0);
        assert_eq!(binary_i32(FloorDiv, i32::MIN, -1), i32::MIN);
        assert_eq!(binary_i64(FloorDiv, -7, 2), -4);
        assert_eq!(binary_i64(Rem, -7, 2), 1);
        assert_eq!(binary_i64(Fmod, -7, 2), -1);
        assert_eq!(binary_i64(Shl, 1, 64), 0);
        assert_eq!(binary_i64(Shr, -8, 70), -1);
        assert_eq!(binary_i64(Pow, 3, 4), 81);
        assert_eq!(unary_i32(UnaryOp::Abs, i32::MIN), i32::MIN);
        assert_eq!(f64_to_i64(f64::NAN), i64::MIN);
        assert_eq!(f64_to_i32(1e300), i32::MIN);
        assert_eq!(f64_to_i32(-2147483648.5), i32::MIN);
    }

    #[test]
    fn float_to_small_and_unsigned_ints_match_numpy() {
        use crate::dtype::DType;
        // np.array(x).astype(t) with NumPy 2.4 on x86-64 (the module docs' rules).
        let x = [
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            300.0,
            -1.0,
            -129.5,
            1e10,
            -1e10,
        ];
        let want: [(DType, [i128; 8]); 6] = [
            (DType::I8, [0, 0, 0, 44, -1, 127, 0, 0]),
            (DType::I16, [0, 0, 0, 300, -1, -129, 0, 0]),
            (DType::U8, [0, 0, 0, 44, 255, 127, 0, 0]),
            (DType::U16, [0, 0, 0, 300, 65535, 65407, 0, 0]),
            (
                DType::U32,
                [
                    2147483648, 0, 2147483648, 300, 4294967295, 4294967167, 0, 2147483648,
                ],
            ),
            (
                DType::U64,
                [
                    1 << 63,
                    0,
                    1 << 63,
                    300,
                    u64::MAX as i128,
                    18446744073709551487,
                    10000000000,
                    18446744063709551616,
                ],
            ),
        ];
        for (t, w) in want {
            let got: Vec<i128> = x
                .iter()
                .map(|&v| cast(crate::dtype::Const::F64(v), t).as_i128().unwrap())
                .collect();
            assert_eq!(got, w, "{t}");
        }
        // Unsigned division, remainder and shifts; signed floor division's sign rules.
        assert_eq!(binary_u8(FloorDiv, 200, 0), 0);
        assert_eq!(binary_u8(Rem, 200, 7), 4);
        assert_eq!(binary_u64(FloorDiv, u64::MAX, 2), u64::MAX / 2);
        assert_eq!(binary_u16(Shl, 1, 16), 0);
        assert_eq!(binary_u32(Shr, u32::MAX, 40), 0);
        assert_eq!(unary_u8(UnaryOp::Neg, 1), 255);
        assert_eq!(binary_i8(FloorDiv, -128, -1), -128);
        assert_eq!(binary_i8(Rem, -7, 3), 2);
        assert_eq!(binary_i16(Shr, -5, 99), -1);
        assert_eq!(unary_i8(UnaryOp::Abs, i8::MIN), i8::MIN);
        assert_eq!(binary_i8(Add, 127, 1), -128);
    }

    #[test]
    fn ulp_distance_orders_floats_by_value() {
        assert_eq!(ulp_distance_f64(0.0, -0.0), 0);
        assert_eq!(
            ulp_distance_f64(1.0, f64::from_bits(1.0f64.to_bits() + 1)),
            1
        );
        assert_eq!(ulp_distance_f64(-5e-324, 5e-324), 2);
        assert_eq!(ulp_distance_f64(f64::MAX, f64::INFINITY), 1);
        assert_eq!(
            ulp_distance_f64(f64::NEG_INFINITY, f64::INFINITY),
            2 * 0x7ff0_0000_0000_0000
        );
        assert_eq!(
            ulp_distance_f32(-1.0, -f32::from_bits(1.0f32.to_bits() + 3)),
            3
        );
        assert_eq!(ulp_distance_f32(-0.0, 1e-45), 1);
    }

    #[test]
    fn nan_propagation_and_sign() {
        assert!(binary_f64(Maximum, f64::NAN, 1.0).is_nan());
        assert!(binary_f64(Maximum, 1.0, f64::NAN).is_nan());
        assert!(binary_f64(Minimum, 1.0, f64::NAN).is_nan());
        assert!(unary_f64(UnaryOp::Sign, f64::NAN).is_nan());
        assert!(unary_f64(UnaryOp::Sign, -0.0).is_sign_positive());
        assert_eq!(unary_f64(UnaryOp::Round, 2.5), 2.0);
        assert_eq!(unary_f64(UnaryOp::Round, -0.5), -0.0);
    }
}
