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

/// Reductions in the kernel IR: each combines the values of its operand over the reduced axes
/// with one associative operator (`argmin`/`argmax` track the position too).
///
/// `mean`, `var` and `std` are not kernel operations: the optimizer lowers them into sums,
/// element-wise arithmetic and a count (see [`Reduction`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ReduceOp {
    Sum,
    Prod,
    /// NaN-propagating, like `np.min` (`minimum`'s rules, ties keep the later operand).
    Min,
    Max,
    /// Logical or / and of the operand converted to bool (`!= 0`, NaN is true).
    Any,
    All,
    /// Position of the first minimum / maximum along the reduced axes, in C order (the first
    /// NaN if there is one), as int64.
    ArgMin,
    ArgMax,
}

/// The reductions users write: a kernel-level [`ReduceOp`] or a statistic the optimizer builds
/// from them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reduction {
    Op(ReduceOp),
    /// Arithmetic mean (`sum / count`, float64 for bool and integers).
    Mean,
    /// Variance `sum(|x - mean|^2) / (count - ddof)`, NumPy's two-pass algorithm.
    Var {
        ddof: u32,
    },
    /// `sqrt(var)`.
    Std {
        ddof: u32,
    },
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
        let bad = |why: &str| {
            Err(Error::OperandType {
                op: self.name().into(),
                dtype: x,
                reason: why.into(),
            })
        };
        match self {
            Neg | Sign if x.is_bool() => bad("not supported for bool (NumPy raises; use `~`)"),
            Neg | Sign | Abs => Ok((x, x)),
            Not if x.is_float() => bad("`~` needs bool or integer operands"),
            Not => Ok((x, x)),
            // NumPy 2: floor/ceil/trunc/round keep integer and bool dtypes.
            Floor | Ceil | Trunc => Ok((x, x)),
            // NumPy rounds bool in float16.
            Round if x.is_bool() => Ok((DType::F16, DType::F16)),
            Round => Ok((x, x)),
            _ => match x.float_result() {
                Some(f) => Ok((f, f)),
                None => bad("no float type for this dtype"),
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
        let bad = |why: &str| {
            Err(Error::OperandType {
                op: self.name().into(),
                dtype: common,
                reason: why.into(),
            })
        };
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
            // NumPy computes these on bool operands in int8.
            FloorDiv | Rem | Pow | Fmod if common.is_bool() => Ok((DType::I8, DType::I8)),
            FloorDiv | Rem | Pow | Fmod => Ok((common, common)),
            Arctan2 | Hypot | Copysign | Nextafter => match common.float_result() {
                Some(f) => Ok((f, f)),
                None => bad("no float type for this dtype"),
            },
            And | Or | Xor if common.is_float() => {
                bad("bitwise operators need bool or integer operands")
            }
            And | Or | Xor => Ok((common, common)),
            // NumPy shifts bool operands in int8.
            Shl | Shr if common.is_bool() => Ok((DType::I8, DType::I8)),
            Shl | Shr if !common.is_int() => bad("shifts need integer operands"),
            Shl | Shr => Ok((common, common)),
            Eq | Ne | Lt | Le | Gt | Ge => unreachable!(),
        }
    }
}

impl ReduceOp {
    pub const ALL: [ReduceOp; 8] = {
        use ReduceOp::*;
        [Sum, Prod, Min, Max, Any, All, ArgMin, ArgMax]
    };

