//! The one public error type. Every fallible call in fusebox returns [`Result<T>`]; bad input
//! never panics.
//!
//! Each variant carries what went wrong as fields a caller can match on (shapes, names, dtypes,
//! positions, paths); the message is rendered from those fields, as one line a CLI can print.
//! Where NumPy raises for the same input, the message is NumPy's own wording.
use crate::elem::DType;
use std::path::PathBuf;
use thiserror::Error;

/// Everything that can go wrong, by kind.
///
/// ```
/// use fusebox::{DType, Error, Expr};
/// use ndarray::arr1;
///
/// let x = Expr::data(arr1(&[1.0, 2.0]), None);
/// match (!&x).meta() {
///     Err(Error::OperandType { op, dtype: DType::F64, .. }) => assert_eq!(op, "not"),
///     other => panic!("{other:?}"),
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum Error {
    /// Operands whose shapes do not broadcast (NumPy's rules): the two shapes.
    #[error(
        "shape mismatch: operands could not be broadcast together with shapes {lhs:?} and {rhs:?}"
    )]
    ShapeMismatch { lhs: Vec<usize>, rhs: Vec<usize> },
    /// A name that nothing binds. `known` lists the names that were bound where the name was
    /// looked up (the bindings of a `compute_with`, a compiled function's parameters, the CLI's
    /// bindings); it is empty where the lookup does not know them (a parser's `lookup`).
    #[error("unknown name `{name}`{}", known_names(.known))]
    UnknownName { name: String, known: Vec<String> },
    /// A string expression that does not parse; `column` counts characters from 1.
    #[error("parse error at column {column}: {message}")]
    Parse { column: usize, message: String },
    /// An operator applied to a dtype it does not accept (`~` of a float, `-` of bools): `op`
    /// is the operator's name ([`crate::UnaryOp::name`], [`crate::BinaryOp::name`], `positive`
    /// for unary `+`), `dtype` the dtype it was applied to (the operands' common dtype for a
    /// binary operator), `reason` why it is refused.
    #[error("type error: `{op}` of {dtype}: {reason}")]
    OperandType {
        op: String,
        dtype: DType,
        reason: String,
    },
    /// Data bound to symbol or parameter `name` whose dtype is not the declared one (a binding
    /// of `compute_with`, an argument of a compiled call, `input 0` of a kernel). `name` is
    /// empty where nothing is named (a typed accessor such as [`crate::DynArray::into_f64`]
    /// of an array of another dtype).
    #[error("type error: {}", dtype_mismatch(.name, *.expected, *.found))]
    DtypeMismatch {
        name: String,
        expected: DType,
        found: DType,
    },
    /// A dtype fusebox, the chosen device or a file format cannot hold: `dtype` as it was
    /// spelled (`float16`, a `.npy` descr such as `|u1`, `float64` on a GPU without f64),
    /// `context` why (and where: the file, the adapter).
    #[error("unsupported dtype `{dtype}`: {context}")]
    UnsupportedDtype { dtype: String, context: String },
    /// A Python-like integer literal that does not fit the array's integer dtype (NEP 50).
    #[error("integer literal {value} out of bounds for {dtype}")]
    IntegerOverflow { value: i128, dtype: DType },
    /// An `axis` outside `-ndim..ndim` (NumPy's `AxisError`); `axis` as given.
    #[error("axis error: axis {axis} is out of bounds for array of dimension {ndim}")]
    AxisOutOfBounds { axis: isize, ndim: usize },
    /// The same axis named twice (`axis=(0, -2)` of a 2-d array); `axis` counted from 0.
    #[error("axis error: duplicate value in 'axis'")]
    DuplicateAxis { axis: usize },
    /// Any other axis error: `argmin`/`argmax` over several axes, a reduction of more than 64
    /// dimensions, reduced axes a kernel cannot take.
    #[error("axis error: {message}")]
    Axis { message: String },
    /// A call with the wrong number of arguments: `params` names the parameters, in order,
    /// where the callee has names (a compiled function); empty otherwise (a kernel's inputs).
    #[error("argument error: expected {expected} arguments{}, got {found}", param_list(.params))]
    ArgumentCount {
        expected: usize,
        found: usize,
        params: Vec<String>,
    },
    /// Any other bad argument: an option value, a device name, a CLI flag.
    #[error("argument error: {message}")]
    Argument { message: String },
    /// A `.npy` file that cannot be read or written: its path (`None` for bytes in memory) and
    /// the reason.
    #[error("npy error: {}: {message}", path_text(.path))]
    Npy {
        path: Option<PathBuf>,
        message: String,
    },
    /// A table file (Parquet, Arrow IPC, CSV, `.npz`) that cannot be read or written: its path
    /// (`None` for bytes in memory), where in it the reader was (`batch 3`, `row 4096`, the
    /// reader's own line or offset where it names one; `None` when the file as a whole is bad,
    /// such as a missing footer), and the reader's message.
    #[error("table error: {}{}: {message}", path_text(.path), position_suffix(.position))]
    Table {
        path: Option<PathBuf>,
        position: Option<String>,
        message: String,
    },
    /// Other I/O: the path when known, and the system's message.
    #[error("I/O error: {}{message}", path_prefix(.path))]
    Io {
        path: Option<PathBuf>,
        message: String,
    },
    /// An array of another rank than the one asked for (a typed result such as
    /// `into_array::<f64, Ix2>()` of a 1-d array; `expected` 0 for a scalar): the array's shape.
    #[error("expected a {expected}-d array, got shape {shape:?}")]
    Rank { expected: usize, shape: Vec<usize> },
    /// Data bound to symbol `name` whose shape is not the declared one: another rank, or
    /// another length where the declared length is not 0 (a declared 0 matches any length:
    /// `&[0]` is "any 1-d array").
    #[error("`{name}` is declared with shape {declared:?} but bound to data of shape {found:?}")]
    BoundShape {
        name: String,
        declared: Vec<usize>,
        found: Vec<usize>,
    },
    /// A shape or layout error of ndarray's (`ndarray::ShapeError`, converted by `?`), or a
    /// reshape that the data cannot take: the message.
    #[error("shape error: {message}")]
    Layout { message: String },
    /// A shape operation (`transpose`, `reshape`, `expand_dims`, `squeeze`, `broadcast_to`,
    /// slicing) whose arguments do not fit its operand: the operation, the operand's shape, and
    /// NumPy's message (`cannot reshape array of size 6 into shape (4,)`). Axes out of range and
    /// repeated axes are [`Error::AxisOutOfBounds`] and [`Error::DuplicateAxis`].
    #[error("{op}: {message} (operand shape {shape:?})")]
    View {
        op: String,
        shape: Vec<usize>,
        message: String,
    },
    /// An expression nested deeper than the parser or planner allows (`limit` levels).
    #[error("expression too deep: nesting exceeds {limit} levels")]
    TooDeep { limit: usize },
    /// An array bigger than the address space, than the memory there is, or than a device can
    /// address: its shape where the site knows it, and why.
    #[error("array too large: {}{reason}", shape_prefix(.shape))]
    TooLarge {
        shape: Option<Vec<usize>>,
        reason: String,
    },
    /// A float -> integer cast of NaN, an infinity or an out-of-range value, under
    /// [`crate::InvalidCast::Raise`] (by default NumPy's value is given instead): the two
    /// dtypes and the cast expression, as displayed.
    #[error(
        "invalid value in cast: NaN, infinity or out-of-range value cast from {from} to {to} in `{expr}`"
    )]
    InvalidCast {
        from: DType,
        to: DType,
        expr: String,
    },
    /// A reduction without identity of an empty array: `op` is the reduction's name (`min`,
    /// `max`, `argmin`, `argmax`). NumPy's messages: `zero-size array to reduction operation
    /// maximum which has no identity`, `attempt to get argmax of an empty sequence`.
    #[error("value error: {}", empty_reduction(.op))]
    EmptyReduction { op: String },
    /// An integer raised to a negative integer literal (NumPy's message).
    #[error("value error: Integers to negative integer powers are not allowed.")]
    NegativeIntegerPower { exponent: i64 },
    /// Any other value error: integer division of literals by zero, literal arithmetic that
    /// overflows int64.
    #[error("value error: {message}")]
    Value { message: String },
    /// A kernel that failed the IR verifier (an internal bug, reported rather than executed).
    #[error("invalid kernel IR: {message}")]
    InvalidKernel { message: String },
    /// Code generation or JIT failure (the message is Cranelift's or the shader compiler's).
    #[error("compile error: {message}")]
    Compile { message: String },
    /// A device that cannot be used (no adapter, unsupported feature); the driver's message.
    #[error("device error: {message}")]
    Device { message: String },
    /// The device ran out of memory (a buffer or pipeline it could not allocate).
    #[error("out of device memory: {message}")]
    OutOfMemory { message: String },
    /// The device was lost (driver reset or removal); its backend cannot be used again.
    #[error("device lost: {message}")]
    DeviceLost { message: String },
}

