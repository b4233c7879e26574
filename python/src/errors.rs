//! fusebox errors as Python exceptions, by kind, as numexpr and NumPy raise them.
//!
//! | fusebox [`Error`]                        | Python exception                                   |
//! |------------------------------------------|----------------------------------------------------|
//! | `Parse`                                  | `fusebox.ParseError` (a `SyntaxError` and a `ValueError`) |
//! | `UnknownName`                            | `KeyError(name)` (numexpr's)                       |
//! | `Type`, `Argument`                       | `TypeError`                                        |
//! | `UnsupportedDtype`                       | `fusebox.UnsupportedDtypeError` (a `TypeError` and a `NotImplementedError`) |
//! | `IntegerOverflow`                        | `OverflowError` (NumPy 2's for out-of-bounds Python ints) |
//! | `ShapeMismatch`, `Value`, `TooLarge`     | `ValueError`                                       |
//! | `Axis`                                   | `numpy.exceptions.AxisError` (a `ValueError` and an `IndexError`) |
//! | `TooDeep`                                | `RecursionError`                                   |
//! | `InvalidCast`                            | `FloatingPointError` (as under `np.errstate(invalid='raise')`) |
//! | `OutOfMemory`                            | `MemoryError`                                      |
//! | `Io`, `Npy`                              | `OSError`                                          |
//! | device, compile and internal errors      | `RuntimeError`                                     |
//!
//! The two classes with two bases are made at import (`make_classes`): a parse error is a
//! `SyntaxError` (numexpr's, for bad syntax) and a `ValueError` (numexpr's, for strings its
//! sanitizer rejects); an unsupported dtype is a `TypeError` and a `NotImplementedError`
//! (numexpr's own tests skip what raises the latter).
use fusebox::Error;
use pyo3::exceptions::{
    PyFloatingPointError, PyKeyError, PyMemoryError, PyOSError, PyOverflowError, PyRecursionError,
    PyRuntimeError, PyTypeError, PyValueError,
};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple, PyType};

static PARSE_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static UNSUPPORTED_DTYPE: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static AXIS_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// Create `fusebox.ParseError` and `fusebox.UnsupportedDtypeError` and add them to `m`.
pub fn make_classes(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    let make = |name: &str, bases: Vec<Bound<'_, PyType>>, doc: &str| -> PyResult<Py<PyType>> {
        let ns = PyDict::new(py);
        ns.set_item("__module__", "fusebox")?;
        ns.set_item("__doc__", doc)?;
        let t = py
            .get_type::<PyType>()
            .call1((name, PyTuple::new(py, bases)?, ns))?;
        Ok(t.cast_into::<PyType>()?.unbind())
    };
    let parse = make(
        "ParseError",
        vec![py.get_type::<pyo3::exceptions::PySyntaxError>(), py.get_type::<PyValueError>()],
        "An expression that does not parse (a SyntaxError, and a ValueError as numexpr's sanitizer raises).",
    )?;
    let dtype = make(
        "UnsupportedDtypeError",
        vec![
            py.get_type::<PyTypeError>(),
            py.get_type::<pyo3::exceptions::PyNotImplementedError>(),
        ],
        "An array dtype fusebox does not compute with (a TypeError, and a NotImplementedError).",
    )?;
    m.add("ParseError", parse.bind(py))?;
    m.add("UnsupportedDtypeError", dtype.bind(py))?;
    let _ = PARSE_ERROR.set(py, parse);
    let _ = UNSUPPORTED_DTYPE.set(py, dtype);
    Ok(())
}

fn new_err(py: Python<'_>, class: &PyOnceLock<Py<PyType>>, msg: String) -> PyErr {
    match class.get(py) {
        Some(t) => PyErr::from_type(t.bind(py).clone(), msg),
        None => PyTypeError::new_err(msg),
    }
}

/// `fusebox.UnsupportedDtypeError(msg)`.
pub fn unsupported_dtype(py: Python<'_>, msg: String) -> PyErr {
    new_err(py, &UNSUPPORTED_DTYPE, msg)
}

/// NumPy's `AxisError` (imported on first use), else a `ValueError`.
fn axis_error(py: Python<'_>, msg: String) -> PyErr {
    let t = AXIS_ERROR.get_or_try_init(py, || -> PyResult<Py<PyType>> {
        Ok(py
            .import("numpy.exceptions")?
            .getattr("AxisError")?
            .cast_into::<PyType>()?
            .unbind())
    });
    match t {
        // AxisError(msg) with one argument keeps the message as given.
        Ok(t) => PyErr::from_type(t.bind(py).clone(), msg),
        Err(_) => PyValueError::new_err(msg),
    }
}

/// The Python exception for a fusebox error.
pub fn to_py(py: Python<'_>, e: Error) -> PyErr {
    let msg = e.to_string();
    match e {
        Error::Parse { .. } => new_err(py, &PARSE_ERROR, msg),
        Error::UnknownName { name, .. } => PyKeyError::new_err(name),
        Error::OperandType { .. }
        | Error::DtypeMismatch { .. }
        | Error::ArgumentCount { .. }
        | Error::Argument { .. } => PyTypeError::new_err(msg),
        Error::UnsupportedDtype { .. } => unsupported_dtype(py, msg),
        Error::IntegerOverflow { .. } => PyOverflowError::new_err(msg),
        Error::ShapeMismatch { .. }
        | Error::Value { .. }
        | Error::TooLarge { .. }
        | Error::EmptyReduction { .. }
        | Error::NegativeIntegerPower { .. } => PyValueError::new_err(msg),
        Error::AxisOutOfBounds { .. } | Error::DuplicateAxis { .. } | Error::Axis { .. } => {
            // NumPy's AxisError message, without fusebox's "axis error: " kind prefix.
            let m = msg.strip_prefix("axis error: ").unwrap_or(&msg).to_string();
            axis_error(py, m)
        }
        Error::TooDeep { .. } => PyRecursionError::new_err(msg),
        Error::InvalidCast { .. } => PyFloatingPointError::new_err(msg),
        Error::OutOfMemory { .. } => PyMemoryError::new_err(msg),
        Error::Io { .. } | Error::Npy { .. } => PyOSError::new_err(msg),
        _ => PyRuntimeError::new_err(msg),
    }
}

/// `Result<T, fusebox::Error>` -> `PyResult<T>`.
pub trait IntoPy<T> {
    fn py_err(self, py: Python<'_>) -> PyResult<T>;
}

impl<T> IntoPy<T> for fusebox::Result<T> {
    fn py_err(self, py: Python<'_>) -> PyResult<T> {
        self.map_err(|e| to_py(py, e))
    }
}
