//! The operator vocabulary shared by every layer (expressions, graph, kernel IR, backends) and
//! its typing rules: which dtypes an operator accepts, what it computes in and what it returns,
//! following NumPy 2's ufunc loops.
use crate::dtype::DType;
use crate::error::{Error, Result};
use std::fmt;

/// Element-wise functions of one argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum UnaryOp {
    Neg,
    /// Logical not on bool, bitwise not on integers (`~` / `!`).
    Not,
    Abs,
    Sign,
    Sqrt,
    Exp,
    Expm1,
    Log,
    Log1p,
    Log2,
    Log10,
    Sin,
    Cos,
    Tan,
    Arcsin,
    Arccos,
    Arctan,
    Sinh,
    Cosh,
    Tanh,
    Arcsinh,
    Arccosh,
    Arctanh,
    Floor,
    Ceil,
    /// Round half to even (`np.round` with 0 decimals, `np.rint`).
    Round,
    Trunc,
}

/// Element-wise functions of two arguments, comparisons included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    /// True division (`/`): integers divide as float64.
    Div,
    /// Floor division (`//`).
    FloorDiv,
    /// Python/NumPy remainder (`%`): the result has the sign of the divisor.
    Rem,
    Pow,
    /// `np.maximum`: NaN-propagating.
    Maximum,
    /// `np.minimum`: NaN-propagating.
    Minimum,
    Arctan2,
    Hypot,
    /// C `fmod`: the result has the sign of the dividend.
    Fmod,
    Copysign,
    Nextafter,
    /// Logical on bool, bitwise on integers.
    And,
    Or,
    Xor,
    Shl,
    Shr,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// Reductions. The spine has whole-array `sum`; the op is an enum so that more can follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ReduceOp {
    Sum,
}

impl UnaryOp {
    pub const ALL: [UnaryOp; 27] = {
        use UnaryOp::*;
        [
            Neg, Not, Abs, Sign, Sqrt, Exp, Expm1, Log, Log1p, Log2, Log10, Sin, Cos, Tan, Arcsin,
            Arccos, Arctan, Sinh, Cosh, Tanh, Arcsinh, Arccosh, Arctanh, Floor, Ceil, Round, Trunc,
        ]
    };

    /// The name used in numexpr syntax and in the kernel IR text.
    pub fn name(self) -> &'static str {
        use UnaryOp::*;
        match self {
            Neg => "neg",
            Not => "not",
            Abs => "abs",
            Sign => "sign",
            Sqrt => "sqrt",
            Exp => "exp",
            Expm1 => "expm1",
            Log => "log",
            Log1p => "log1p",
            Log2 => "log2",
            Log10 => "log10",
            Sin => "sin",
            Cos => "cos",
            Tan => "tan",
            Arcsin => "arcsin",
            Arccos => "arccos",
            Arctan => "arctan",
            Sinh => "sinh",
            Cosh => "cosh",
            Tanh => "tanh",
            Arcsinh => "arcsinh",
            Arccosh => "arccosh",
            Arctanh => "arctanh",
            Floor => "floor",
            Ceil => "ceil",
            Round => "round",
            Trunc => "trunc",
        }
    }

    /// Transcendental functions: float-only, computed in float.
    pub fn is_transcendental(self) -> bool {
        use UnaryOp::*;
        matches!(
            self,
            Sqrt | Exp
                | Expm1
                | Log
                | Log1p
                | Log2
                | Log10
                | Sin
                | Cos
                | Tan
                | Arcsin
                | Arccos
                | Arctan
                | Sinh
                | Cosh
                | Tanh
                | Arcsinh
                | Arccosh
                | Arctanh
        )
    }

    /// `(dtype the operand is cast to, result dtype)` for an operand of dtype `x`.
    pub fn signature(self, x: DType) -> Result<(DType, DType)> {
        use UnaryOp::*;
        let bad = |why: &str| Err(Error::Type(format!("`{}` of {x}: {why}", self.name())));
        match self {
            Neg | Sign if x.is_bool() => bad("not supported for bool (NumPy raises; use `~`)"),
            Neg | Sign | Abs => Ok((x, x)),
            Not if x.is_float() => bad("`~` needs bool or integer operands"),
            Not => Ok((x, x)),
            // NumPy 2: floor/ceil/trunc/round keep integer and bool dtypes.
            Floor | Ceil | Trunc => Ok((x, x)),
            Round if x.is_bool() => {
                bad("NumPy gives float16, which fusebox does not support; cast first")
            }
            Round => Ok((x, x)),
            _ => match x.float_result() {
                Some(f) => Ok((f, f)),
                None => bad("NumPy gives float16, which fusebox does not support; cast first"),
            },
        }
    }
}

