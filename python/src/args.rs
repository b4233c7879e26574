//! The edge between NumPy and fusebox: Python values bound to names become zero-copy
//! [`ArgView`]s or weak scalars, and results become NumPy arrays that own fusebox's buffer.
//!
//! - An `ndarray` of a supported dtype, aligned and in native byte order, is borrowed in place
//!   (`PyReadonlyArrayDyn` -> `ArrayViewD` -> `ArgView`: any strides, negative and zero ones
//!   included). An unaligned or byte-swapped array is first copied by NumPy (`np.require`).
//! - Python `bool`/`int`/`float` are *weak* scalars (NEP 50: `float32_array * 2.5` stays
//!   float32). NumPy scalars (`np.float32(2.5)`) are *strong*, as in NumPy: 0-d arrays.
//! - Anything else goes through `np.asarray` (lists, pandas objects); object, string, datetime
//!   and other dtypes fusebox lacks raise `fusebox.UnsupportedDtypeError` (a `TypeError`)
//!   naming the dtype.
//!
//! [`DTYPES`] is the one table of dtypes: a dtype fusebox gains needs one line there.
use crate::errors::unsupported_dtype;
use fusebox::{ArgView, DType, DynArray, Scalar};
use numpy::{
    PyArrayDescrMethods, PyArrayDyn, PyArrayMethods, PyReadonlyArrayDyn, PyUntypedArray,
    PyUntypedArrayMethods,
};
use pyo3::exceptions::{PyOverflowError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyComplex, PyFloat, PyInt, PyType};

/// Every dtype the bindings pass to fusebox: (variant, Rust element type, NumPy kind
/// character, item size).
macro_rules! for_each_dtype {
    ($m:ident) => {
        $m! {
            (Bool, bool, b'b', 1),
            (I8, i8, b'i', 1),
            (I16, i16, b'i', 2),
            (I32, i32, b'i', 4),
            (I64, i64, b'i', 8),
            (U8, u8, b'u', 1),
            (U16, u16, b'u', 2),
            (U32, u32, b'u', 4),
            (U64, u64, b'u', 8),
            (F16, fusebox::f16, b'f', 2),
            (F32, f32, b'f', 4),
            (F64, f64, b'f', 8),
        }
    };
}

macro_rules! dtype_table {
    ($(($v:ident, $t:ty, $kind:expr, $size:expr)),* $(,)?) => {
        /// The dtypes, as (fusebox dtype, NumPy kind character, item size).
        pub const DTYPES: &[(DType, u8, usize)] = &[$((DType::$v, $kind, $size)),*];

        /// A NumPy array borrowed read-only for the duration of a call.
        pub enum Held<'py> {
            $($v(PyReadonlyArrayDyn<'py, $t>),)*
        }

        impl<'py> Held<'py> {
            /// The borrowed data as fusebox sees it (no copy).
            pub fn view(&self) -> ArgView<'_> {
                match self {
                    $(Held::$v(a) => a.as_array().into(),)*
                }
            }
            pub fn shape(&self) -> &[usize] {
                match self {
                    $(Held::$v(a) => a.shape(),)*
                }
            }
        }

        /// Borrow `array` (aligned, native byte order, of dtype `dt`).
        fn borrow<'py>(array: &Bound<'py, PyAny>, dt: DType) -> PyResult<Held<'py>> {
            match dt {
                $(DType::$v => Ok(Held::$v(
                    array.cast::<PyArrayDyn<$t>>()?.try_readonly().map_err(busy)?,
                )),)*
            }
        }

        /// A fusebox result as a NumPy array that owns the result's buffer: the `Vec` moves
        /// into NumPy without a copy when the result is not shared (fusebox's own
        /// `DynArray::into_array` copies, so the variants are taken apart here).
        pub fn to_numpy<'py>(py: Python<'py>, a: DynArray) -> PyResult<Bound<'py, PyAny>> {
            match a {
                $(DynArray::$v(arc) => {
                    Ok(numpy::PyArray::from_owned_array(py, arc.into_owned()).into_any())
                })*
            }
        }

        /// Copy `result` into the NumPy array `out` of the same dtype and shape (aligned, native
        /// byte order, writeable: the caller checked), with the GIL released.
        pub fn assign_into(py: Python<'_>, out: &Bound<'_, PyAny>, result: &DynArray) -> PyResult<()> {
            match result.dtype() {
                $(DType::$v => {
                    let src = result
                        .as_array::<$t>()
                        .map_err(|e| crate::errors::to_py(py, e))?;
                    let mut dst = out.cast::<PyArrayDyn<$t>>()?.try_readwrite().map_err(busy)?;
                    let mut dst = dst.as_array_mut();
                    py.detach(|| dst.assign(src));
                    Ok(())
                })*
            }
        }

        /// `out` (a writeable NumPy array of dtype `dt`) as the view a kernel writes into;
        /// see [`crate::out::out_view`].
        pub fn out_view_of<'a, 'py>(
            out: &'a Bound<'py, PyAny>,
            dt: DType,
            inputs: &[ArgView<'_>],
        ) -> PyResult<crate::out::OutView<'a>> {
            match dt {
                $(DType::$v => crate::out::out_view::<$t>(out.cast::<PyArrayDyn<$t>>()?, inputs),)*
            }
        }
    };
}
for_each_dtype!(dtype_table);

