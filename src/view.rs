//! Shape operations (NumPy's views): `transpose`, `reshape`, `expand_dims`, `squeeze`,
//! `broadcast_to` and basic slicing with steps.
//!
//! A [`ViewOp`] is what the user wrote (axes may be negative, slice bounds may be missing); it is
//! resolved against the operand's shape into a [`View`] (when the expression is built, and again
//! at plan time, since a compiled function may see other lengths). A resolved view is either a
//! *strided map* — each result axis reads one operand axis from a first index with a step
//! (negative: backwards; 0: broadcast), or is a new length-1 / broadcast axis — or a C-order
//! *reshape*. Neither copies: [`View::apply`] turns a borrowed array into another borrowed array
//! with other strides and offset, so a kernel reads a transposed or sliced operand through its
//! strides (the backends run inputs of any strides). A reshape needs C-contiguous data: where the
//! operand is not, the executor copies it first, as NumPy does.
use crate::array::{ArgView, Element};
use crate::error::{Error, Result};
use ndarray::{ArrayViewD, IxDyn, ShapeBuilder};

/// One axis of a Python slice, `start:stop:step` (missing bounds are `None`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SliceSpec {
    pub start: Option<isize>,
    pub stop: Option<isize>,
    pub step: isize,
}

impl SliceSpec {
    /// `start:stop:step` with every part given.
    pub fn new(start: Option<isize>, stop: Option<isize>, step: isize) -> SliceSpec {
        SliceSpec { start, stop, step }
    }
    /// `:` — the whole axis.
    pub fn all() -> SliceSpec {
        SliceSpec::new(None, None, 1)
    }
    /// `::step`.
    pub fn step(step: isize) -> SliceSpec {
        SliceSpec::new(None, None, step)
    }
    /// `start:stop`.
    pub fn range(start: isize, stop: isize) -> SliceSpec {
        SliceSpec::new(Some(start), Some(stop), 1)
    }

    /// Python's `slice.indices(len)`: the first index, the step and the number of elements.
    pub fn indices(&self, len: usize) -> Result<(usize, isize, usize)> {
        let n = len as isize;
        let step = self.step;
        if step == 0 {
            return Err(Error::View {
                op: "slice".into(),
                shape: vec![len],
                message: "slice step cannot be zero".into(),
            });
        }
        let norm = |v: isize| if v < 0 { v + n } else { v };
        let (start, stop, count) = if step > 0 {
            let start = self.start.map_or(0, |s| norm(s).clamp(0, n));
            let stop = self.stop.map_or(n, |s| norm(s).clamp(0, n));
            (
                start,
                stop,
                (stop - start).max(0).div_euclid(step)
                    + ((stop - start).max(0).rem_euclid(step) != 0) as isize,
            )
        } else {
            let start = self.start.map_or(n - 1, |s| norm(s).clamp(-1, n - 1));
            let stop = self.stop.map_or(-1, |s| norm(s).clamp(-1, n - 1));
            (
                start,
                stop,
                (start - stop).max(0).div_euclid(-step)
                    + ((start - stop).max(0).rem_euclid(-step) != 0) as isize,
            )
        };
        let _ = stop;
        Ok(if count == 0 {
            (0, step, 0)
        } else {
            (start as usize, step, count as usize)
        })
    }
}

/// A shape operation as written (NumPy's spelling and rules).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ViewOp {
    /// `transpose(axes)`: a permutation of the axes; `None` reverses them (`x.T`).
    Permute(Option<Vec<isize>>),
    /// `reshape(shape)` in C order; one entry may be -1 (inferred).
    Reshape(Vec<isize>),
    /// `expand_dims(axis)`: new length-1 axes at these positions of the result.
    ExpandDims(Vec<isize>),
    /// `squeeze(axis)`: drop these length-1 axes; `None`: every length-1 axis.
    Squeeze(Option<Vec<isize>>),
    /// `broadcast_to(shape)`, NumPy's broadcasting rules (the operand's axes align right).
    BroadcastTo(Vec<usize>),
    /// Basic slicing `x[a:b:c, ...]`: one entry per leading axis, the rest whole.
    Slice(Vec<SliceSpec>),
}

/// One axis of a strided view: elements `first + k * step` (`k < len`) of operand axis `src`,
/// or a new axis (`src: None`, every element the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AxisMap {
    pub src: Option<usize>,
    pub first: usize,
    pub step: isize,
    pub len: usize,
}

/// A resolved shape operation (for one operand shape).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum View {
    /// Each result axis in order; operand axes not named have length 1 (squeezed).
    Strided(Vec<AxisMap>),
    /// The same elements in C order with this shape.
    Reshape(Vec<usize>),
}