impl BinaryOp {
    pub const ALL: [BinaryOp; 25] = {
        use BinaryOp::*;
        [
            Add, Sub, Mul, Div, FloorDiv, Rem, Pow, Maximum, Minimum, Arctan2, Hypot, Fmod,
            Copysign, Nextafter, And, Or, Xor, Shl, Shr, Eq, Ne, Lt, Le, Gt, Ge,
        ]
    };

    /// The name used in the kernel IR text and in function-call syntax.
    pub fn name(self) -> &'static str {
        use BinaryOp::*;
        match self {
            Add => "add",
            Sub => "sub",
            Mul => "mul",
            Div => "div",
            FloorDiv => "floordiv",
            Rem => "rem",
            Pow => "pow",
            Maximum => "maximum",
            Minimum => "minimum",
            Arctan2 => "arctan2",
            Hypot => "hypot",
            Fmod => "fmod",
            Copysign => "copysign",
            Nextafter => "nextafter",
            And => "and",
            Or => "or",
            Xor => "xor",
            Shl => "shl",
            Shr => "shr",
            Eq => "eq",
            Ne => "ne",
            Lt => "lt",
            Le => "le",
            Gt => "gt",
            Ge => "ge",
        }
    }

    /// The infix symbol, for operators that have one.
    pub fn symbol(self) -> Option<&'static str> {
        use BinaryOp::*;
        Some(match self {
            Add => "+",
            Sub => "-",
            Mul => "*",
            Div => "/",
            FloorDiv => "//",
            Rem => "%",
            Pow => "**",
            And => "&",
            Or => "|",
            Xor => "^",
            Shl => "<<",
            Shr => ">>",
            Eq => "==",
            Ne => "!=",
            Lt => "<",
            Le => "<=",
            Gt => ">",
            Ge => ">=",
            _ => return None,
        })
    }

    pub fn is_comparison(self) -> bool {
        use BinaryOp::*;
        matches!(self, Eq | Ne | Lt | Le | Gt | Ge)
    }

    /// `(dtype both operands are cast to, result dtype)` given the already-promoted common dtype
    /// of the operands.
    pub fn signature(self, common: DType) -> Result<(DType, DType)> {
        use BinaryOp::*;
        let bad = |why: &str| Err(Error::Type(format!("`{}` of {common}: {why}", self.name())));
        let f16 = "NumPy gives int8/float16 for bool operands, which fusebox does not support; cast first";
        match self {
            _ if self.is_comparison() => Ok((common, DType::Bool)),
            Add | Mul | Maximum | Minimum => Ok((common, common)),
            Sub if common.is_bool() => bad("not supported for bool (NumPy raises; use `^`)"),
            Sub => Ok((common, common)),
            Div => {
                let f = if common.is_float() {
                    common
                } else {
                    DType::F64
                };
                Ok((f, f))
            }
            FloorDiv | Rem | Pow | Fmod if common.is_bool() => bad(f16),
            FloorDiv | Rem | Pow | Fmod => Ok((common, common)),
            Arctan2 | Hypot | Copysign | Nextafter => match common.float_result() {
                Some(f) => Ok((f, f)),
                None => bad(f16),
            },
            And | Or | Xor if common.is_float() => {
                bad("bitwise operators need bool or integer operands")
            }
            And | Or | Xor => Ok((common, common)),
            Shl | Shr if !common.is_int() => bad("shifts need integer operands"),
            Shl | Shr => Ok((common, common)),
            Eq | Ne | Lt | Le | Gt | Ge => unreachable!(),
        }
    }
}

impl ReduceOp {
    pub fn name(self) -> &'static str {
        match self {
            ReduceOp::Sum => "sum",
        }
    }
    /// `(dtype the operand is cast to before reducing, result dtype)`: NumPy sums bool and
    /// integers in int64.
    pub fn signature(self, x: DType) -> Result<(DType, DType)> {
        match self {
            ReduceOp::Sum => {
                let r = if x.is_float() { x } else { DType::I64 };
                Ok((r, r))
            }
        }
    }
}

impl fmt::Display for UnaryOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
impl fmt::Display for BinaryOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
impl fmt::Display for ReduceOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
