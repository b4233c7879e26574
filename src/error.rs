//! The one public error type. Every fallible call in fusebox returns [`Result<T>`]; bad input
//! never panics.
use thiserror::Error;

/// Everything that can go wrong, by kind. Messages name the problem (both shapes, the unknown
/// name, the column of a parse error) so that a CLI can print them as one line.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum Error {
    /// Operands whose shapes do not broadcast (NumPy's rules).
    #[error(
        "shape mismatch: operands could not be broadcast together with shapes {lhs:?} and {rhs:?}"
    )]
    ShapeMismatch { lhs: Vec<usize>, rhs: Vec<usize> },
    /// A name in an expression that is not bound to data.
    #[error("unknown name `{0}`")]
    UnknownName(String),
    /// A string expression that does not parse; `column` counts characters from 1.
    #[error("parse error at column {column}: {message}")]
    Parse { column: usize, message: String },
    /// An operation applied to a dtype it does not accept (e.g. `~` on floats).
    #[error("type error: {0}")]
    Type(String),
    /// A dtype the chosen device or the library cannot handle.
    #[error("unsupported dtype: {0}")]
    UnsupportedDtype(String),
    /// A Python-like integer literal that does not fit the array's integer dtype (NEP 50).
    #[error("integer literal {value} out of bounds for {dtype}")]
    IntegerOverflow { value: i128, dtype: String },
    /// `axis` out of range, or a repeated axis.
    #[error("axis error: {0}")]
    Axis(String),
    /// Wrong number or kind of arguments to a compiled function or a call.
    #[error("argument error: {0}")]
    Argument(String),
    /// A `.npy` file that cannot be read or written.
    #[error("npy error: {0}")]
    Npy(String),
    /// Other I/O.
    #[error("I/O error: {0}")]
    Io(String),
    /// A kernel that failed the IR verifier (an internal bug, reported rather than executed).
    #[error("invalid kernel IR: {0}")]
    InvalidKernel(String),
    /// Code generation or JIT failure.
    #[error("compile error: {0}")]
    Compile(String),
    /// A device that cannot be used (no adapter, unsupported feature).
    #[error("device error: {0}")]
    Device(String),
    /// The device ran out of memory (a buffer or pipeline it could not allocate).
    #[error("out of device memory: {0}")]
    OutOfMemory(String),
    /// The device was lost (driver reset or removal); its backend cannot be used again.
    #[error("device lost: {0}")]
    DeviceLost(String),
    /// An expression nested deeper than the parser or planner allows.
    #[error("expression too deep: nesting exceeds {0} levels")]
    TooDeep(usize),
    /// An array whose size in bytes overflows the address space.
    #[error("array too large: {0}")]
    TooLarge(String),
    /// A float -> integer cast of NaN, an infinity or an out-of-range value, under
    /// [`crate::InvalidCast::Raise`] (by default NumPy's value is given instead).
    #[error("invalid value in cast: NaN, infinity or out-of-range value cast from {0}")]
    InvalidCast(String),
    /// A reduction that has no identity applied to an empty array.
    #[error("value error: {0}")]
    Value(String),
}

impl Error {
    /// Whether this error means "this device failed" (no adapter, a shader it rejected, out of
    /// memory, lost), after which `Device::Auto` retries on the CPU, as opposed to an error in
    /// the user's expression or data, which every device would report.
    pub fn is_device_error(&self) -> bool {
        matches!(
            self,
            Error::Device(_)
                | Error::DeviceLost(_)
                | Error::OutOfMemory(_)
                | Error::Compile(_)
                | Error::UnsupportedDtype(_)
                | Error::TooLarge(_)
        )
    }
}

/// Shorthand used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e.to_string())
    }
}
