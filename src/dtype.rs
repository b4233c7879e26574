//! Element types and NumPy 2 type promotion (NEP 50). The [`DType`] enum itself is defined in
//! `elem` (below `error`, so that errors can carry dtypes) and re-exported here.
//!
//! Arrays are *strong*: their dtype wins. Rust and literal scalars are *weak* (like Python numbers
//! in NumPy 2): `f32_array * 2.0` stays `float32`, `i32_array + 1` stays `int32`, and an integer
//! literal that does not fit the array's dtype is an error, not a silent wrap (`u8_array + -1`
//! too: NumPy 2's OverflowError). Weak integer literals hold an `i64`, so a literal above
//! `i64::MAX` (a large uint64) cannot be written; bind a uint64 array instead.
//!
//! [`promote`] is NumPy's table for all twelve dtypes: two integers of one signedness give the
//! wider; signed with unsigned the smallest signed type holding both, and float64 for uint64
//! with any signed type; bool and 8-bit integers with float16 stay float16, integers of up to
//! 16 bits with float32 (or float16) give float32, wider ones float64. `tests/dtype_table.rs`
//! checks every pair and operator against NumPy 2.
//!
//! float16 values are `half::f16` (re-exported as `fusebox::f16`); the conversions the
//! semantics and the JIT share are here ([`f16_to_f32`], [`f16_from_f32`], [`f16_from_f64`]),
//! bit-exact with NumPy's (the `half` crate's own `from_f64` is off by one near some ties).
use crate::error::{Error, Result};
pub use half::f16;
use std::fmt;
use std::hash::{Hash, Hasher};

pub use crate::elem::DType;

impl DType {
    /// All dtypes, in promotion order within each kind.
    pub const ALL: [DType; 12] = [
        DType::Bool,
        DType::I8,
        DType::I16,
        DType::I32,
        DType::I64,
        DType::U8,
        DType::U16,
        DType::U32,
        DType::U64,
        DType::F16,
        DType::F32,
        DType::F64,
    ];

