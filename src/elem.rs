//! The element-type enum, [`DType`], and NumPy's name for each. It sits below `error` so that
//! errors can carry dtypes; it imports nothing. Promotion, parsing, sizes and weak scalars are
//! in `dtype`, which re-exports [`DType`].
use std::fmt;

/// The element types fusebox computes with: bool, the signed and unsigned integers of 8 to 64
/// bits and the three IEEE floats, each stored as its Rust type (`bool` as one byte, float16
/// as `half::f16`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DType {
    Bool,
    I8,
    I16,
    I32,
    I64,
    U8,
    U16,
    U32,
    U64,
    F16,
    F32,
    F64,
}

impl DType {
    /// NumPy's name (`float64`, `int32`, `bool`).
    pub fn name(self) -> &'static str {
        match self {
            DType::Bool => "bool",
            DType::I8 => "int8",
            DType::I16 => "int16",
            DType::I32 => "int32",
            DType::U8 => "uint8",
            DType::U16 => "uint16",
            DType::U32 => "uint32",
            DType::U64 => "uint64",
            DType::I64 => "int64",
            DType::F16 => "float16",
            DType::F32 => "float32",
            DType::F64 => "float64",
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