    pub fn name(self) -> &'static str {
        match self {
            ReduceOp::Sum => "sum",
            ReduceOp::Prod => "prod",
            ReduceOp::Min => "min",
            ReduceOp::Max => "max",
            ReduceOp::Any => "any",
            ReduceOp::All => "all",
            ReduceOp::ArgMin => "argmin",
            ReduceOp::ArgMax => "argmax",
        }
    }

    /// `(dtype the operand is cast to before reducing, result dtype)`, NumPy's on Linux:
    /// `sum`/`prod` of bool and signed integers accumulate in int64, of unsigned integers in
    /// uint64; `min`/`max` keep the dtype; `any`/`all` work on bool; `argmin`/`argmax` give
    /// int64 positions.
    pub fn signature(self, x: DType) -> Result<(DType, DType)> {
        Ok(match self {
            ReduceOp::Sum | ReduceOp::Prod => {
                let r = if x.is_float() {
                    x
                } else if x.is_unsigned_int() {
                    DType::U64
                } else {
                    DType::I64
                };
                (r, r)
            }
            ReduceOp::Min | ReduceOp::Max => (x, x),
            ReduceOp::Any | ReduceOp::All => (DType::Bool, DType::Bool),
            ReduceOp::ArgMin | ReduceOp::ArgMax => (x, DType::I64),
        })
    }

    /// The element-wise operator that combines two partial results (for `argmin`/`argmax`: the
    /// operator that compares values, the position of the winner is kept beside it).
    pub fn combine(self) -> BinaryOp {
        match self {
            ReduceOp::Sum => BinaryOp::Add,
            ReduceOp::Prod => BinaryOp::Mul,
            ReduceOp::Min | ReduceOp::ArgMin => BinaryOp::Minimum,
            ReduceOp::Max | ReduceOp::ArgMax => BinaryOp::Maximum,
            ReduceOp::Any => BinaryOp::Or,
            ReduceOp::All => BinaryOp::And,
        }
    }

    /// The result of reducing nothing, in the accumulator dtype `t`; `None` for the reductions
    /// NumPy refuses on empty input ("zero-size array to reduction operation maximum which has
    /// no identity").
    pub fn identity(self, t: DType) -> Option<crate::dtype::Const> {
        let v = match self {
            ReduceOp::Sum | ReduceOp::Any => 0,
            ReduceOp::Prod | ReduceOp::All => 1,
            _ => return None,
        };
        Some(crate::dtype::Const::small_int(v, t))
    }

    /// Whether the reduction is an `argmin`/`argmax` (one axis or all of them, like NumPy).
    pub fn is_arg(self) -> bool {
        matches!(self, ReduceOp::ArgMin | ReduceOp::ArgMax)
    }
}

impl Reduction {
    /// Parse a reduction's name as written in expressions (`sum`, `mean`, `std`, ...); `ddof`
    /// applies to `var` and `std`.
    pub fn from_name(name: &str, ddof: u32) -> Option<Reduction> {
        Some(match name {
            "mean" => Reduction::Mean,
            "var" => Reduction::Var { ddof },
            "std" => Reduction::Std { ddof },
            _ => Reduction::Op(*ReduceOp::ALL.iter().find(|o| o.name() == name)?),
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Reduction::Op(op) => op.name(),
            Reduction::Mean => "mean",
            Reduction::Var { .. } => "var",
            Reduction::Std { .. } => "std",
        }
    }

    /// The result dtype for an operand of dtype `x` (NumPy: `mean`/`var`/`std` of bool and
    /// integers are float64, of floats the same float).
    pub fn result_dtype(self, x: DType) -> Result<DType> {
        match self {
            Reduction::Op(op) => Ok(op.signature(x)?.1),
            _ => Ok(if x.is_float() { x } else { DType::F64 }),
        }
    }

    /// Whether reducing an empty array is an error (`min`, `max`, `argmin`, `argmax`).
    pub fn needs_nonempty(self) -> bool {
        matches!(self, Reduction::Op(op) if op.identity(DType::F64).is_none())
    }
}

impl fmt::Display for Reduction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
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

/// NumPy's fast paths for `float_array ** python_scalar` (`fast_scalar_power` in NumPy's
/// `number.c`): NumPy computes these exponents with another ufunc, so they are part of the
/// results NumPy gives (`(-inf) ** 0.5` is NaN because it is `sqrt(-inf)`; `x ** 2` is `x * x`,
/// which `pow` does not promise to match in the last bit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowFastPath {
    /// `x ** 1` -> `x`
    Identity,
    /// `x ** 2` -> `x * x`
    Square,
    /// `x ** 0.5` -> `sqrt(x)`
    Sqrt,
    /// `x ** -1` -> `1 / x`
    Reciprocal,
}

/// The fast path NumPy takes for a float array raised to the weak scalar `exponent`.
pub fn pow_fast_path(exponent: crate::dtype::Scalar) -> Option<PowFastPath> {
    match exponent.as_f64() {
        1.0 => Some(PowFastPath::Identity),
        2.0 => Some(PowFastPath::Square),
        0.5 => Some(PowFastPath::Sqrt),
        -1.0 => Some(PowFastPath::Reciprocal),
        _ => None,
    }
}