pub fn busy(e: numpy::BorrowError) -> PyErr {
    PyValueError::new_err(format!(
        "an array argument is being written by another fusebox call ({e})"
    ))
}

/// The fusebox dtype of a NumPy dtype with this kind character and item size.
pub fn dtype_of(kind: u8, size: usize) -> Option<DType> {
    DTYPES
        .iter()
        .find(|(_, k, s)| *k == kind && *s == size)
        .map(|(d, _, _)| *d)
}

/// The names of the dtypes fusebox computes with, for messages.
pub fn supported_names() -> String {
    DTYPES
        .iter()
        .map(|(d, _, _)| d.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A value bound to a name: an array borrowed from NumPy, or a weak Python scalar.
pub enum Value<'py> {
    Array(Held<'py>, DType),
    Weak(Scalar),
}

struct NumpyRefs {
    ndarray: Py<PyType>,
    generic: Py<PyType>,
    masked: Py<PyType>,
    asarray: Py<PyAny>,
    require: Py<PyAny>,
}

static NP: PyOnceLock<NumpyRefs> = PyOnceLock::new();

fn np(py: Python<'_>) -> PyResult<&NumpyRefs> {
    NP.get_or_try_init(py, || {
        let np = py.import("numpy")?;
        let ty = |name: &str| -> PyResult<Py<PyType>> {
            Ok(np.getattr(name)?.cast_into::<PyType>()?.unbind())
        };
        Ok(NumpyRefs {
            ndarray: ty("ndarray")?,
            generic: ty("generic")?,
            masked: py
                .import("numpy.ma")?
                .getattr("MaskedArray")?
                .cast_into::<PyType>()?
                .unbind(),
            asarray: np.getattr("asarray")?.unbind(),
            require: np.getattr("require")?.unbind(),
        })
    })
}

/// The `numpy` module (imported once).
pub fn numpy_module(py: Python<'_>) -> PyResult<Bound<'_, PyModule>> {
    static M: PyOnceLock<Py<PyModule>> = PyOnceLock::new();
    Ok(
        M.get_or_try_init(py, || py.import("numpy").map(Bound::unbind))?
            .bind(py)
            .clone(),
    )
}

/// `np.asarray(obj)`.
pub fn asarray<'py>(py: Python<'py>, obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    np(py)?.asarray.bind(py).call1((obj,))
}

/// The value bound to `name`, borrowed or converted as the module doc says.
pub fn classify<'py>(py: Python<'py>, name: &str, obj: &Bound<'py, PyAny>) -> PyResult<Value<'py>> {
    if let Ok(a) = obj.cast::<PyUntypedArray>() {
        return array_value(py, name, obj, a);
    }
    let refs = np(py)?;
    if obj.is_instance(refs.generic.bind(py))? {
        // NumPy scalars are strong (NEP 50): a 0-d array of their dtype.
        let a = asarray(py, obj)?;
        return array_value(py, name, &a, a.cast::<PyUntypedArray>()?);
    }
    if obj.is_instance_of::<PyBool>() {
        return Ok(Value::Weak(Scalar::Bool(obj.extract::<bool>()?)));
    }
    if obj.is_instance_of::<PyInt>() {
        return match obj.extract::<i64>() {
            Ok(v) => Ok(Value::Weak(Scalar::Int(v))),
            Err(_) => Err(PyOverflowError::new_err(format!(
                "Python integer {obj} bound to `{name}` is out of bounds for int64"
            ))),
        };
    }
    if obj.is_instance_of::<PyFloat>() {
        return Ok(Value::Weak(Scalar::Float(obj.extract::<f64>()?)));
    }
    if obj.is_instance_of::<PyComplex>() {
        return Err(unsupported_dtype(
            py,
            format!(
                "`{name}` is a complex number: fusebox computes with {}",
                supported_names()
            ),
        ));
    }
    let a = asarray(py, obj).map_err(|e| {
        PyTypeError::new_err(format!(
            "`{name}` is bound to a {} that is not an array or a number ({e})",
            type_name(obj)
        ))
    })?;
    let ua = a.cast::<PyUntypedArray>()?;
    if ua.dtype().kind() == b'O' {
        return Err(PyTypeError::new_err(format!(
            "`{name}` is bound to a {}, which is not an array or a number (NumPy makes an object array of it)",
            type_name(obj)
        )));
    }
    array_value(py, name, &a, ua)
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "object".into())
}

fn array_value<'py>(
    py: Python<'py>,
    name: &str,
    obj: &Bound<'py, PyAny>,
    a: &Bound<'py, PyUntypedArray>,
) -> PyResult<Value<'py>> {
    let descr = a.dtype();
    let Some(dt) = dtype_of(descr.kind(), descr.itemsize()) else {
        return Err(unsupported_dtype(
            py,
            format!(
                "unsupported dtype {} of `{name}`: fusebox computes with {}",
                descr.str()?,
                supported_names()
            ),
        ));
    };
    if !obj.get_type().is(np(py)?.ndarray.bind(py)) && obj.is_instance(np(py)?.masked.bind(py))? {
        return Err(PyTypeError::new_err(format!(
            "`{name}` is a masked array: fusebox would ignore its mask (pass `.filled(...)` or `.data`)"
        )));
    }
    if !a.is_aligned() || descr.is_native_byteorder() == Some(false) {
        // One copy into an aligned, native-order array (np.require keeps the values).
        let native = descr.call_method1("newbyteorder", ("=",))?;
        let fixed = np(py)?.require.bind(py).call1((obj, native, "A"))?;
        return Ok(Value::Array(borrow(&fixed, dt)?, dt));
    }
    Ok(Value::Array(borrow(obj, dt)?, dt))
}

/// `fusebox::DType` from a NumPy dtype (or anything `np.dtype` accepts).
pub fn dtype_from_py(py: Python<'_>, spec: &Bound<'_, PyAny>) -> PyResult<DType> {
    let d = py.import("numpy")?.getattr("dtype")?.call1((spec,))?;
    let d = d.cast::<numpy::PyArrayDescr>()?;
    dtype_of(d.kind(), d.itemsize()).ok_or_else(|| {
        unsupported_dtype(
            py,
            format!(
                "unsupported dtype {}: fusebox computes with {}",
                d.str().map(|s| s.to_string()).unwrap_or_default(),
                supported_names()
            ),
        )
    })
}