impl Error {
    /// Whether this error means "this device failed" (no adapter, a shader it rejected, out of
    /// memory, lost, a dtype or a size it cannot hold), after which `Device::Auto` retries on
    /// the CPU, as opposed to an error in the user's expression or data, which every device
    /// would report.
    pub fn is_device_error(&self) -> bool {
        matches!(
            self,
            Error::Device { .. }
                | Error::DeviceLost { .. }
                | Error::OutOfMemory { .. }
                | Error::Compile { .. }
                | Error::UnsupportedDtype { .. }
                | Error::TooLarge { .. }
        )
    }
}

/// Shorthand used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io {
            path: None,
            message: e.to_string(),
        }
    }
}

impl From<ndarray::ShapeError> for Error {
    fn from(e: ndarray::ShapeError) -> Self {
        Error::Layout {
            message: e.to_string(),
        }
    }
}

/// `, known names: a, b` (nothing when there are none).
fn known_names(known: &[String]) -> String {
    if known.is_empty() {
        String::new()
    } else {
        format!(", known names: {}", known.join(", "))
    }
}

/// ` (a, b)` (nothing when there are no names).
fn param_list(params: &[String]) -> String {
    if params.is_empty() {
        String::new()
    } else {
        format!(" ({})", params.join(", "))
    }
}