    /// Bytes per element in host memory (bool is one byte, as in NumPy).
    pub fn size(self) -> usize {
        match self {
            DType::Bool | DType::I8 | DType::U8 => 1,
            DType::I16 | DType::U16 | DType::F16 => 2,
            DType::I32 | DType::U32 | DType::F32 => 4,
            DType::I64 | DType::U64 | DType::F64 => 8,
        }
    }
    pub fn is_float(self) -> bool {
        matches!(self, DType::F16 | DType::F32 | DType::F64)
    }
    /// Any integer dtype, signed or unsigned (not bool).
    pub fn is_int(self) -> bool {
        self.is_signed_int() || self.is_unsigned_int()
    }
    pub fn is_signed_int(self) -> bool {
        matches!(self, DType::I8 | DType::I16 | DType::I32 | DType::I64)
    }
    pub fn is_unsigned_int(self) -> bool {
        matches!(self, DType::U8 | DType::U16 | DType::U32 | DType::U64)
    }
    /// The signed integer dtype of `bytes` bytes (1, 2, 4 or 8).
    pub fn signed_of_size(bytes: usize) -> Option<DType> {
        Some(match bytes {
            1 => DType::I8,
            2 => DType::I16,
            4 => DType::I32,
            8 => DType::I64,
            _ => return None,
        })
    }
    /// The smallest and largest value of an integer dtype (bool: 0 and 1), `None` for floats.
    pub fn int_range(self) -> Option<(i128, i128)> {
        Some(match self {
            DType::Bool => (0, 1),
            DType::I8 => (i8::MIN as i128, i8::MAX as i128),
            DType::I16 => (i16::MIN as i128, i16::MAX as i128),
            DType::I32 => (i32::MIN as i128, i32::MAX as i128),
            DType::I64 => (i64::MIN as i128, i64::MAX as i128),
            DType::U8 => (0, u8::MAX as i128),
            DType::U16 => (0, u16::MAX as i128),
            DType::U32 => (0, u32::MAX as i128),
            DType::U64 => (0, u64::MAX as i128),
            DType::F16 | DType::F32 | DType::F64 => return None,
        })
    }
    pub fn is_bool(self) -> bool {
        self == DType::Bool
    }
    /// Short suffix used in the kernel IR text (`f64`, `i32`, `u16`, `int8`, `bool`).
    pub fn short(self) -> &'static str {
        match self {
            DType::Bool => "bool",
            // `i8`/`u8` would read as NumPy's 8-byte codes: spell the 8-bit types out.
            DType::I8 => "int8",
            DType::I16 => "i16",
            DType::I32 => "i32",
            DType::I64 => "i64",
            DType::U8 => "uint8",
            DType::U16 => "u16",
            DType::U32 => "u32",
            DType::U64 => "u64",
            DType::F16 => "f16",
            DType::F32 => "f32",
            DType::F64 => "f64",
        }
    }
    /// Parse NumPy-style names (`float64`, `f8`, `int32`, `bool`, ...).
    pub fn parse(s: &str) -> Result<DType> {
        Ok(match s {
            "bool" | "b1" | "?" => DType::Bool,
            "int8" | "i1" | "byte" | "b" => DType::I8,
            "int16" | "i2" | "i16" | "short" | "h" => DType::I16,
            "int32" | "i4" | "i32" | "intc" => DType::I32,
            // `i8` is NumPy's 8-byte code, int64 (fusebox's IR writes int8 as `int8`).
            "int64" | "i8" | "i64" | "int" | "intp" | "long" => DType::I64,
            "uint8" | "u1" | "ubyte" => DType::U8,
            "uint16" | "u2" | "u16" | "ushort" => DType::U16,
            "uint32" | "u4" | "u32" | "uintc" => DType::U32,
            // `u8` is NumPy's 8-byte code, uint64, as `i8` is int64.
            "uint64" | "u8" | "u64" | "uintp" | "ulong" => DType::U64,
            "float16" | "f2" | "f16" | "half" | "e" => DType::F16,
            "float32" | "f4" | "f32" => DType::F32,
            "float64" | "f8" | "f64" | "float" | "double" => DType::F64,
            _ => {
                return Err(Error::UnsupportedDtype {
                    dtype: s.to_string(),
                    context:
                        "not a dtype name (bool, int8, int16, int32, int64, uint8, uint16, uint32, \
                              uint64, float16, float32, float64)"
                            .into(),
                })
            }
        })
    }
    /// The smallest float type that holds every value of this dtype exactly (NumPy's "safe"
    /// cast): float16 for bool, int8 and uint8.
    pub fn min_float(self) -> Option<DType> {
        self.float_result()
    }
    /// The float type that float-only functions (sqrt, exp, ...) compute in for this input:
    /// floats keep their type, bool and 8-bit integers go to float16, 16-bit integers to
    /// float32, wider ones to float64 (as NumPy). Always `Some` for the real dtypes.
    pub fn float_result(self) -> Option<DType> {
        match self {
            DType::F16 | DType::Bool | DType::I8 | DType::U8 => Some(DType::F16),
            DType::F32 | DType::I16 | DType::U16 => Some(DType::F32),
            DType::F64 | DType::I32 | DType::I64 | DType::U32 | DType::U64 => Some(DType::F64),
        }
    }
}

/// NumPy's promotion of two strong dtypes (`np.result_type` on arrays).
pub fn promote(a: DType, b: DType) -> DType {
    use DType::*;
    if a == b {
        return a;
    }
    match (a, b) {
        (Bool, x) | (x, Bool) => x,
        (F16 | F32, F64) | (F64, F16 | F32) => F64,
        (F16, F32) | (F32, F16) => F32,
        // Integers up to 8 bits fit float16 exactly, up to 16 bits float32; wider ones need
        // float64.
        (i, F16) | (F16, i) => match i.size() {
            1 => F16,
            2 => F32,
            _ => F64,
        },
        (i, F32) | (F32, i) => {
            if i.size() <= 2 {
                F32
            } else {
                F64
            }
        }
        (_, F64) | (F64, _) => F64,
        // Two integers of one signedness: the wider.
        (x, y) if x.is_signed_int() == y.is_signed_int() => {
            if x.size() >= y.size() {
                x
            } else {
                y
            }
        }
        // Signed with unsigned: the smallest signed type holding both (uint64 has none: float64).
        (x, y) => {
            let (s, u) = if x.is_signed_int() { (x, y) } else { (y, x) };
            if s.size() > u.size() {
                s
            } else {
                DType::signed_of_size(u.size() * 2).unwrap_or(F64)
            }
        }
    }
}

