//! `out=`: results written into the caller's array.
//!
//! fusebox has no compute-into API yet, so the result is computed into a fresh buffer and
//! copied once: in Rust with the GIL released when `out` has the result's dtype and shape and
//! is aligned in native byte order, else by `np.copyto` (any strides, broadcasting, byte
//! order, alignment, and the `casting` rule). [`write_into`] is the only function that
//! writes into `out`; when `Compiled::call_into` lands, `api::run_entry` calls it instead of
//! `Compiled::call` + [`write_into`] (a one-line switch).
use crate::args::{assign_into, dtype_of, to_numpy};
use fusebox::{DynArray, Scalar};
use numpy::{PyArrayDescrMethods, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

/// `out` must be a writeable NumPy array (checked before any work is done).
pub fn check_out(out: &Bound<'_, PyAny>) -> PyResult<()> {
    let Ok(a) = out.cast::<PyUntypedArray>() else {
        return Err(PyTypeError::new_err(format!(
            "out= must be a NumPy array, got {}",
            out.get_type().name()?
        )));
    };
    // SAFETY: `a` is a live NumPy array (we hold a reference), so its object pointer is valid
    // to read the flags field from.
    let writeable =
        unsafe { (*a.as_array_ptr()).fields.flags & numpy::npyffi::NPY_ARRAY_WRITEABLE != 0 };
    if !writeable {
        return Err(PyValueError::new_err("output array is read-only"));
    }
    Ok(())
}

/// Copy `result` into `out` under the `casting` rule (NumPy's names).
pub fn write_into(
    py: Python<'_>,
    result: DynArray,
    out: &Bound<'_, PyAny>,
    casting: &str,
) -> PyResult<()> {
    let a = out.cast::<PyUntypedArray>()?;
    let d = a.dtype();
    let same_dtype = dtype_of(d.kind(), d.itemsize()) == Some(result.dtype())
        && d.is_native_byteorder() != Some(false);
    if same_dtype && a.is_aligned() && a.shape() == result.shape() {
        return assign_into(py, out, &result);
    }
    let src = to_numpy(py, result)?;
    copyto(py, out, &src, casting)
}

/// Write a weak scalar result (`2 * 3`, or names bound to Python numbers only) into `out`:
/// NumPy types the Python number by `out`'s dtype (NEP 50), so `evaluate('3', out=int32_array)`
/// is allowed under `casting='safe'` as `np.copyto(int32_array, 3, casting='safe')` is.
pub fn write_weak(
    py: Python<'_>,
    s: Scalar,
    out: &Bound<'_, PyAny>,
    casting: &str,
) -> PyResult<()> {
    let v = match s {
        Scalar::Bool(b) => b.into_pyobject(py)?.to_owned().into_any(),
        Scalar::Int(i) => i.into_pyobject(py)?.into_any(),
        Scalar::Float(f) => f.into_pyobject(py)?.into_any(),
    };
    copyto(py, out, &v, casting)
}

fn copyto(
    py: Python<'_>,
    out: &Bound<'_, PyAny>,
    src: &Bound<'_, PyAny>,
    casting: &str,
) -> PyResult<()> {
    let kwargs = pyo3::types::PyDict::new(py);
    kwargs.set_item("casting", casting)?;
    py.import("numpy")?
        .getattr("copyto")?
        .call((out, src), Some(&kwargs))?;
    Ok(())
}