/// The path as displayed, or `<memory>`.
fn path_text(path: &Option<PathBuf>) -> String {
    match path {
        Some(p) => p.display().to_string(),
        None => "<memory>".into(),
    }
}

/// ` (at batch 3)` (nothing without a position).
fn position_suffix(position: &Option<String>) -> String {
    match position {
        Some(p) => format!(" (at {p})"),
        None => String::new(),
    }
}

/// `path: ` (nothing without a path).
fn path_prefix(path: &Option<PathBuf>) -> String {
    match path {
        Some(p) => format!("{}: ", p.display()),
        None => String::new(),
    }
}

/// The binding, or the array, that has the wrong dtype.
fn dtype_mismatch(name: &str, expected: DType, found: DType) -> String {
    if name.is_empty() {
        format!("expected {expected} data, got {found}")
    } else {
        format!("`{name}` is declared {expected} but bound to {found} data")
    }
}

/// `shape [2, 3] ` (nothing without a shape).
fn shape_prefix(shape: &Option<Vec<usize>>) -> String {
    match shape {
        Some(s) => format!("shape {s:?} "),
        None => String::new(),
    }
}

/// NumPy's message for an empty reduction without identity.
fn empty_reduction(op: &str) -> String {
    match op {
        "argmin" | "argmax" => format!("attempt to get {op} of an empty sequence"),
        _ => {
            let ufunc = match op {
                "min" => "minimum",
                "max" => "maximum",
                other => other,
            };
            format!("zero-size array to reduction operation {ufunc} which has no identity")
        }
    }
}