fn normalize(axis: isize, ndim: usize) -> Result<usize> {
    let d = if axis < 0 { axis + ndim as isize } else { axis };
    if d < 0 || d >= ndim as isize {
        return Err(Error::AxisOutOfBounds { axis, ndim });
    }
    Ok(d as usize)
}

fn whole(src: usize, len: usize) -> AxisMap {
    AxisMap {
        src: Some(src),
        first: 0,
        step: 1,
        len,
    }
}

impl ViewOp {
    /// The operation's name, as NumPy spells the function.
    pub fn name(&self) -> &'static str {
        match self {
            ViewOp::Permute(_) => "transpose",
            ViewOp::Reshape(_) => "reshape",
            ViewOp::ExpandDims(_) => "expand_dims",
            ViewOp::Squeeze(_) => "squeeze",
            ViewOp::BroadcastTo(_) => "broadcast_to",
            ViewOp::Slice(_) => "slice",
        }
    }

    fn error(&self, shape: &[usize], message: String) -> Error {
        Error::View {
            op: self.name().into(),
            shape: shape.to_vec(),
            message,
        }
    }

    /// Resolve against an operand of `shape`: the view and the result's shape, or NumPy's
    /// error for these arguments.
    pub fn resolve(&self, shape: &[usize]) -> Result<(View, Vec<usize>)> {
        let n = shape.len();
        let maps: Vec<AxisMap> = match self {
            ViewOp::Permute(axes) => {
                let perm: Vec<usize> = match axes {
                    None => (0..n).rev().collect(),
                    Some(a) => {
                        if a.len() != n {
                            return Err(self.error(shape, "axes don't match array".into()));
                        }
                        let mut out = Vec::with_capacity(n);
                        for &x in a {
                            let d = normalize(x, n)?;
                            if out.contains(&d) {
                                return Err(self.error(shape, "repeated axis in transpose".into()));
                            }
                            out.push(d);
                        }
                        out
                    }
                };
                perm.into_iter().map(|d| whole(d, shape[d])).collect()
            }
            ViewOp::Reshape(dims) => {
                let size: usize = shape.iter().product();
                let text = || format!("{dims:?}").replace('[', "(").replace(']', ")");
                let mut unknown = None;
                let mut known = 1usize;
                for (i, &d) in dims.iter().enumerate() {
                    match d {
                        -1 if unknown.is_some() => {
                            return Err(
                                self.error(shape, "can only specify one unknown dimension".into())
                            )
                        }
                        -1 => unknown = Some(i),
                        d if d < 0 => {
                            return Err(self.error(shape, "negative dimensions not allowed".into()))
                        }
                        d => known = known.saturating_mul(d as usize),
                    }
                }
                let bad = || {
                    self.error(
                        shape,
                        format!("cannot reshape array of size {size} into shape {}", text()),
                    )
                };
                let mut out: Vec<usize> = dims.iter().map(|&d| d.max(0) as usize).collect();
                if let Some(i) = unknown {
                    if known == 0 || !size.is_multiple_of(known) {
                        return Err(bad());
                    }
                    out[i] = size / known;
                } else if known != size {
                    return Err(bad());
                }
                return Ok((View::Reshape(out.clone()), out));
            }
            ViewOp::ExpandDims(axes) => {
                let m = n + axes.len();
                let mut new = Vec::with_capacity(axes.len());
                for &a in axes {
                    let d = normalize(a, m)?;
                    if new.contains(&d) {
                        return Err(Error::DuplicateAxis { axis: d });
                    }
                    new.push(d);
                }
                let mut src = 0..n;
                (0..m)
                    .map(|d| {
                        if new.contains(&d) {
                            AxisMap {
                                src: None,
                                first: 0,
                                step: 0,
                                len: 1,
                            }
                        } else {
                            let s = src.next().expect("m - len(axes) operand axes");
                            whole(s, shape[s])
                        }
                    })
                    .collect()
            }
            ViewOp::Squeeze(axes) => {
                let drop: Vec<usize> = match axes {
                    None => (0..n).filter(|&d| shape[d] == 1).collect(),
                    Some(a) => {
                        let mut out = vec![];
                        for &x in a {
                            let d = normalize(x, n)?;
                            if out.contains(&d) {
                                return Err(Error::DuplicateAxis { axis: d });
                            }
                            if shape[d] != 1 {
                                return Err(self.error(
                                    shape,
                                    "cannot select an axis to squeeze out which has size not \
                                     equal to one"
                                        .into(),
                                ));
                            }
                            out.push(d);
                        }
                        out
                    }
                };
                (0..n)
                    .filter(|d| !drop.contains(d))
                    .map(|d| whole(d, shape[d]))
                    .collect()
            }
            ViewOp::BroadcastTo(target) => {
                let bad = || {
                    self.error(
                        shape,
                        format!(
                            "operands could not be broadcast together with remapped shapes \
                             [original->remapped]: {shape:?} and requested shape {target:?}"
                        ),
                    )
                };
                if target.len() < n {
                    return Err(bad());
                }
                let lead = target.len() - n;
                let mut out = Vec::with_capacity(target.len());
                for (d, &t) in target.iter().enumerate() {
                    out.push(if d < lead {
                        AxisMap {
                            src: None,
                            first: 0,
                            step: 0,
                            len: t,
                        }
                    } else {
                        let s = d - lead;
                        match shape[s] {
                            l if l == t => whole(s, t),
                            1 => AxisMap {
                                src: Some(s),
                                first: 0,
                                step: 0,
                                len: t,
                            },
                            _ => return Err(bad()),
                        }
                    });
                }
                out
            }
            ViewOp::Slice(specs) => {
                if specs.len() > n {
                    return Err(self.error(
                        shape,
                        format!(
                            "too many indices for array: array is {n}-dimensional, but {} were \
                             indexed",
                            specs.len()
                        ),
                    ));
                }
                let mut out = Vec::with_capacity(n);
                for d in 0..n {
                    out.push(match specs.get(d) {
                        None => whole(d, shape[d]),
                        Some(s) => {
                            let (first, step, len) = s.indices(shape[d]).map_err(|_| {
                                self.error(shape, "slice step cannot be zero".into())
                            })?;
                            AxisMap {
                                src: Some(d),
                                first,
                                step,
                                len,
                            }
                        }
                    });
                }
                out
            }
        };
        let out_shape = maps.iter().map(|m| m.len).collect();
        Ok((View::Strided(maps), out_shape))
    }
}