/// The kind of a weak (Python-like) scalar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WeakKind {
    Bool,
    Int,
    Float,
}

/// A weak scalar literal: a Rust number or a literal in a string expression.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scalar {
    Bool(bool),
    Int(i64),
    Float(f64),
}

impl Scalar {
    pub fn kind(self) -> WeakKind {
        match self {
            Scalar::Bool(_) => WeakKind::Bool,
            Scalar::Int(_) => WeakKind::Int,
            Scalar::Float(_) => WeakKind::Float,
        }
    }
    /// The dtype a lone weak scalar becomes when it must be materialized
    /// (NumPy: Python bool -> bool, int -> int64, float -> float64).
    pub fn default_dtype(self) -> DType {
        match self {
            Scalar::Bool(_) => DType::Bool,
            Scalar::Int(_) => DType::I64,
            Scalar::Float(_) => DType::F64,
        }
    }
    pub fn as_f64(self) -> f64 {
        match self {
            Scalar::Bool(b) => b as u8 as f64,
            Scalar::Int(i) => i as f64,
            Scalar::Float(f) => f,
        }
    }
}

impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scalar::Bool(b) => write!(f, "{}", if *b { "True" } else { "False" }),
            Scalar::Int(i) => write!(f, "{i}"),
            Scalar::Float(x) => write!(f, "{}", crate::fmt::fmt_float(*x)),
        }
    }
}

/// Promotion of a strong dtype with a weak scalar kind (NEP 50).
pub fn promote_weak(strong: DType, weak: WeakKind) -> DType {
    match (strong, weak) {
        (s, WeakKind::Bool) => s,
        (DType::Bool, WeakKind::Int) => DType::I64,
        (s, WeakKind::Int) => s,
        (s, WeakKind::Float) if !s.is_float() => DType::F64,
        (s, WeakKind::Float) => s,
    }
}

/// Check that a weak scalar's value is representable in `dtype` (NumPy 2 raises
/// `OverflowError: Python integer ... out of bounds for int32`).
pub fn check_weak_fits(value: Scalar, dtype: DType) -> Result<()> {
    if let Scalar::Int(v) = value {
        let fits = match dtype.int_range() {
            Some((lo, hi)) if dtype.is_int() => (lo..=hi).contains(&(v as i128)),
            _ => true,
        };
        if !fits {
            return Err(Error::IntegerOverflow {
                value: v as i128,
                dtype,
            });
        }
    }
    Ok(())
}

/// A typed constant. Equality and hashing are by bits, so hash-consing never merges `0.0` with
/// `-0.0` and a NaN constant equals itself.
#[derive(Debug, Clone, Copy)]
pub enum Const {
    Bool(bool),
    I8(i8),
    I16(i16),
    I32(i32),
    I64(i64),
    U8(u8),
    U16(u16),
    U32(u32),
    U64(u64),
    F16(f16),
    F32(f32),
    F64(f64),
}

