//! Host arrays of any supported dtype ([`DynArray`]), borrowed views of them ([`ArgView`]) for
//! calling compiled functions, NumPy's broadcasting rules, and NumPy-like printing.
use crate::dtype::{Const, DType};
use crate::error::{Error, Result};
use crate::fmt::fmt_float;
use ndarray::{
    ArcArray, Array, ArrayD, ArrayView, ArrayViewD, ArrayViewMut, ArrayViewMutD, Dimension, IxDyn,
};
use std::fmt;

/// A Rust element type fusebox can compute with.
pub trait Element: Copy + Send + Sync + PartialEq + fmt::Debug + Default + 'static {
    const DTYPE: DType;
    fn wrap(a: ArcArray<Self, IxDyn>) -> DynArray;
    fn unwrap(a: &DynArray) -> Option<&ArcArray<Self, IxDyn>>;
    /// The typed array, moved out, or the array back if its dtype is another.
    fn take(a: DynArray) -> std::result::Result<ArcArray<Self, IxDyn>, DynArray>;
    fn wrap_view(v: ArrayViewD<'_, Self>) -> ArgView<'_>;
    fn wrap_view_mut(v: ArrayViewMutD<'_, Self>) -> ArgViewMut<'_>;
    /// The value as a typed constant.
    fn to_const(self) -> Const;
    /// The value of a constant of this dtype (another dtype's constant gives the default).
    fn from_const(c: Const) -> Self;
}

macro_rules! element {
    ($t:ty, $variant:ident) => {
        impl Element for $t {
            const DTYPE: DType = DType::$variant;
            fn wrap(a: ArcArray<Self, IxDyn>) -> DynArray {
                DynArray::$variant(a)
            }
            fn unwrap(a: &DynArray) -> Option<&ArcArray<Self, IxDyn>> {
                match a {
                    DynArray::$variant(x) => Some(x),
                    _ => None,
                }
            }
            fn take(a: DynArray) -> std::result::Result<ArcArray<Self, IxDyn>, DynArray> {
                match a {
                    DynArray::$variant(x) => Ok(x),
                    other => Err(other),
                }
            }
            fn wrap_view(v: ArrayViewD<'_, Self>) -> ArgView<'_> {
                ArgView::$variant(v)
            }
            fn wrap_view_mut(v: ArrayViewMutD<'_, Self>) -> ArgViewMut<'_> {
                ArgViewMut::$variant(v)
            }
            fn to_const(self) -> Const {
                Const::$variant(self)
            }
            fn from_const(c: Const) -> Self {
                match c {
                    Const::$variant(v) => v,
                    _ => Self::default(),
                }
            }
        }
    };
}
element!(bool, Bool);
element!(i32, I32);
element!(i64, I64);
element!(i8, I8);
element!(i16, I16);
element!(u8, U8);
element!(u16, U16);
element!(u32, U32);
element!(u64, U64);
element!(half::f16, F16);
element!(f32, F32);
element!(f64, F64);

/// An n-dimensional array of any supported dtype, with any strides. Cheap to clone (shared).
#[derive(Clone, PartialEq)]
pub enum DynArray {
    Bool(ArcArray<bool, IxDyn>),
    I32(ArcArray<i32, IxDyn>),
    I64(ArcArray<i64, IxDyn>),
    I8(ArcArray<i8, IxDyn>),
    I16(ArcArray<i16, IxDyn>),
    U8(ArcArray<u8, IxDyn>),
    U16(ArcArray<u16, IxDyn>),
    U32(ArcArray<u32, IxDyn>),
    U64(ArcArray<u64, IxDyn>),
    F16(ArcArray<half::f16, IxDyn>),
    F32(ArcArray<f32, IxDyn>),
    F64(ArcArray<f64, IxDyn>),
}

/// Apply `$body` to the typed array inside a [`DynArray`] (or [`ArgView`]).
#[macro_export]
#[doc(hidden)]
macro_rules! dispatch {
    ($value:expr, $a:ident => $body:expr) => {
        match $value {
            $crate::DynArray::Bool($a) => $body,
            $crate::DynArray::I32($a) => $body,
            $crate::DynArray::I64($a) => $body,
            $crate::DynArray::I8($a) => $body,
            $crate::DynArray::I16($a) => $body,
            $crate::DynArray::U8($a) => $body,
            $crate::DynArray::U16($a) => $body,
            $crate::DynArray::U32($a) => $body,
            $crate::DynArray::U64($a) => $body,
            $crate::DynArray::F16($a) => $body,
            $crate::DynArray::F32($a) => $body,
            $crate::DynArray::F64($a) => $body,
        }
    };
}

/// Run `$body` with the type alias `$t` set to the Rust element type of the dtype `$dtype`.
#[macro_export]
#[doc(hidden)]
macro_rules! with_dtype {
    ($dtype:expr, $t:ident => $body:expr) => {
        match $dtype {
            $crate::DType::Bool => {
                type $t = bool;
                $body
            }
            $crate::DType::I8 => {
                type $t = i8;
                $body
            }
            $crate::DType::I16 => {
                type $t = i16;
                $body
            }
            $crate::DType::I32 => {
                type $t = i32;
                $body
            }
            $crate::DType::I64 => {
                type $t = i64;
                $body
            }
            $crate::DType::U8 => {
                type $t = u8;
                $body
            }
            $crate::DType::U16 => {
                type $t = u16;
                $body
            }
            $crate::DType::U32 => {
                type $t = u32;
                $body
            }
            $crate::DType::U64 => {
                type $t = u64;
                $body
            }
            $crate::DType::F16 => {
                type $t = $crate::f16;
                $body
            }
            $crate::DType::F32 => {
                type $t = f32;
                $body
            }
            $crate::DType::F64 => {
                type $t = f64;
                $body
            }
        }
    };
}

impl DynArray {
    pub fn dtype(&self) -> DType {
        match self {
            DynArray::Bool(_) => DType::Bool,
            DynArray::I32(_) => DType::I32,
            DynArray::I64(_) => DType::I64,
            DynArray::I8(_) => DType::I8,
            DynArray::I16(_) => DType::I16,
            DynArray::U8(_) => DType::U8,
            DynArray::U16(_) => DType::U16,
            DynArray::U32(_) => DType::U32,
            DynArray::U64(_) => DType::U64,
            DynArray::F16(_) => DType::F16,
            DynArray::F32(_) => DType::F32,
            DynArray::F64(_) => DType::F64,
        }
    }
    pub fn shape(&self) -> &[usize] {
        dispatch!(self, a => a.shape())
    }
    /// Strides in elements (may be negative or zero).
    pub fn strides(&self) -> &[isize] {
        dispatch!(self, a => a.strides())
    }
    pub fn len(&self) -> usize {
        dispatch!(self, a => a.len())
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn ndim(&self) -> usize {
        self.shape().len()
    }
    /// Size of the elements in bytes (what reading the whole array once moves).
    pub fn nbytes(&self) -> usize {
        self.len() * self.dtype().size()
    }

    /// The same elements in C order with another shape of the same length (a reduction's
    /// result with or without its `keepdims` axes). Copies only if `self` is not C-contiguous.
    pub fn reshaped(&self, shape: &[usize]) -> Result<DynArray> {
        if self.shape() == shape {
            return Ok(self.clone());
        }
        let bad = |_| Error::ShapeMismatch {
            lhs: self.shape().to_vec(),
            rhs: shape.to_vec(),
        };
        Ok(crate::dispatch!(self, a => {
            let a = if a.is_standard_layout() { a.clone() } else { a.as_standard_layout().into_owned().into_shared() };
            a.into_shape_with_order(IxDyn(shape)).map_err(bad)?.into()
        }))
    }

    /// Borrow as a view, for calling a compiled function.
    pub fn view(&self) -> ArgView<'_> {
        match self {
            DynArray::Bool(a) => ArgView::Bool(a.view()),
            DynArray::I32(a) => ArgView::I32(a.view()),
            DynArray::I64(a) => ArgView::I64(a.view()),
            DynArray::I8(a) => ArgView::I8(a.view()),
            DynArray::I16(a) => ArgView::I16(a.view()),
            DynArray::U8(a) => ArgView::U8(a.view()),
            DynArray::U16(a) => ArgView::U16(a.view()),
            DynArray::U32(a) => ArgView::U32(a.view()),
            DynArray::U64(a) => ArgView::U64(a.view()),
            DynArray::F16(a) => ArgView::F16(a.view()),
            DynArray::F32(a) => ArgView::F32(a.view()),
            DynArray::F64(a) => ArgView::F64(a.view()),
        }
    }

    /// The typed array, if the dtype is `T`'s.
    pub fn as_array<T: Element>(&self) -> Result<&ArcArray<T, IxDyn>> {
        T::unwrap(self).ok_or_else(|| Error::DtypeMismatch {
            name: String::new(),
            expected: T::DTYPE,
            found: self.dtype(),
        })
    }
    /// The typed array of rank `D` (`Ix0`, `Ix1`, `Ix2`, ..., or `IxDyn` for any), **moving**
    /// the buffer: a result of `compute` is owned by the caller alone, so nothing is copied
    /// (the data pointer stays the same). Only an array that is still shared (a clone of it is
    /// alive, or it is data bound in an expression) is copied once, as ndarray's `into_owned`
    /// does. Errors: [`Error::DtypeMismatch`] for another dtype, [`Error::Rank`] for another rank.
    ///
    /// ```
    /// use fusebox::Session;
    /// use ndarray::{array, Array1};
    /// let s = Session::new();
    /// let x = s.data(array![1.0, 2.0]);
    /// let y: Array1<f64> = s.compute(&(&x * 2.0))?.into_array()?;
    /// assert_eq!(y, array![2.0, 4.0]);
    /// # Ok::<(), fusebox::Error>(())
    /// ```
    pub fn into_array<T: Element, D: Dimension>(self) -> Result<Array<T, D>> {
        let found = self.dtype();
        let a = T::take(self).map_err(|_| Error::DtypeMismatch {
            name: String::new(),
            expected: T::DTYPE,
            found,
        })?;
        if let Some(n) = D::NDIM {
            if n != a.ndim() {
                return Err(Error::Rank {
                    expected: n,
                    shape: a.shape().to_vec(),
                });
            }
        }
        Ok(a.into_owned().into_dimensionality::<D>()?)
    }
    /// The float64 array (any rank), moved: see [`DynArray::into_array`].
    pub fn into_f64(self) -> Result<ArrayD<f64>> {
        self.into_array()
    }
    /// The float32 array (any rank), moved: see [`DynArray::into_array`].
    pub fn into_f32(self) -> Result<ArrayD<f32>> {
        self.into_array()
    }
    /// The int64 array (any rank), moved: see [`DynArray::into_array`].
    pub fn into_i64(self) -> Result<ArrayD<i64>> {
        self.into_array()
    }
    /// The int32 array (any rank), moved: see [`DynArray::into_array`].
    pub fn into_i32(self) -> Result<ArrayD<i32>> {
        self.into_array()
    }
    /// The bool array (any rank), moved: see [`DynArray::into_array`].
    pub fn into_bool(self) -> Result<ArrayD<bool>> {
        self.into_array()
    }

    /// The value of a 0-d array (a full reduction's result) of dtype `T`:
    /// `s.compute(&x.sum())?.scalar::<f64>()?`. Errors: [`Error::DtypeMismatch`] for another
    /// dtype (`x.sum()` of integers is int64), [`Error::Rank`] for an array that is not 0-d.
    pub fn scalar<T: Element>(&self) -> Result<T> {
        let a = self.as_array::<T>()?;
        if a.ndim() != 0 {
            return Err(Error::Rank {
                expected: 0,
                shape: a.shape().to_vec(),
            });
        }
        a.iter().next().copied().ok_or_else(|| Error::Rank {
            expected: 0,
            shape: a.shape().to_vec(),
        })
    }

    /// The single element of a 0-d (or one-element) array as f64, for printing and tests.
    pub fn scalar_f64(&self) -> Option<f64> {
        if self.len() != 1 {
            return None;
        }
        Some(match self {
            DynArray::Bool(a) => *a.iter().next()? as u8 as f64,
            DynArray::I32(a) => *a.iter().next()? as f64,
            DynArray::I64(a) => *a.iter().next()? as f64,
            DynArray::I8(a) => *a.iter().next()? as f64,
            DynArray::I16(a) => *a.iter().next()? as f64,
            DynArray::U8(a) => *a.iter().next()? as f64,
            DynArray::U16(a) => *a.iter().next()? as f64,
            DynArray::U32(a) => *a.iter().next()? as f64,
            DynArray::U64(a) => *a.iter().next()? as f64,
            DynArray::F16(a) => crate::dtype::f16_to_f32(*a.iter().next()?) as f64,
            DynArray::F32(a) => *a.iter().next()? as f64,
            DynArray::F64(a) => *a.iter().next()?,
        })
    }
}

impl<T: Element, D: Dimension> From<Array<T, D>> for DynArray {
    fn from(a: Array<T, D>) -> Self {
        T::wrap(a.into_dyn().into_shared())
    }
}
impl<T: Element, D: Dimension> From<ArcArray<T, D>> for DynArray {
    fn from(a: ArcArray<T, D>) -> Self {
        T::wrap(a.into_dyn())
    }
}
/// Views are copied (the expression may outlive the borrow); strides of an owned or shared
/// array are kept as they are.
impl<T: Element, D: Dimension> From<ArrayView<'_, T, D>> for DynArray {
    fn from(a: ArrayView<'_, T, D>) -> Self {
        T::wrap_view(a.into_dyn()).to_dyn_array()
    }
}

/// A borrowed array argument of any dtype (any strides), for compiled functions.
#[derive(Clone)]
pub enum ArgView<'a> {
    Bool(ArrayViewD<'a, bool>),
    I32(ArrayViewD<'a, i32>),
    I64(ArrayViewD<'a, i64>),
    I8(ArrayViewD<'a, i8>),
    I16(ArrayViewD<'a, i16>),
    U8(ArrayViewD<'a, u8>),
    U16(ArrayViewD<'a, u16>),
    U32(ArrayViewD<'a, u32>),
    U64(ArrayViewD<'a, u64>),
    F16(ArrayViewD<'a, half::f16>),
    F32(ArrayViewD<'a, f32>),
    F64(ArrayViewD<'a, f64>),
}

impl<'a> ArgView<'a> {
    pub fn dtype(&self) -> DType {
        match self {
            ArgView::Bool(_) => DType::Bool,
            ArgView::I32(_) => DType::I32,
            ArgView::I64(_) => DType::I64,
            ArgView::I8(_) => DType::I8,
            ArgView::I16(_) => DType::I16,
            ArgView::U8(_) => DType::U8,
            ArgView::U16(_) => DType::U16,
            ArgView::U32(_) => DType::U32,
            ArgView::U64(_) => DType::U64,
            ArgView::F16(_) => DType::F16,
            ArgView::F32(_) => DType::F32,
            ArgView::F64(_) => DType::F64,
        }
    }
    pub fn shape(&self) -> &[usize] {
        match self {
            ArgView::Bool(a) => a.shape(),
            ArgView::I32(a) => a.shape(),
            ArgView::I64(a) => a.shape(),
            ArgView::I8(a) => a.shape(),
            ArgView::I16(a) => a.shape(),
            ArgView::U8(a) => a.shape(),
            ArgView::U16(a) => a.shape(),
            ArgView::U32(a) => a.shape(),
            ArgView::U64(a) => a.shape(),
            ArgView::F16(a) => a.shape(),
            ArgView::F32(a) => a.shape(),
            ArgView::F64(a) => a.shape(),
        }
    }
    /// Strides in elements.
    pub fn strides(&self) -> &[isize] {
        match self {
            ArgView::Bool(a) => a.strides(),
            ArgView::I32(a) => a.strides(),
            ArgView::I64(a) => a.strides(),
            ArgView::I8(a) => a.strides(),
            ArgView::I16(a) => a.strides(),
            ArgView::U8(a) => a.strides(),
            ArgView::U16(a) => a.strides(),
            ArgView::U32(a) => a.strides(),
            ArgView::U64(a) => a.strides(),
            ArgView::F16(a) => a.strides(),
            ArgView::F32(a) => a.strides(),
            ArgView::F64(a) => a.strides(),
        }
    }
    /// Pointer to the element at index `[0, 0, ...]`.
    pub fn as_ptr(&self) -> *const u8 {
        match self {
            ArgView::Bool(a) => a.as_ptr() as *const u8,
            ArgView::I32(a) => a.as_ptr() as *const u8,
            ArgView::I64(a) => a.as_ptr() as *const u8,
            ArgView::I8(a) => a.as_ptr() as *const u8,
            ArgView::I16(a) => a.as_ptr() as *const u8,
            ArgView::U8(a) => a.as_ptr(),
            ArgView::U16(a) => a.as_ptr() as *const u8,
            ArgView::U32(a) => a.as_ptr() as *const u8,
            ArgView::U64(a) => a.as_ptr() as *const u8,
            ArgView::F16(a) => a.as_ptr() as *const u8,
            ArgView::F32(a) => a.as_ptr() as *const u8,
            ArgView::F64(a) => a.as_ptr() as *const u8,
        }
    }
    pub fn len(&self) -> usize {
        self.shape().iter().product()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Whether the elements lie in C order without gaps (size-1 axes' strides do not matter).
    pub fn is_standard_layout(&self) -> bool {
        match self {
            ArgView::Bool(a) => a.is_standard_layout(),
            ArgView::I32(a) => a.is_standard_layout(),
            ArgView::I64(a) => a.is_standard_layout(),
            ArgView::I8(a) => a.is_standard_layout(),
            ArgView::I16(a) => a.is_standard_layout(),
            ArgView::U8(a) => a.is_standard_layout(),
            ArgView::U16(a) => a.is_standard_layout(),
            ArgView::U32(a) => a.is_standard_layout(),
            ArgView::U64(a) => a.is_standard_layout(),
            ArgView::F16(a) => a.is_standard_layout(),
            ArgView::F32(a) => a.is_standard_layout(),
            ArgView::F64(a) => a.is_standard_layout(),
        }
    }
    /// The same view with a lifetime shortened to this borrow (lets caller views and views of
    /// local temporaries live in one `Vec`).
    pub fn reborrow(&self) -> ArgView<'_> {
        match self {
            ArgView::Bool(a) => ArgView::Bool(a.view()),
            ArgView::I32(a) => ArgView::I32(a.view()),
            ArgView::I64(a) => ArgView::I64(a.view()),
            ArgView::I8(a) => ArgView::I8(a.view()),
            ArgView::I16(a) => ArgView::I16(a.view()),
            ArgView::U8(a) => ArgView::U8(a.view()),
            ArgView::U16(a) => ArgView::U16(a.view()),
            ArgView::U32(a) => ArgView::U32(a.view()),
            ArgView::U64(a) => ArgView::U64(a.view()),
            ArgView::F16(a) => ArgView::F16(a.view()),
            ArgView::F32(a) => ArgView::F32(a.view()),
            ArgView::F64(a) => ArgView::F64(a.view()),
        }
    }
    /// Copy into an owned (shared) C-contiguous array, or `TooLarge` when the memory cannot be
    /// had (a broadcast view of 2^40 elements is 8 TiB once copied).
    pub fn try_to_dyn_array(&self) -> Result<DynArray> {
        fn copy<T: Element>(a: &ArrayViewD<'_, T>) -> Result<DynArray> {
            let n = a.len();
            let mut v: Vec<T> = Vec::new();
            v.try_reserve_exact(n).map_err(|_| Error::TooLarge {
                shape: Some(a.shape().to_vec()),
                reason: format!(
                    "of {}: copying it ({} bytes) needs more memory than there is",
                    T::DTYPE,
                    (n as u128) * std::mem::size_of::<T>() as u128
                ),
            })?;
            v.extend(a.iter().copied());
            let arr = ArrayD::from_shape_vec(IxDyn(a.shape()), v).map_err(|e| Error::Argument {
                message: format!("copying a view: {e}"),
            })?;
            Ok(T::wrap(arr.into_shared()))
        }
        match self {
            ArgView::Bool(a) => copy(a),
            ArgView::I32(a) => copy(a),
            ArgView::I64(a) => copy(a),
            ArgView::I8(a) => copy(a),
            ArgView::I16(a) => copy(a),
            ArgView::U8(a) => copy(a),
            ArgView::U16(a) => copy(a),
            ArgView::U32(a) => copy(a),
            ArgView::U64(a) => copy(a),
            ArgView::F16(a) => copy(a),
            ArgView::F32(a) => copy(a),
            ArgView::F64(a) => copy(a),
        }
    }

    /// Copy into an owned (shared) array.
    pub fn to_dyn_array(&self) -> DynArray {
        // Element by element in logical order: ndarray's `to_owned` asserts on empty views
        // with non-zero strides.
        fn copy<T: Element>(a: &ArrayViewD<'_, T>) -> DynArray {
            let v: Vec<T> = a.iter().copied().collect();
            T::wrap(
                ArrayD::from_shape_vec(IxDyn(a.shape()), v)
                    .expect("the logical elements fill the shape")
                    .into_shared(),
            )
        }
        match self {
            ArgView::Bool(a) => copy(a),
            ArgView::I32(a) => copy(a),
            ArgView::I64(a) => copy(a),
            ArgView::I8(a) => copy(a),
            ArgView::I16(a) => copy(a),
            ArgView::U8(a) => copy(a),
            ArgView::U16(a) => copy(a),
            ArgView::U32(a) => copy(a),
            ArgView::U64(a) => copy(a),
            ArgView::F16(a) => copy(a),
            ArgView::F32(a) => copy(a),
            ArgView::F64(a) => copy(a),
        }
    }
}

impl<'a, T: Element, D: Dimension> From<ArrayView<'a, T, D>> for ArgView<'a> {
    fn from(v: ArrayView<'a, T, D>) -> Self {
        T::wrap_view(v.into_dyn())
    }
}
impl<'a, T: Element, D: Dimension> From<&'a Array<T, D>> for ArgView<'a> {
    fn from(a: &'a Array<T, D>) -> Self {
        T::wrap_view(a.view().into_dyn())
    }
}
impl<'a, T: Element, D: Dimension> From<&'a ArcArray<T, D>> for ArgView<'a> {
    fn from(a: &'a ArcArray<T, D>) -> Self {
        T::wrap_view(a.view().into_dyn())
    }
}
impl<'a, T: Element, D: Dimension> From<&'a ArrayView<'a, T, D>> for ArgView<'a> {
    fn from(v: &'a ArrayView<'a, T, D>) -> Self {
        T::wrap_view(v.view().into_dyn())
    }
}
impl<'a> From<&'a DynArray> for ArgView<'a> {
    fn from(a: &'a DynArray) -> Self {
        a.view()
    }
}

/// A borrowed, writable array of any dtype (any strides): the caller-owned output of
/// [`crate::Compiled::call_into`] and [`crate::Session::compute_into`].
pub enum ArgViewMut<'a> {
    Bool(ArrayViewMutD<'a, bool>),
    I32(ArrayViewMutD<'a, i32>),
    I64(ArrayViewMutD<'a, i64>),
    I8(ArrayViewMutD<'a, i8>),
    I16(ArrayViewMutD<'a, i16>),
    U8(ArrayViewMutD<'a, u8>),
    U16(ArrayViewMutD<'a, u16>),
    U32(ArrayViewMutD<'a, u32>),
    U64(ArrayViewMutD<'a, u64>),
    F16(ArrayViewMutD<'a, half::f16>),
    F32(ArrayViewMutD<'a, f32>),
    F64(ArrayViewMutD<'a, f64>),
}

/// Apply `$body` to the typed view inside an [`ArgViewMut`].
macro_rules! dispatch_mut {
    ($value:expr, $a:ident => $body:expr) => {
        match $value {
            ArgViewMut::Bool($a) => $body,
            ArgViewMut::I32($a) => $body,
            ArgViewMut::I64($a) => $body,
            ArgViewMut::I8($a) => $body,
            ArgViewMut::I16($a) => $body,
            ArgViewMut::U8($a) => $body,
            ArgViewMut::U16($a) => $body,
            ArgViewMut::U32($a) => $body,
            ArgViewMut::U64($a) => $body,
            ArgViewMut::F16($a) => $body,
            ArgViewMut::F32($a) => $body,
            ArgViewMut::F64($a) => $body,
        }
    };
}

impl<'a> ArgViewMut<'a> {
    pub fn dtype(&self) -> DType {
        match self {
            ArgViewMut::Bool(_) => DType::Bool,
            ArgViewMut::I32(_) => DType::I32,
            ArgViewMut::I64(_) => DType::I64,
            ArgViewMut::I8(_) => DType::I8,
            ArgViewMut::I16(_) => DType::I16,
            ArgViewMut::U8(_) => DType::U8,
            ArgViewMut::U16(_) => DType::U16,
            ArgViewMut::U32(_) => DType::U32,
            ArgViewMut::U64(_) => DType::U64,
            ArgViewMut::F16(_) => DType::F16,
            ArgViewMut::F32(_) => DType::F32,
            ArgViewMut::F64(_) => DType::F64,
        }
    }
    pub fn shape(&self) -> &[usize] {
        dispatch_mut!(self, a => a.shape())
    }
    /// Strides in elements (may be negative; zero only along axes of length 0 or 1).
    pub fn strides(&self) -> &[isize] {
        dispatch_mut!(self, a => a.strides())
    }
    pub fn len(&self) -> usize {
        self.shape().iter().product()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Whether the elements lie in C order without gaps.
    pub fn is_standard_layout(&self) -> bool {
        dispatch_mut!(self, a => a.is_standard_layout())
    }
    /// Pointer to the element at index `[0, 0, ...]`.
    // One arm is the uint8 view, whose pointer already is `*mut u8`.
    #[allow(clippy::unnecessary_cast)]
    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        dispatch_mut!(self, a => a.as_mut_ptr() as *mut u8)
    }
    /// The same view with a lifetime shortened to this borrow.
    pub fn reborrow(&mut self) -> ArgViewMut<'_> {
        dispatch_mut!(self, a => Element::wrap_view_mut(a.view_mut()))
    }
    /// A read-only view of the same elements.
    pub fn view(&self) -> ArgView<'_> {
        dispatch_mut!(self, a => Element::wrap_view(a.view()))
    }
    /// The byte range `[lo, hi)` the view's elements occupy (empty for an empty view).
    pub fn byte_range(&self) -> (usize, usize) {
        byte_range(
            self.view().as_ptr(),
            self.shape(),
            self.strides(),
            self.dtype().size(),
        )
    }
    /// Copy `src` (same shape; dtype checked) into the view, element by element.
    pub fn assign(&mut self, src: &ArgView<'_>) -> Result<()> {
        if src.shape() != self.shape() {
            return Err(Error::ShapeMismatch {
                lhs: self.shape().to_vec(),
                rhs: src.shape().to_vec(),
            });
        }
        let found = self.dtype();
        let mismatch = |expected| Error::DtypeMismatch {
            name: "out".into(),
            expected,
            found,
        };
        match (self, src) {
            (ArgViewMut::Bool(d), ArgView::Bool(s)) => d.assign(s),
            (ArgViewMut::I32(d), ArgView::I32(s)) => d.assign(s),
            (ArgViewMut::I64(d), ArgView::I64(s)) => d.assign(s),
            (ArgViewMut::I8(d), ArgView::I8(s)) => d.assign(s),
            (ArgViewMut::I16(d), ArgView::I16(s)) => d.assign(s),
            (ArgViewMut::U8(d), ArgView::U8(s)) => d.assign(s),
            (ArgViewMut::U16(d), ArgView::U16(s)) => d.assign(s),
            (ArgViewMut::U32(d), ArgView::U32(s)) => d.assign(s),
            (ArgViewMut::U64(d), ArgView::U64(s)) => d.assign(s),
            (ArgViewMut::F16(d), ArgView::F16(s)) => d.assign(s),
            (ArgViewMut::F32(d), ArgView::F32(s)) => d.assign(s),
            (ArgViewMut::F64(d), ArgView::F64(s)) => d.assign(s),
            (_, s) => return Err(mismatch(s.dtype())),
        }
        Ok(())
    }
}

impl DynArray {
    /// Borrow for writing (an output of [`crate::Compiled::call_into`]). The data is shared
    /// (`ArcArray`): a buffer held elsewhere too is copied first (copy on write).
    pub fn view_mut(&mut self) -> ArgViewMut<'_> {
        match self {
            DynArray::Bool(a) => ArgViewMut::Bool(a.view_mut()),
            DynArray::I32(a) => ArgViewMut::I32(a.view_mut()),
            DynArray::I64(a) => ArgViewMut::I64(a.view_mut()),
            DynArray::I8(a) => ArgViewMut::I8(a.view_mut()),
            DynArray::I16(a) => ArgViewMut::I16(a.view_mut()),
            DynArray::U8(a) => ArgViewMut::U8(a.view_mut()),
            DynArray::U16(a) => ArgViewMut::U16(a.view_mut()),
            DynArray::U32(a) => ArgViewMut::U32(a.view_mut()),
            DynArray::U64(a) => ArgViewMut::U64(a.view_mut()),
            DynArray::F16(a) => ArgViewMut::F16(a.view_mut()),
            DynArray::F32(a) => ArgViewMut::F32(a.view_mut()),
            DynArray::F64(a) => ArgViewMut::F64(a.view_mut()),
        }
    }
}

impl<'a, T: Element, D: Dimension> From<ArrayViewMut<'a, T, D>> for ArgViewMut<'a> {
    fn from(v: ArrayViewMut<'a, T, D>) -> Self {
        T::wrap_view_mut(v.into_dyn())
    }
}
impl<'a, T: Element, D: Dimension> From<&'a mut Array<T, D>> for ArgViewMut<'a> {
    fn from(a: &'a mut Array<T, D>) -> Self {
        T::wrap_view_mut(a.view_mut().into_dyn())
    }
}

/// The byte range `[lo, hi)` that the elements of an array at `ptr` (element `[0, 0, ...]`)
/// with `shape` and element `strides` occupy; `(0, 0)` when it has no elements.
pub fn byte_range(
    ptr: *const u8,
    shape: &[usize],
    strides: &[isize],
    size: usize,
) -> (usize, usize) {
    if shape.contains(&0) {
        return (0, 0);
    }
    let (mut lo, mut hi) = (0isize, 0isize);
    for (&n, &s) in shape.iter().zip(strides) {
        let span = (n as isize - 1) * s * size as isize;
        if span < 0 {
            lo += span;
        } else {
            hi += span;
        }
    }
    let p = ptr as isize;
    ((p + lo) as usize, (p + hi) as usize + size)
}

/// NumPy broadcasting of two shapes.
pub fn broadcast_shapes(a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
    let n = a.len().max(b.len());
    let mut out = vec![0; n];
    for i in 0..n {
        let da = if i + a.len() >= n {
            a[i + a.len() - n]
        } else {
            1
        };
        let db = if i + b.len() >= n {
            b[i + b.len() - n]
        } else {
            1
        };
        out[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => {
                return Err(Error::ShapeMismatch {
                    lhs: a.to_vec(),
                    rhs: b.to_vec(),
                })
            }
        };
    }
    Ok(out)
}

/// Strides (in elements) that read an array of `shape`/`strides` as if broadcast to
/// `out_shape`: leading new dimensions and stretched size-1 dimensions get stride 0.
/// The caller guarantees that `shape` broadcasts to `out_shape`.
///
/// Up to four dimensions are held inline (no allocation: the CPU backend computes these on
/// every call).
pub fn broadcast_strides(
    shape: &[usize],
    strides: &[isize],
    out_shape: &[usize],
) -> smallvec::SmallVec<[isize; 4]> {
    debug_assert!(shape.len() <= out_shape.len());
    let lead = out_shape.len() - shape.len();
    let mut s = smallvec::smallvec![0isize; out_shape.len()];
    for i in 0..shape.len() {
        s[lead + i] = if shape[i] == 1 && out_shape[lead + i] != 1 {
            0
        } else {
            strides[i]
        };
    }
    s
}

/// Number of elements of a shape, checked against the address space.
pub fn checked_len(shape: &[usize], elem_size: usize) -> Result<usize> {
    let mut n: usize = 1;
    for &d in shape {
        n = n.checked_mul(d).ok_or_else(|| Error::TooLarge {
            shape: Some(shape.to_vec()),
            reason: "overflows the address space".into(),
        })?;
    }
    n.checked_mul(elem_size)
        .filter(|b| *b <= isize::MAX as usize)
        .ok_or_else(|| Error::TooLarge {
            shape: Some(shape.to_vec()),
            reason: "overflows the address space".into(),
        })?;
    Ok(n)
}

fn fmt_elem(a: &DynArray, idx: &[usize]) -> String {
    let ix = IxDyn(idx);
    match a {
        DynArray::Bool(x) => (if x[ix] { "True" } else { "False" }).to_string(),
        DynArray::I32(x) => x[ix].to_string(),
        DynArray::I64(x) => x[ix].to_string(),
        DynArray::I8(x) => x[ix].to_string(),
        DynArray::I16(x) => x[ix].to_string(),
        DynArray::U8(x) => x[ix].to_string(),
        DynArray::U16(x) => x[ix].to_string(),
        DynArray::U32(x) => x[ix].to_string(),
        DynArray::U64(x) => x[ix].to_string(),
        DynArray::F16(x) => fmt_array_float(crate::dtype::f16_to_f32(x[ix]) as f64),
        DynArray::F32(x) => fmt_array_float(x[ix] as f64),
        DynArray::F64(x) => fmt_array_float(x[ix]),
    }
}

/// Inside arrays NumPy prints `1.` rather than `1.0`.
fn fmt_array_float(x: f64) -> String {
    let s = fmt_float(x);
    match s.strip_suffix(".0") {
        Some(t) if !s.contains('e') => format!("{t}."),
        _ => s,
    }
}

/// NumPy-like preview: at most `edge` items at each end of each axis, `...` between.
pub fn preview(a: &DynArray, edge: usize) -> String {
    fn rec(a: &DynArray, idx: &mut Vec<usize>, edge: usize, out: &mut String, depth: usize) {
        let shape = a.shape();
        if idx.len() == shape.len() {
            out.push_str(&fmt_elem(a, idx));
            return;
        }
        let n = shape[idx.len()];
        out.push('[');
        let items: Vec<Option<usize>> = if n > 2 * edge {
            (0..edge)
                .map(Some)
                .chain([None])
                .chain((n - edge..n).map(Some))
                .collect()
        } else {
            (0..n).map(Some).collect()
        };
        let last_axis = idx.len() + 1 == shape.len();
        for (k, item) in items.iter().enumerate() {
            if k > 0 {
                if last_axis {
                    out.push_str(", ");
                } else {
                    out.push_str(",\n");
                    out.push_str(&" ".repeat(depth + 1));
                }
            }
            match item {
                Some(i) => {
                    idx.push(*i);
                    rec(a, idx, edge, out, depth + 1);
                    idx.pop();
                }
                None => out.push_str("..."),
            }
        }
        out.push(']');
    }
    let mut out = String::new();
    rec(a, &mut Vec::new(), edge, &mut out, 6);
    out
}

impl fmt::Display for DynArray {
    /// `array([1., 2., 3.])`, with `dtype=` for dtypes NumPy would name.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let body = preview(self, 3);
        let dt = match self.dtype() {
            DType::F64 | DType::I64 | DType::Bool => String::new(),
            d => format!(", dtype={d}"),
        };
        write!(f, "array({body}{dt})")
    }
}

impl fmt::Debug for DynArray {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self} shape={:?}", self.shape())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::arr1;

    #[test]
    fn broadcasting() {
        assert_eq!(broadcast_shapes(&[3, 1], &[4]).unwrap(), vec![3, 4]);
        assert_eq!(broadcast_shapes(&[], &[2, 2]).unwrap(), vec![2, 2]);
        assert_eq!(broadcast_shapes(&[0], &[1]).unwrap(), vec![0]);
        assert!(matches!(
            broadcast_shapes(&[3], &[4]),
            Err(Error::ShapeMismatch { .. })
        ));
        assert_eq!(
            broadcast_strides(&[3, 1], &[1, 1], &[2, 3, 4]).as_slice(),
            &[0, 1, 0]
        );
    }

    #[test]
    fn numpy_like_display() {
        let a: DynArray = arr1(&[1.0, 2.5, f64::NAN]).into();
        assert_eq!(a.to_string(), "array([1., 2.5, nan])");
        let b: DynArray = arr1(&[1i32, 2]).into();
        assert_eq!(b.to_string(), "array([1, 2], dtype=int32)");
        let c: DynArray = Array::from_iter((0..10).map(|x| x as f64)).into();
        assert_eq!(c.to_string(), "array([0., 1., 2., ..., 7., 8., 9.])");
        assert_eq!(fmt_float(1e20), "1e+20");
        assert_eq!(fmt_float(1.5e-7), "1.5e-07");
    }
}