impl View {
    /// Whether reading through this view needs C-contiguous data (a reshape).
    pub fn needs_contiguous(&self) -> bool {
        matches!(self, View::Reshape(_))
    }

    /// The view of `a` (whose shape is the one this view was resolved for): another borrow of
    /// the same elements, never a copy. A reshape of data that is not C-contiguous is a
    /// [`Error::Layout`] (the caller copies first).
    pub fn apply<'a>(&self, a: ArgView<'a>) -> Result<ArgView<'a>> {
        fn typed<'a, T: Element>(v: &View, a: ArrayViewD<'a, T>) -> Result<ArgView<'a>> {
            match v {
                View::Reshape(shape) => {
                    if !a.is_standard_layout() {
                        return Err(Error::Layout {
                            message: "reshape of data that is not C-contiguous".into(),
                        });
                    }
                    Ok(T::wrap_view(a.into_shape_with_order(IxDyn(shape))?))
                }
                View::Strided(maps) => {
                    let (shape, strides) = (a.shape(), a.strides());
                    let mut offset = 0isize;
                    let empty = maps.iter().any(|m| m.len == 0) || a.is_empty();
                    let mut out_shape = Vec::with_capacity(maps.len());
                    let mut out_strides = Vec::with_capacity(maps.len());
                    for m in maps {
                        match m.src {
                            Some(s) => {
                                let ok = s < shape.len()
                                    && (m.len == 0
                                        || (m.first < shape[s]
                                            && (m.first as isize + (m.len as isize - 1) * m.step)
                                                .clamp(0, shape[s] as isize - 1)
                                                == m.first as isize
                                                    + (m.len as isize - 1) * m.step));
                                if !ok {
                                    return Err(Error::Layout {
                                        message: format!(
                                            "a view resolved for another shape than {shape:?}"
                                        ),
                                    });
                                }
                                if !empty {
                                    offset += m.first as isize * strides[s];
                                }
                                out_strides.push(m.step * strides[s]);
                            }
                            None => out_strides.push(0),
                        }
                        out_shape.push(m.len);
                    }
                    // Operand axes the view does not name must have length 1 (squeezed).
                    let named: Vec<usize> = maps.iter().filter_map(|m| m.src).collect();
                    if (0..shape.len()).any(|d| !named.contains(&d) && shape[d] != 1) {
                        return Err(Error::Layout {
                            message: format!("a view resolved for another shape than {shape:?}"),
                        });
                    }
                    // ndarray builds views from non-negative strides: start from the lowest
                    // address and flip the axes that run backwards afterwards.
                    let mut low = offset;
                    let mut flip = vec![];
                    let ustrides: Vec<usize> = out_strides
                        .iter()
                        .zip(&out_shape)
                        .enumerate()
                        .map(|(d, (&st, &len))| {
                            if st < 0 {
                                low += st * (len as isize - 1);
                                flip.push(d);
                            }
                            st.unsigned_abs()
                        })
                        .collect();
                    let ptr = if empty {
                        a.as_ptr()
                    } else {
                        // SAFETY: `low` is an element of `a`, in bounds: `first` and the last
                        // index `first + (len - 1) * step` of each named axis were checked
                        // against its length above, and the view is not empty.
                        unsafe { a.as_ptr().offset(low) }
                    };
                    // SAFETY: every index of the new view maps to `first + k * step` along each
                    // named axis of `a` (checked in bounds above, or reads nothing: an empty
                    // view), and to index 0 of each squeezed or new axis; so every element it
                    // reaches is an element of `a`, borrowed for the same lifetime `'a`.
                    let mut v = unsafe {
                        ArrayViewD::from_shape_ptr(IxDyn(&out_shape).strides(IxDyn(&ustrides)), ptr)
                    };
                    if !empty {
                        for d in flip {
                            v.invert_axis(ndarray::Axis(d));
                        }
                    }
                    Ok(T::wrap_view(v))
                }
            }
        }
        match a {
            ArgView::Bool(x) => typed(self, x),
            ArgView::I8(x) => typed(self, x),
            ArgView::I16(x) => typed(self, x),
            ArgView::I32(x) => typed(self, x),
            ArgView::I64(x) => typed(self, x),
            ArgView::U8(x) => typed(self, x),
            ArgView::U16(x) => typed(self, x),
            ArgView::U32(x) => typed(self, x),
            ArgView::U64(x) => typed(self, x),
            ArgView::F16(x) => typed(self, x),
            ArgView::F32(x) => typed(self, x),
            ArgView::F64(x) => typed(self, x),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array;

    fn slice(start: Option<isize>, stop: Option<isize>, step: isize, len: usize) -> Vec<usize> {
        let (first, step, n) = SliceSpec::new(start, stop, step).indices(len).unwrap();
        (0..n)
            .map(|k| (first as isize + k as isize * step) as usize)
            .collect()
    }

    #[test]
    fn slice_indices_are_pythons() {
        // Python: list(range(10))[a:b:c]
        assert_eq!(slice(None, None, 2, 10), vec![0, 2, 4, 6, 8]);
        assert_eq!(slice(None, None, -1, 4), vec![3, 2, 1, 0]);
        assert_eq!(slice(None, None, -3, 10), vec![9, 6, 3, 0]);
        assert_eq!(slice(Some(-2), None, 1, 5), vec![3, 4]);
        assert_eq!(slice(Some(8), Some(2), -2, 10), vec![8, 6, 4]);
        assert_eq!(slice(Some(100), Some(-100), -1, 3), vec![2, 1, 0]);
        assert_eq!(slice(Some(5), Some(1), 1, 10), Vec::<usize>::new());
        assert_eq!(slice(None, None, 1, 0), Vec::<usize>::new());
        assert_eq!(slice(None, None, -1, 0), Vec::<usize>::new());
        assert!(SliceSpec::step(0).indices(3).is_err());
    }

    #[test]
    fn strided_views_borrow_the_right_elements() {
        let a = Array::from_shape_vec((3, 4), (0..12).map(|v| v as f64).collect()).unwrap();
        let v = ArgView::from(&a);
        let (t, s) = ViewOp::Permute(None).resolve(&[3, 4]).unwrap();
        assert_eq!(s, vec![4, 3]);
        let tv = t.apply(v.clone()).unwrap();
        let got = tv.try_to_dyn_array().unwrap();
        assert_eq!(got, DynArrayF64(a.t().to_owned()));
        let (sl, _) = ViewOp::Slice(vec![SliceSpec::step(-1), SliceSpec::new(Some(1), None, 2)])
            .resolve(&[3, 4])
            .unwrap();
        let got = sl.apply(v).unwrap().try_to_dyn_array().unwrap();
        let want = a.slice(ndarray::s![..;-1, 1..;2]).to_owned();
        assert_eq!(got, DynArrayF64(want));
    }

    #[allow(non_snake_case)]
    fn DynArrayF64(a: ndarray::Array2<f64>) -> crate::array::DynArray {
        a.into_dyn().into()
    }
}
