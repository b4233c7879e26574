//! `out=`: results written into the caller's array.
//!
//! When `out` has the result's dtype and shape, is aligned and in native byte order, the
//! kernel writes into `out`'s own buffer ([`fusebox::Compiled::call_into`], any strides, the
//! GIL released): no temporary of the result's size exists. `out` may be one of the inputs
//! (`evaluate('a + 1', out=a)`, as numexpr allows): the core runs that in place, and any
//! other overlap through a scratch buffer ([`out_view`] explains the borrow). Every other
//! `out` (another dtype under the `casting` rule, a shape the result broadcasts to, a
//! byte-swapped or unaligned array) gets a fresh result copied by `np.copyto`
//! ([`write_into`]).
use crate::args::{assign_into, busy, dtype_of, to_numpy};
use fusebox::{ArgView, ArgViewMut, DType, DynArray, Scalar};
use numpy::{PyArrayDescrMethods, PyUntypedArray, PyUntypedArrayMethods};
use numpy::{PyArrayDyn, PyArrayMethods};
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

/// Anything held only to be dropped later (a borrow guard).
pub trait Guard {}
impl<T> Guard for T {}

/// `out` as a view for [`fusebox::Compiled::call_into`], and the borrow that guards it (None
/// when `out` overlaps one of this call's own inputs).
pub struct OutView<'a> {
    pub view: ArgViewMut<'a>,
    /// Held (never read) until the kernel is done: dropping it ends the borrow.
    pub _guard: Option<Box<dyn Guard + 'a>>,
}

/// Borrow `out` for writing. The NumPy borrow tracker grants it unless another borrow of
/// overlapping memory is alive: another thread's fusebox call (an error, as for inputs), or
/// this call's own read-only borrow of an input that `out` overlaps (`evaluate('a + 1',
/// out=a)`), which is allowed.
pub fn out_view<'a, 'py, T>(
    out: &'a Bound<'py, PyArrayDyn<T>>,
    inputs: &[ArgView<'_>],
) -> PyResult<OutView<'a>>
where
    T: numpy::Element + fusebox::Element,
    ArgViewMut<'a>: From<ndarray::ArrayViewMutD<'a, T>>,
{
    let guard: Option<Box<dyn Guard + 'a>> = match out.try_readwrite() {
        Ok(g) => Some(Box::new(g)),
        Err(e) => {
            let (lo, hi) = range_of(out);
            let aliased = inputs.iter().any(|a| {
                let (alo, ahi) = fusebox::unstable::array::byte_range(
                    a.as_ptr(),
                    a.shape(),
                    a.strides(),
                    a.dtype().size(),
                );
                alo < hi && lo < ahi
            });
            if !aliased {
                return Err(busy(e));
            }
            None
        }
    };
    // SAFETY: `out` is a live, writeable (checked by `check_out`), aligned NumPy array of
    // element type `T` (the caller matched its dtype), so a view over its data, shape and
    // strides addresses only its own elements. Nothing else writes those elements while the
    // view lives: either `guard` holds NumPy's exclusive borrow of them, or the borrow
    // tracker refused it only because of this call's own read-only borrows of inputs that
    // `out` overlaps, which `call_into` supports (in place when laid out exactly as the
    // output, through a scratch buffer otherwise) and which the kernel only reads.
    let view = unsafe { out.as_array_mut() };
    Ok(OutView {
        view: view.into(),
        _guard: guard,
    })
}

/// The byte range of `out`'s elements.
fn range_of<T: numpy::Element>(out: &Bound<'_, PyArrayDyn<T>>) -> (usize, usize) {
    let shape = out.shape();
    let size = std::mem::size_of::<T>().max(1);
    let strides: Vec<isize> = out.strides().iter().map(|s| s / size as isize).collect();
    fusebox::unstable::array::byte_range(out.data() as *const u8, shape, &strides, size)
}

/// Whether `out` can be written directly with a result of dtype `dt`: the same dtype, in
/// native byte order, aligned.
pub fn direct_dtype(out: &Bound<'_, PyAny>, dt: DType) -> bool {
    let Ok(a) = out.cast::<PyUntypedArray>() else {
        return false;
    };
    let d = a.dtype();
    dtype_of(d.kind(), d.itemsize()) == Some(dt)
        && d.is_native_byteorder() != Some(false)
        && a.is_aligned()
}