impl Const {
    pub fn dtype(self) -> DType {
        match self {
            Const::Bool(_) => DType::Bool,
            Const::I8(_) => DType::I8,
            Const::I16(_) => DType::I16,
            Const::I32(_) => DType::I32,
            Const::I64(_) => DType::I64,
            Const::U8(_) => DType::U8,
            Const::U16(_) => DType::U16,
            Const::U32(_) => DType::U32,
            Const::U64(_) => DType::U64,
            Const::F16(_) => DType::F16,
            Const::F32(_) => DType::F32,
            Const::F64(_) => DType::F64,
        }
    }
    /// The small integer `v` (0 or 1 for bool: nonzero is true) as a constant of dtype `t`;
    /// exact in every dtype.
    pub fn small_int(v: i8, t: DType) -> Const {
        match t {
            DType::F16 => Const::F16(f16_from_f32(v as f32)),
            DType::F32 => Const::F32(v as f32),
            DType::F64 => Const::F64(v as f64),
            _ => Const::wrap_int(v as i128, t),
        }
    }
    /// The integer `v` wrapped to an integer dtype `t` (two's complement, as C and NumPy cast
    /// between integers); bool is `v != 0`; for a float `t`, `v` rounded to nearest.
    pub fn wrap_int(v: i128, t: DType) -> Const {
        match t {
            DType::Bool => Const::Bool(v != 0),
            DType::I8 => Const::I8(v as i8),
            DType::I16 => Const::I16(v as i16),
            DType::I32 => Const::I32(v as i32),
            DType::I64 => Const::I64(v as i64),
            DType::U8 => Const::U8(v as u8),
            DType::U16 => Const::U16(v as u16),
            DType::U32 => Const::U32(v as u32),
            DType::U64 => Const::U64(v as u64),
            // NumPy converts integers to float16 through float32 (`npy_float_to_half((float)v)`);
            // every integer past float32's exact range is past float16's too, so that is the
            // correctly rounded value.
            DType::F16 => Const::F16(f16_from_f32(v as f32)),
            DType::F32 => Const::F32(v as f32),
            DType::F64 => Const::F64(v as f64),
        }
    }
    /// The value of a bool or integer constant, exactly; `None` for floats.
    pub fn as_i128(self) -> Option<i128> {
        Some(match self {
            Const::Bool(b) => b as i128,
            Const::I8(v) => v as i128,
            Const::I16(v) => v as i128,
            Const::I32(v) => v as i128,
            Const::I64(v) => v as i128,
            Const::U8(v) => v as i128,
            Const::U16(v) => v as i128,
            Const::U32(v) => v as i128,
            Const::U64(v) => v as i128,
            Const::F16(_) | Const::F32(_) | Const::F64(_) => return None,
        })
    }
    /// The raw bits, for hashing and exact (NaN-aware, sign-of-zero-aware) equality.
    pub fn bits(self) -> u64 {
        match self {
            Const::Bool(b) => b as u64,
            Const::I8(v) => v as u8 as u64,
            Const::I16(v) => v as u16 as u64,
            Const::I32(v) => v as u32 as u64,
            Const::I64(v) => v as u64,
            Const::U8(v) => v as u64,
            Const::U16(v) => v as u64,
            Const::U32(v) => v as u64,
            Const::U64(v) => v,
            Const::F16(v) => v.to_bits() as u64,
            Const::F32(v) => v.to_bits() as u64,
            Const::F64(v) => v.to_bits(),
        }
    }
    /// The value converted to f64 (exact for everything but large 64-bit integers, which
    /// round to nearest).
    pub fn as_f64(self) -> f64 {
        match self {
            Const::F16(v) => f16_to_f32(v) as f64,
            Const::F32(v) => v as f64,
            Const::F64(v) => v,
            Const::I64(v) => v as f64,
            Const::U64(v) => v as f64,
            c => c.as_i128().unwrap_or(0) as f64,
        }
    }
}

impl PartialEq for Const {
    fn eq(&self, other: &Self) -> bool {
        self.same(*other)
    }
}
impl Eq for Const {}
impl Hash for Const {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.dtype().hash(state);
        self.bits().hash(state);
    }
}
// Equality by bits so that hash-consing never merges 0.0 with -0.0 nor drops NaN payloads.
impl Const {
    pub fn same(self, other: Const) -> bool {
        self.dtype() == other.dtype() && self.bits() == other.bits()
    }
}

impl fmt::Display for Const {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Const::Bool(b) => write!(f, "{b}"),
            Const::I8(v) => write!(f, "{v}"),
            Const::I16(v) => write!(f, "{v}"),
            Const::I32(v) => write!(f, "{v}"),
            Const::I64(v) => write!(f, "{v}"),
            Const::U8(v) => write!(f, "{v}"),
            Const::U16(v) => write!(f, "{v}"),
            Const::U32(v) => write!(f, "{v}"),
            Const::U64(v) => write!(f, "{v}"),
            Const::F16(v) => f.write_str(&crate::fmt::fmt_float(f16_to_f32(*v) as f64)),
            Const::F32(v) => f.write_str(&crate::fmt::fmt_float(*v as f64)),
            Const::F64(v) => f.write_str(&crate::fmt::fmt_float(*v)),
        }
    }
}

/// float16 to float32, exactly (NaN payloads kept). The integer steps are the ones the JIT
/// emits (`cpu/codegen`), so both give the same bits.
pub fn f16_to_f32(h: f16) -> f32 {
    let h = h.to_bits() as u32;
    let mut o = (h & 0x7fff) << 13;
    let exp = o & 0x0f80_0000;
    o += (127 - 15) << 23;
    if exp == 0x0f80_0000 {
        // Inf or NaN: the exponent all ones.
        o += (128 - 16) << 23;
    } else if exp == 0 {
        // Zero or subnormal: renormalized by one float subtraction (exact).
        o += 1 << 23;
        o = (f32::from_bits(o) - f32::from_bits(113 << 23)).to_bits();
    }
    f32::from_bits(o | ((h & 0x8000) << 16))
}

/// float32 to float16 rounded to nearest, ties to even, as NumPy's `npy_float_to_half`: past
/// the largest float16 gives infinity, NaN gives the quiet NaN `0x7e00` with its sign. The
/// integer steps are the ones the JIT emits (`cpu/codegen`).
pub fn f16_from_f32(x: f32) -> f16 {
    let f = x.to_bits();
    let sign = f & 0x8000_0000;
    let f = f ^ sign;
    let o = if f >= 0x4780_0000 {
        // |x| >= 65536 (float16's infinity after rounding), inf or NaN.
        if f > 0x7f80_0000 {
            0x7e00
        } else {
            0x7c00
        }
    } else if f < 0x3880_0000 {
        // Below float16's smallest normal: adding 0.5 rounds the mantissa into place
        // (ties to even by the float addition itself).
        (f32::from_bits(f) + 0.5).to_bits() - 0x3f00_0000
    } else {
        // Rebias the exponent, add the rounding bias (0xfff, one more when the kept
        // mantissa is odd: ties to even) and drop 13 bits.
        let odd = (f >> 13) & 1;
        (f.wrapping_add(0xc800_0fff) + odd) >> 13
    };
    f16::from_bits((o | (sign >> 16)) as u16)
}

/// float64 to float16 rounded once (NumPy's `npy_double_to_half`): the float64 is first
/// rounded to float32 *to odd* (truncated, with the last bit set when inexact), which keeps
/// enough information for the second rounding to give the correctly rounded float16.
pub fn f16_from_f64(x: f64) -> f16 {
    let t = x as f32;
    let mut bits = t.to_bits();
    if t as f64 != x {
        // Inexact (or NaN): truncate towards zero, then mark the lost bits.
        if (t as f64).abs() > x.abs() {
            bits -= 1;
        }
        bits |= 1;
    }
    f16_from_f32(f32::from_bits(bits))
}

#[cfg(test)]
mod tests {
    use super::*;
    use DType::*;

    #[test]
    fn promotion_table_matches_numpy() {
        // np.result_type on arrays of these dtypes.
        let cases = [
            (Bool, Bool, Bool),
            (Bool, I32, I32),
            (I32, I64, I64),
            (I32, F32, F64),
            (I64, F32, F64),
            (F32, F64, F64),
            (Bool, F32, F32),
            (I64, F64, F64),
        ];
        for (a, b, r) in cases {
            assert_eq!(promote(a, b), r, "{a} {b}");
            assert_eq!(promote(b, a), r, "{b} {a}");
        }
    }

    #[test]
    fn weak_scalars_follow_nep50() {
        assert_eq!(promote_weak(F32, WeakKind::Float), F32);
        assert_eq!(promote_weak(I32, WeakKind::Int), I32);
        assert_eq!(promote_weak(I32, WeakKind::Float), F64);
        assert_eq!(promote_weak(Bool, WeakKind::Int), I64);
        assert_eq!(promote_weak(Bool, WeakKind::Bool), Bool);
        assert!(check_weak_fits(Scalar::Int(1 << 40), I32).is_err());
        assert!(check_weak_fits(Scalar::Int(1 << 40), I64).is_ok());
    }
}
