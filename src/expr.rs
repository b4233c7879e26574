//! Lazy expressions: what users build. Nothing computes until a [`crate::Session`] is asked to.
//!
//! An [`Expr`] is an immutable, shared tree node. Its dtype and shape are inferred as it is built
//! (NumPy broadcasting, NEP 50 promotion), so mistakes surface early; because Rust operators
//! cannot return `Result`, an invalid node carries its error and every computation on it returns
//! that error. Operations on weak literals only (`2.0 * PI`) are folded at once, with Python
//! number semantics, exactly as NumPy sees them.
//!
//! A tree may be any depth: dropping, printing (`Display`, `Debug`) and the walks here are
//! iterative (see `Drop for Node`); the planner refuses trees deeper than
//! [`crate::opt::lower::MAX_DEPTH`] with [`Error::TooDeep`].
//!
//! The optimizer turns an `Expr` into a hash-consed graph (see [`crate::opt`]); backends never
//! see `Expr`.
use crate::array::{broadcast_shapes, preview, DynArray};
use crate::dtype::{check_weak_fits, promote, promote_weak, DType, Scalar};
use crate::error::{Error, Result};
use crate::ops::{BinaryOp, ReduceOp, Reduction, UnaryOp};
use crate::semantics;
use crate::view::{SliceSpec, ViewOp};
use std::fmt;
use std::sync::Arc;

/// Dtype and shape of an expression; `weak` holds the value of a weak literal.
#[derive(Debug, Clone, PartialEq)]
pub struct Meta {
    pub dtype: DType,
    pub shape: Vec<usize>,
    pub weak: Option<Scalar>,
}

/// The kinds of expression node.
#[derive(Clone)]
pub enum ExprKind {
    /// A named placeholder, bound to data at compute or call time.
    Symbol(String),
    /// Bound data (Blaze's `Data`), optionally named.
    Data {
        name: Option<String>,
        array: DynArray,
    },
    /// A weak scalar (a Rust number, or a literal in a string expression).
    Literal(Scalar),
    Unary(UnaryOp, Expr),
    Binary(BinaryOp, Expr, Expr),
    /// `where(cond, a, b)`.
    Where(Expr, Expr, Expr),
    /// `astype(dtype)`.
    Cast(DType, Expr),
    /// A reduction over some axes or all of them.
    Reduce(Reduction, Expr, ReduceAxes),
    /// A shape operation (`transpose`, `reshape`, slicing, ...): the same elements seen with
    /// another shape, read through strides (never copied unless a reshape needs it).
    View(ViewOp, Expr),
}

/// Which axes a reduction combines, and whether they stay as length-1 axes (NumPy's `axis` and
/// `keepdims`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct ReduceAxes {
    /// `None`: every axis. Negative axes count from the end, as in NumPy.
    pub axes: Option<Vec<isize>>,
    pub keepdims: bool,
}

impl ReduceAxes {
    /// Every axis, dropped.
    pub fn all() -> ReduceAxes {
        ReduceAxes::default()
    }

    /// The reduced axes for an operand of rank `ndim`: in range, distinct, sorted. NumPy's
    /// messages (`axis 2 is out of bounds for array of dimension 2`, `duplicate value in
    /// 'axis'`); `argmin`/`argmax` take one axis or all of them.
    pub fn resolve(&self, r: Reduction, ndim: usize) -> Result<Vec<usize>> {
        let Some(axes) = &self.axes else {
            return Ok((0..ndim).collect());
        };
        // NumPy's ufunc reductions accept axis 0 (or -1) of a 0-d array as "no axis";
        // mean/var/std do not.
        if ndim == 0 && matches!(r, Reduction::Op(_)) && matches!(axes.as_slice(), [0] | [-1]) {
            return Ok(vec![]);
        }
        if matches!(r, Reduction::Op(op) if op.is_arg()) && axes.len() != 1 {
            return Err(Error::Axis {
                message: format!("{r} takes a single axis or none, got {} axes", axes.len()),
            });
        }
        let mut out = Vec::with_capacity(axes.len());
        for &a in axes {
            let d = if a < 0 { a + ndim as isize } else { a };
            if d < 0 || d >= ndim as isize {
                return Err(Error::AxisOutOfBounds { axis: a, ndim });
            }
            if out.contains(&(d as usize)) {
                return Err(Error::DuplicateAxis { axis: d as usize });
            }
            out.push(d as usize);
        }
        out.sort_unstable();
        Ok(out)
    }

    /// The result shape for an operand of `shape` reduced over the resolved `axes`.
    pub fn result_shape(&self, shape: &[usize], axes: &[usize]) -> Vec<usize> {
        (0..shape.len())
            .filter_map(|d| match (axes.contains(&d), self.keepdims) {
                (false, _) => Some(shape[d]),
                (true, true) => Some(1),
                (true, false) => None,
            })
            .collect()
    }
}

/// Type and shape of a reduction of an operand with `dtype` and `shape`, or the error NumPy
/// gives (bad axis; `min`/`max`/`argmin`/`argmax` of an empty array).
pub fn reduce_meta(
    r: Reduction,
    dtype: DType,
    shape: &[usize],
    spec: &ReduceAxes,
) -> Result<(DType, Vec<usize>, Vec<usize>)> {
    let axes = spec.resolve(r, shape.len())?;
    let out_dtype = r.result_dtype(dtype)?;
    let reduced: usize = axes.iter().map(|&d| shape[d]).product();
    let kept: usize = (0..shape.len())
        .filter(|d| !axes.contains(d))
        .map(|d| shape[d])
        .product();
    if reduced == 0 && kept > 0 && r.needs_nonempty() {
        // NumPy's messages name the ufunc (maximum), or the argmax of an empty sequence.
        return Err(Error::EmptyReduction { op: r.to_string() });
    }
    Ok((out_dtype, spec.result_shape(shape, &axes), axes))
}

pub(crate) struct Node {
    pub kind: ExprKind,
    pub meta: Result<Meta>,
}

impl ExprKind {
    /// The operands of this node, in source order.
    pub fn children(&self) -> impl Iterator<Item = &Expr> {
        let (a, b, c) = match self {
            ExprKind::Symbol(_) | ExprKind::Data { .. } | ExprKind::Literal(_) => {
                (None, None, None)
            }
            ExprKind::Unary(_, x)
            | ExprKind::Cast(_, x)
            | ExprKind::Reduce(_, x, _)
            | ExprKind::View(_, x) => (Some(x), None, None),
            ExprKind::Binary(_, a, b) => (Some(a), Some(b), None),
            ExprKind::Where(c, a, b) => (Some(c), Some(a), Some(b)),
        };
        a.into_iter().chain(b).chain(c)
    }

    /// Move the operands out (onto `out`), leaving a childless placeholder.
    fn take_children(&mut self, out: &mut Vec<Expr>) {
        match std::mem::replace(self, ExprKind::Literal(Scalar::Bool(false))) {
            ExprKind::Symbol(_) | ExprKind::Data { .. } | ExprKind::Literal(_) => {}
            ExprKind::Unary(_, x)
            | ExprKind::Cast(_, x)
            | ExprKind::Reduce(_, x, _)
            | ExprKind::View(_, x) => out.push(x),
            ExprKind::Binary(_, a, b) => out.extend([a, b]),
            ExprKind::Where(c, a, b) => out.extend([c, a, b]),
        }
    }
}

impl Drop for Node {
    /// Iterative, so that a tree of any depth drops without overflowing the stack: the operands
    /// this node owns alone are taken out onto a worklist, and each is emptied the same way
    /// before it is freed, so no `Node::drop` ever frees a node that still has operands it owns
    /// alone. (`Arc::into_inner` hands a node to exactly one of the threads dropping its last
    /// references; the others only decrement.)
    fn drop(&mut self) {
        if matches!(
            self.kind,
            ExprKind::Symbol(_) | ExprKind::Data { .. } | ExprKind::Literal(_)
        ) {
            return;
        }
        let mut work = Vec::new();
        self.kind.take_children(&mut work);
        while let Some(e) = work.pop() {
            if let Some(mut node) = Arc::into_inner(e.0) {
                node.kind.take_children(&mut work);
            }
        }
    }
}

/// Whether some path from a root of `exprs` to a leaf has more than `limit` edges (the
/// optimizer's [`crate::opt::lower::MAX_DEPTH`] is such a limit): an iterative depth-first walk
/// that stops as soon as its path is too long, so a pathological tree costs `O(limit)`, and
/// shared subtrees are measured once.
pub(crate) fn deeper_than(exprs: &[Expr], limit: usize) -> bool {
    // Height in edges of every finished node, by identity.
    let mut height: std::collections::HashMap<usize, usize> = std::collections::HashMap::new();
    for root in exprs {
        // `(node, expanded)`: the expanded entries on the stack are the ancestors of the node
        // being visited, so their count is the current path's length.
        let mut stack: Vec<(&Expr, bool)> = vec![(root, false)];
        let mut open = 0usize;
        while let Some((e, expanded)) = stack.pop() {
            if expanded {
                open -= 1;
                let h = e
                    .kind()
                    .children()
                    .map(|c| height[&c.ptr_id()] + 1)
                    .max()
                    .unwrap_or(0);
                if h > limit {
                    return true;
                }
                height.insert(e.ptr_id(), h);
                continue;
            }
            if height.contains_key(&e.ptr_id()) {
                continue;
            }
            if open >= limit && e.kind().children().next().is_some() {
                // This node is `open` edges below a root and has an operand one further.
                return true;
            }
            open += 1;
            stack.push((e, true));
            stack.extend(e.kind().children().map(|c| (c, false)));
        }
    }
    false
}

/// A lazy array expression. Cheap to clone.
#[derive(Clone)]
pub struct Expr(pub(crate) Arc<Node>);

impl Expr {
    fn new(kind: ExprKind, meta: Result<Meta>) -> Expr {
        Expr(Arc::new(Node { kind, meta }))
    }
    pub fn kind(&self) -> &ExprKind {
        &self.0.kind
    }
    /// Dtype and shape, or the error this expression carries.
    pub fn meta(&self) -> Result<&Meta> {
        self.0.meta.as_ref().map_err(Clone::clone)
    }
    pub fn dtype(&self) -> Result<DType> {
        Ok(self.meta()?.dtype)
    }
    pub fn shape(&self) -> Result<Vec<usize>> {
        Ok(self.meta()?.shape.clone())
    }
    /// Identity of the node (same `Arc`).
    #[allow(dead_code)]
    pub(crate) fn ptr_id(&self) -> usize {
        Arc::as_ptr(&self.0) as usize
    }

    /// A symbol: a named placeholder with a dtype and a shape.
    pub fn symbol(name: &str, dtype: DType, shape: &[usize]) -> Expr {
        Expr::new(
            ExprKind::Symbol(name.to_string()),
            Ok(Meta {
                dtype,
                shape: shape.to_vec(),
                weak: None,
            }),
        )
    }
    /// Bound data, optionally named (a name is what `Display` and `explain` show).
    pub fn data(array: impl Into<DynArray>, name: Option<&str>) -> Expr {
        let array = array.into();
        let meta = Meta {
            dtype: array.dtype(),
            shape: array.shape().to_vec(),
            weak: None,
        };
        Expr::new(
            ExprKind::Data {
                name: name.map(str::to_string),
                array,
            },
            Ok(meta),
        )
    }
    /// A weak scalar literal.
    pub fn literal(s: Scalar) -> Expr {
        Expr::new(
            ExprKind::Literal(s),
            Ok(Meta {
                dtype: s.default_dtype(),
                shape: vec![],
                weak: Some(s),
            }),
        )
    }

    /// Element-wise unary operation.
    ///
    /// On a weak literal, the Python operators `-` and `~` give a weak literal again (Python
    /// number semantics, folded here); every function (`cos(3)`, `abs(2)`, `sqrt(2.0)`, ...) is
    /// a NumPy ufunc on a Python scalar, whose result is a *strong* NumPy scalar (NEP 50:
    /// `np.cos(3)` is float64 and `float32_array * np.cos(3)` is float64): the literal becomes
    /// a 0-d array of its default dtype and the function applies to it like to any array.
    pub fn unary(op: UnaryOp, x: Expr) -> Expr {
        let x = match (op, x.kind()) {
            (UnaryOp::Neg | UnaryOp::Not, _) => x,
            (_, ExprKind::Literal(s)) => Expr::data(strong_scalar(*s), None),
            _ => x,
        };
        let meta = (|| {
            let m = x.meta()?;
            let (_, r) = op.signature(m.dtype)?;
            if let Some(s) = m.weak {
                return Ok(Meta {
                    dtype: r,
                    shape: vec![],
                    weak: Some(fold_unary(op, s)?),
                });
            }
            Ok(Meta {
                dtype: r,
                shape: m.shape.clone(),
                weak: None,
            })
        })();
        if let Ok(Meta { weak: Some(s), .. }) = meta {
            return Expr::literal(s);
        }
        Expr::new(ExprKind::Unary(op, x), meta)
    }

    /// Element-wise binary operation (also comparisons).
    pub fn binary(op: BinaryOp, a: Expr, b: Expr) -> Expr {
        let meta = (|| {
            let (ma, mb) = (a.meta()?, b.meta()?);
            if let (Some(x), Some(y)) = (ma.weak, mb.weak) {
                let s = fold_binary(op, x, y)?;
                return Ok(Meta {
                    dtype: s.default_dtype(),
                    shape: vec![],
                    weak: Some(s),
                });
            }
            let (compute, result) = binary_types(op, ma, mb)?;
            let _ = compute;
            Ok(Meta {
                dtype: result,
                shape: broadcast_shapes(&ma.shape, &mb.shape)?,
                weak: None,
            })
        })();
        if let Ok(Meta { weak: Some(s), .. }) = meta {
            return Expr::literal(s);
        }
        Expr::new(ExprKind::Binary(op, a, b), meta)
    }

    /// `where(cond, a, b)`: `a` where `cond` is true, else `b` (NumPy's `np.where`).
    pub fn select(cond: Expr, a: Expr, b: Expr) -> Expr {
        let meta = (|| {
            let (mc, ma, mb) = (cond.meta()?, a.meta()?, b.meta()?);
            let dtype = where_dtype(ma, mb)?;
            let shape = broadcast_shapes(&broadcast_shapes(&mc.shape, &ma.shape)?, &mb.shape)?;
            Ok(Meta {
                dtype,
                shape,
                weak: None,
            })
        })();
        Expr::new(ExprKind::Where(cond, a, b), meta)
    }

    /// Convert to another dtype (`astype`), with NumPy's casting results.
    pub fn astype(&self, dtype: DType) -> Expr {
        let meta = self.meta().map(|m| Meta {
            dtype,
            shape: m.shape.clone(),
            weak: None,
        });
        Expr::new(ExprKind::Cast(dtype, self.clone()), meta)
    }

    /// A reduction over `axes` (`None`: all of them), NumPy's `x.sum(axis=..., keepdims=...)`
    /// and friends: `Reduction::Op(ReduceOp::Sum)`, `Reduction::Mean`, `Reduction::Var { ddof }`.
    pub fn reduce(&self, r: Reduction, axes: Option<&[isize]>, keepdims: bool) -> Expr {
        self.reduce_with(
            r,
            ReduceAxes {
                axes: axes.map(<[isize]>::to_vec),
                keepdims,
            },
        )
    }

    /// [`Expr::reduce`] with the axes spelled as a [`ReduceAxes`].
    pub fn reduce_with(&self, r: Reduction, spec: ReduceAxes) -> Expr {
        let meta = (|| {
            let m = self.meta()?;
            let (dtype, shape, _) = reduce_meta(r, m.dtype, &m.shape, &spec)?;
            Ok(Meta {
                dtype,
                shape,
                weak: None,
            })
        })();
        Expr::new(ExprKind::Reduce(r, self.clone(), spec), meta)
    }

    /// Sum of all elements (NumPy's `x.sum()`: int64 for bool and integers).
    pub fn sum(&self) -> Expr {
        self.reduce(Reduction::Op(ReduceOp::Sum), None, false)
    }
    /// Product of all elements (int64 for bool and integers, wrapping like NumPy).
    pub fn prod(&self) -> Expr {
        self.reduce(Reduction::Op(ReduceOp::Prod), None, false)
    }
    /// Smallest element (NaN if any element is NaN; an error on empty input).
    pub fn min(&self) -> Expr {
        self.reduce(Reduction::Op(ReduceOp::Min), None, false)
    }
    /// Largest element (NaN if any element is NaN; an error on empty input).
    pub fn max(&self) -> Expr {
        self.reduce(Reduction::Op(ReduceOp::Max), None, false)
    }
    /// Whether any element is non-zero.
    pub fn any(&self) -> Expr {
        self.reduce(Reduction::Op(ReduceOp::Any), None, false)
    }
    /// Whether every element is non-zero.
    pub fn all(&self) -> Expr {
        self.reduce(Reduction::Op(ReduceOp::All), None, false)
    }
    /// Flat C-order position of the first smallest element (of the first NaN, if any).
    pub fn argmin(&self) -> Expr {
        self.reduce(Reduction::Op(ReduceOp::ArgMin), None, false)
    }
    /// Flat C-order position of the first largest element (of the first NaN, if any).
    pub fn argmax(&self) -> Expr {
        self.reduce(Reduction::Op(ReduceOp::ArgMax), None, false)
    }
    /// Arithmetic mean (float64 for bool and integers; NaN for empty input).
    pub fn mean(&self) -> Expr {
        self.reduce(Reduction::Mean, None, false)
    }
    /// Variance with `ddof = 0` (NumPy's default).
    pub fn var(&self) -> Expr {
        self.reduce(Reduction::Var { ddof: 0 }, None, false)
    }
    /// Standard deviation with `ddof = 0` (NumPy's default).
    pub fn std(&self) -> Expr {
        self.reduce(Reduction::Std { ddof: 0 }, None, false)
    }

    /// The same reduction with its reduced axes kept as length-1 axes (NumPy's
    /// `keepdims=True`), for broadcasting against the operand: `&z - z.max_axis(1).keepdims()`.
    /// On an expression that is not a reduction it is an error expression.
    pub fn keepdims(&self) -> Expr {
        match self.kind() {
            ExprKind::Reduce(r, x, spec) => x.reduce_with(
                *r,
                ReduceAxes {
                    axes: spec.axes.clone(),
                    keepdims: true,
                },
            ),
            k => Expr::new(
                k.clone(),
                Err(Error::Argument {
                    message: format!("keepdims() applies to a reduction, not to `{self}`"),
                }),
            ),
        }
    }

    /// A shape operation on this expression (see the named methods: [`Expr::transpose`],
    /// [`Expr::reshape`], [`Expr::expand_dims`], [`Expr::squeeze`], [`Expr::broadcast_to`],
    /// [`Expr::slice`]). A bad argument makes an error expression (`Error::View`,
    /// `AxisOutOfBounds`, `DuplicateAxis`), as NumPy would raise.
    pub fn view(&self, op: ViewOp) -> Expr {
        let meta = (|| {
            let m = self.meta()?;
            let (_, shape) = op.resolve(&m.shape)?;
            Ok(Meta {
                dtype: m.dtype,
                shape,
                weak: None,
            })
        })();
        Expr::new(ExprKind::View(op, self.clone()), meta)
    }
    /// The axes reversed (NumPy's `x.T`, `x.transpose()`).
    pub fn t(&self) -> Expr {
        self.view(ViewOp::Permute(None))
    }
    /// The axes in the order `axes` (NumPy's `x.transpose(axes)`; negative axes count from the
    /// end).
    pub fn transpose(&self, axes: &[isize]) -> Expr {
        self.view(ViewOp::Permute(Some(axes.to_vec())))
    }
    /// The same elements in C order with another shape; one entry may be -1 (NumPy's
    /// `x.reshape(shape)`). A view of C-contiguous data; other data is copied first.
    pub fn reshape(&self, shape: &[isize]) -> Expr {
        self.view(ViewOp::Reshape(shape.to_vec()))
    }
    /// A new length-1 axis at position `axis` of the result (`np.expand_dims(x, axis)`;
    /// `x[:, None]` is `x.expand_dims(1)`).
    pub fn expand_dims(&self, axis: isize) -> Expr {
        self.view(ViewOp::ExpandDims(vec![axis]))
    }
    /// Every length-1 axis dropped (`np.squeeze(x)`).
    pub fn squeeze(&self) -> Expr {
        self.view(ViewOp::Squeeze(None))
    }
    /// Length-1 axis `axis` dropped (`np.squeeze(x, axis)`; an axis of another length is an
    /// error).
    pub fn squeeze_axis(&self, axis: isize) -> Expr {
        self.view(ViewOp::Squeeze(Some(vec![axis])))
    }
    /// Broadcast to `shape` (`np.broadcast_to(x, shape)`): repeated elements are read again,
    /// not copied.
    pub fn broadcast_to(&self, shape: &[usize]) -> Expr {
        self.view(ViewOp::BroadcastTo(shape.to_vec()))
    }
    /// Basic slicing, one [`SliceSpec`] per leading axis (`x[::2, 1:]` is
    /// `x.slice(&[SliceSpec::step(2), SliceSpec::new(Some(1), None, 1)])`; negative steps read
    /// backwards, as in Python).
    pub fn slice(&self, specs: &[SliceSpec]) -> Expr {
        self.view(ViewOp::Slice(specs.to_vec()))
    }
    /// Slicing along one axis only (`x[:, a:b:c]` is `x.slice_axis(1, SliceSpec::new(..))`).
    pub fn slice_axis(&self, axis: isize, spec: SliceSpec) -> Expr {
        let Ok(m) = self.meta() else {
            return self.view(ViewOp::Slice(vec![spec]));
        };
        let ndim = m.shape.len();
        let d = if axis < 0 { axis + ndim as isize } else { axis };
        if d < 0 || d >= ndim as isize {
            return Expr::new(
                ExprKind::View(ViewOp::Slice(vec![spec]), self.clone()),
                Err(Error::AxisOutOfBounds { axis, ndim }),
            );
        }
        let mut specs = vec![SliceSpec::all(); d as usize];
        specs.push(spec);
        self.view(ViewOp::Slice(specs))
    }

    /// Values limited to `[lo, hi]` (NumPy's `np.clip(x, lo, hi)`: `minimum(maximum(x, lo),
    /// hi)`, so NaN stays NaN).
    pub fn clip(&self, lo: impl Into<Expr>, hi: impl Into<Expr>) -> Expr {
        maximum(self, lo).minimum(hi)
    }

    /// `np.isnan`: bool, True where the value is a NaN (never for integers and bools).
    ///
    /// These four predicates are written with operations fusebox already has, chosen to be
    /// exact on every device: `x != x` is True exactly for NaN, `|x| == inf` exactly for the
    /// infinities, `|x| < inf` exactly for finite values, and `copysign(1, x) < 0` reads the
    /// sign bit itself (so `-0.0` and a NaN with the sign bit set give True, as in NumPy).
    pub fn isnan(&self) -> Expr {
        self.ne_(self)
    }
    /// `np.isinf`: bool, True for `inf` and `-inf`.
    pub fn isinf(&self) -> Expr {
        match self.meta() {
            Ok(m) if !m.dtype.is_float() => self.ne_(self),
            _ => self.abs().eq_(f64::INFINITY),
        }
    }
    /// `np.isfinite`: bool, False for NaN and the infinities (always True for integers).
    pub fn isfinite(&self) -> Expr {
        match self.meta() {
            Ok(m) if !m.dtype.is_float() => self.eq_(self),
            _ => self.abs().lt(f64::INFINITY),
        }
    }
    /// `np.signbit`: bool, the sign bit (`x < 0` for integers, False for bools).
    pub fn signbit(&self) -> Expr {
        match self.meta() {
            Ok(m) if m.dtype.is_bool() => self.ne_(self),
            Ok(m) if m.dtype.is_int() => self.lt(0),
            _ => copysign(1.0, self).lt(0.0),
        }
    }

    /// `self ** other`.
    pub fn pow(&self, other: impl Into<Expr>) -> Expr {
        Expr::binary(BinaryOp::Pow, self.clone(), other.into())
    }
    /// Floor division (`//`).
    pub fn floor_div(&self, other: impl Into<Expr>) -> Expr {
        Expr::binary(BinaryOp::FloorDiv, self.clone(), other.into())
    }
}

macro_rules! axis_methods {
    ($($name:ident => $r:expr, $what:literal),* $(,)?) => {
        impl Expr {
            $(
                #[doc = concat!("NumPy's `x.", $what, "(axis=axis)`: ", "over one axis (negative counts from the end), ",
                    "dropping it; add [`Expr::keepdims`] to keep it.")]
                pub fn $name(&self, axis: isize) -> Expr {
                    self.reduce($r, Some(&[axis]), false)
                }
            )*
        }
    };
}
axis_methods! {
    sum_axis => Reduction::Op(ReduceOp::Sum), "sum",
    prod_axis => Reduction::Op(ReduceOp::Prod), "prod",
    min_axis => Reduction::Op(ReduceOp::Min), "min",
    max_axis => Reduction::Op(ReduceOp::Max), "max",
    any_axis => Reduction::Op(ReduceOp::Any), "any",
    all_axis => Reduction::Op(ReduceOp::All), "all",
    argmin_axis => Reduction::Op(ReduceOp::ArgMin), "argmin",
    argmax_axis => Reduction::Op(ReduceOp::ArgMax), "argmax",
    mean_axis => Reduction::Mean, "mean",
    var_axis => Reduction::Var { ddof: 0 }, "var",
    std_axis => Reduction::Std { ddof: 0 }, "std",
}

macro_rules! unary_methods {
    ($($name:ident => $op:ident),* $(,)?) => {
        impl Expr {
            $(
                #[doc = concat!("Element-wise `", stringify!($name), "`.")]
                pub fn $name(&self) -> Expr {
                    Expr::unary(UnaryOp::$op, self.clone())
                }
            )*
        }
        /// Free functions mirroring NumPy's (`exp(&x)`), for code that reads like the math.
        pub mod functions {
            use super::Expr;
            $(
                #[doc = concat!("Element-wise `", stringify!($name), "`.")]
                pub fn $name(x: impl Into<Expr>) -> Expr {
                    x.into().$name()
                }
            )*
            pub use super::{where_, maximum, minimum, arctan2, hypot, fmod, copysign, nextafter};
            /// `np.isnan`: see [`Expr::isnan`].
            pub fn isnan(x: impl Into<Expr>) -> Expr {
                x.into().isnan()
            }
            /// `np.isinf`: see [`Expr::isinf`].
            pub fn isinf(x: impl Into<Expr>) -> Expr {
                x.into().isinf()
            }
            /// `np.isfinite`: see [`Expr::isfinite`].
            pub fn isfinite(x: impl Into<Expr>) -> Expr {
                x.into().isfinite()
            }
            /// `np.signbit`: see [`Expr::signbit`].
            pub fn signbit(x: impl Into<Expr>) -> Expr {
                x.into().signbit()
            }
            /// `np.clip(x, lo, hi)`: see [`Expr::clip`].
            pub fn clip(x: impl Into<Expr>, lo: impl Into<Expr>, hi: impl Into<Expr>) -> Expr {
                x.into().clip(lo, hi)
            }
        }
    };
}
unary_methods! {
    abs => Abs, sign => Sign, sqrt => Sqrt, exp => Exp, expm1 => Expm1, log => Log,
    log1p => Log1p, log2 => Log2, log10 => Log10, sin => Sin, cos => Cos, tan => Tan,
    arcsin => Arcsin, arccos => Arccos, arctan => Arctan, sinh => Sinh, cosh => Cosh,
    tanh => Tanh, arcsinh => Arcsinh, arccosh => Arccosh, arctanh => Arctanh, floor => Floor,
    ceil => Ceil, round => Round, trunc => Trunc,
}

macro_rules! binary_methods {
    ($($name:ident => $op:ident),* $(,)?) => {
        impl Expr {
            $(
                #[doc = concat!("Element-wise `", stringify!($name), "` (broadcasting).")]
                pub fn $name(&self, other: impl Into<Expr>) -> Expr {
                    Expr::binary(BinaryOp::$op, self.clone(), other.into())
                }
            )*
        }
        $(
            #[doc = concat!("Element-wise `", stringify!($name), "` (broadcasting).")]
            pub fn $name(a: impl Into<Expr>, b: impl Into<Expr>) -> Expr {
                Expr::binary(BinaryOp::$op, a.into(), b.into())
            }
        )*
    };
}
binary_methods! {
    maximum => Maximum, minimum => Minimum, arctan2 => Arctan2, hypot => Hypot, fmod => Fmod,
    copysign => Copysign, nextafter => Nextafter,
}

macro_rules! comparison_methods {
    ($($name:ident => $op:ident),* $(,)?) => {
        impl Expr {
            $(
                #[doc = concat!("Element-wise comparison `", stringify!($name), "`, giving bool.")]
                pub fn $name(&self, other: impl Into<Expr>) -> Expr {
                    Expr::binary(BinaryOp::$op, self.clone(), other.into())
                }
            )*
        }
    };
}
comparison_methods! { eq_ => Eq, ne_ => Ne, lt => Lt, le => Le, gt => Gt, ge => Ge }

/// `where(cond, a, b)` (NumPy's `np.where`; `where` is a Rust keyword).
pub fn where_(cond: impl Into<Expr>, a: impl Into<Expr>, b: impl Into<Expr>) -> Expr {
    Expr::select(cond.into(), a.into(), b.into())
}

/// `(compute dtype, result dtype)` of a binary operator on two operands (NEP 50).
pub fn binary_types(op: BinaryOp, a: &Meta, b: &Meta) -> Result<(DType, DType)> {
    let weak = match (a.weak, b.weak) {
        (Some(s), None) => Some((s, b.dtype)),
        (None, Some(s)) => Some((s, a.dtype)),
        _ => None,
    };
    let mut common = match (a.weak, b.weak, weak) {
        (_, _, Some((s, strong))) => promote_weak(strong, s.kind()),
        (Some(x), Some(y), None) => promote(x.default_dtype(), y.default_dtype()),
        _ => promote(a.dtype, b.dtype),
    };
    // NumPy 2 compares with an integer literal outside the array's range exactly
    // (`int32_array < 3_000_000_000` is all True): compare in int64 (see below for uint64).
    if let Some((s, _)) = weak {
        if op.is_comparison() && common.is_int() && check_weak_fits(s, common).is_err() {
            // uint64 against a negative literal (the only int64 that does not fit it): every
            // uint64 converts to a float64 >= 0, above any negative literal, so float64
            // compares exactly here.
            common = if common == DType::U64 {
                DType::F64
            } else {
                DType::I64
            };
        }
    }
    let (compute, result) = match op {
        // NumPy picks these ufuncs' float loop from each operand (the smallest float both
        // cast to safely), not from their promoted type: int8 with uint16 is float32, though
        // int8 + uint16 is int32.
        BinaryOp::Arctan2 | BinaryOp::Hypot | BinaryOp::Copysign | BinaryOp::Nextafter
            if a.weak.is_none() && b.weak.is_none() =>
        {
            let f = a.dtype.min_float().max(b.dtype.min_float());
            match f {
                Some(f) => (f, f),
                None => op.signature(a.dtype)?, // float16: the typed error
            }
        }
        _ => op.signature(common)?,
    };
    // The literal must fit the dtype the operation computes in (`int32_array / 3e9` computes
    // in float64 and is fine; `int32_array + 3e9` is an OverflowError in NumPy).
    if let Some((s, _)) = weak {
        check_weak_fits(s, compute)?;
    }
    if op == BinaryOp::Pow && compute.is_int() {
        if let Some(Scalar::Int(e)) = b.weak {
            if e < 0 {
                return Err(Error::NegativeIntegerPower { exponent: e });
            }
        }
    }
    Ok((compute, result))
}

fn weak_with(s: Scalar, strong: DType) -> Result<DType> {
    let d = promote_weak(strong, s.kind());
    check_weak_fits(s, d)?;
    Ok(d)
}

/// Result dtype of `where(c, a, b)`: `a` and `b` promoted like a binary operator's operands.
pub fn where_dtype(a: &Meta, b: &Meta) -> Result<DType> {
    Ok(match (a.weak, b.weak) {
        (None, None) => promote(a.dtype, b.dtype),
        (Some(s), None) => weak_with(s, b.dtype)?,
        (None, Some(s)) => weak_with(s, a.dtype)?,
        (Some(x), Some(y)) => promote(x.default_dtype(), y.default_dtype()),
    })
}

/// A weak literal as a strong 0-d array of its default dtype (`np.asarray(3)`: int64).
fn strong_scalar(s: Scalar) -> DynArray {
    match s {
        Scalar::Bool(b) => ndarray::arr0(b).into(),
        Scalar::Int(i) => ndarray::arr0(i).into(),
        Scalar::Float(f) => ndarray::arr0(f).into(),
    }
}

/// Fold a unary operator on a weak literal (Python number semantics, float64 math).
fn fold_unary(op: UnaryOp, s: Scalar) -> Result<Scalar> {
    use UnaryOp::*;
    Ok(match (op, s) {
        (Neg, Scalar::Int(i)) => Scalar::Int(i.checked_neg().ok_or_else(overflow)?),
        (Neg, Scalar::Bool(b)) => Scalar::Int(-(b as i64)),
        (Abs, Scalar::Int(i)) => Scalar::Int(i.checked_abs().ok_or_else(overflow)?),
        (Sign, Scalar::Int(i)) => Scalar::Int(i.signum()),
        (Not, Scalar::Int(i)) => Scalar::Int(!i),
        (Not, Scalar::Bool(b)) => Scalar::Bool(!b),
        (Not, Scalar::Float(_)) => {
            return Err(Error::OperandType {
                op: op.name().into(),
                dtype: DType::F64,
                reason: "`~` needs bool or integer operands".into(),
            })
        }
        (Floor | Ceil | Round | Trunc | Abs, Scalar::Bool(b)) => Scalar::Int(b as i64),
        (Floor | Ceil | Round | Trunc, Scalar::Int(i)) => Scalar::Int(i),
        (_, s) => Scalar::Float(semantics::unary_f64(op, s.as_f64())),
    })
}

fn overflow() -> Error {
    Error::Value {
        message: "integer literal overflow".into(),
    }
}

/// Fold a binary operator on two weak literals (Python number semantics).
fn fold_binary(op: BinaryOp, a: Scalar, b: Scalar) -> Result<Scalar> {
    use BinaryOp::*;
    if op.is_comparison() {
        return Ok(Scalar::Bool(match (a, b) {
            (Scalar::Float(_), _) | (_, Scalar::Float(_)) => {
                semantics::compare(op, a.as_f64(), b.as_f64())
            }
            _ => semantics::compare(op, int_of(a), int_of(b)),
        }));
    }
    let float = matches!(a, Scalar::Float(_)) || matches!(b, Scalar::Float(_));
    if let (Scalar::Bool(x), Scalar::Bool(y), And | Or | Xor) = (a, b, op) {
        return Ok(Scalar::Bool(semantics::binary_bool(op, x, y)));
    }
    let float_only =
        matches!(op, Div | Arctan2 | Hypot | Copysign | Nextafter) || (op == Pow && int_of(b) < 0);
    if float || float_only {
        if matches!(op, And | Or | Xor | Shl | Shr) {
            return Err(Error::OperandType {
                op: op.name().into(),
                dtype: DType::F64,
                reason: match op {
                    Shl | Shr => "shifts need integer operands",
                    _ => "bitwise operators need bool or integer operands",
                }
                .into(),
            });
        }
        return Ok(Scalar::Float(semantics::binary_f64(
            op,
            a.as_f64(),
            b.as_f64(),
        )));
    }
    let (x, y) = (int_of(a), int_of(b));
    let v = match op {
        Add => x.checked_add(y),
        Sub => x.checked_sub(y),
        Mul => x.checked_mul(y),
        Pow => u32::try_from(y).ok().and_then(|e| x.checked_pow(e)),
        FloorDiv | Rem | Fmod if y == 0 => {
            return Err(Error::Value {
                message: "integer division or modulo by zero".into(),
            })
        }
        _ => Some(semantics::binary_i64(op, x, y)),
    };
    v.map(Scalar::Int).ok_or_else(overflow)
}

fn int_of(s: Scalar) -> i64 {
    match s {
        Scalar::Bool(b) => b as i64,
        Scalar::Int(i) => i,
        Scalar::Float(f) => f as i64,
    }
}

// ---- conversions into Expr -------------------------------------------------------------

impl From<&Expr> for Expr {
    fn from(e: &Expr) -> Expr {
        e.clone()
    }
}
impl From<f64> for Expr {
    fn from(v: f64) -> Expr {
        Expr::literal(Scalar::Float(v))
    }
}
impl From<f32> for Expr {
    fn from(v: f32) -> Expr {
        Expr::literal(Scalar::Float(v as f64))
    }
}
impl From<i64> for Expr {
    fn from(v: i64) -> Expr {
        Expr::literal(Scalar::Int(v))
    }
}
impl From<i32> for Expr {
    fn from(v: i32) -> Expr {
        Expr::literal(Scalar::Int(v as i64))
    }
}
impl From<bool> for Expr {
    fn from(v: bool) -> Expr {
        Expr::literal(Scalar::Bool(v))
    }
}
// Every Rust integer is a weak integer (NEP 50: like a Python int, it takes the array's dtype;
// `x.sum() / n` with `n: usize` divides as NumPy's `x.sum() / n` does).
macro_rules! weak_int {
    ($($t:ty),*) => {$(
        impl From<$t> for Expr {
            fn from(v: $t) -> Expr {
                match i64::try_from(v) {
                    Ok(i) => Expr::literal(Scalar::Int(i)),
                    // Beyond int64 (`u64::MAX`): NumPy has no dtype for it as a weak scalar
                    // next to int64 data either.
                    Err(_) => Expr::new(
                        ExprKind::Literal(Scalar::Int(i64::MAX)),
                        Err(Error::IntegerOverflow {
                            value: v as i128,
                            dtype: DType::I64,
                        }),
                    ),
                }
            }
        }
    )*};
}
weak_int!(u64, usize, isize);
macro_rules! weak_small_int {
    ($($t:ty),*) => {$(
        impl From<$t> for Expr {
            fn from(v: $t) -> Expr {
                Expr::literal(Scalar::Int(i64::from(v)))
            }
        }
    )*};
}
weak_small_int!(i8, i16, u8, u16, u32);

// ---- operator overloading ---------------------------------------------------------------

macro_rules! binop_trait {
    ($tr:ident, $method:ident, $op:ident) => {
        impl<R: Into<Expr>> std::ops::$tr<R> for Expr {
            type Output = Expr;
            fn $method(self, rhs: R) -> Expr {
                Expr::binary(BinaryOp::$op, self, rhs.into())
            }
        }
        impl<R: Into<Expr>> std::ops::$tr<R> for &Expr {
            type Output = Expr;
            fn $method(self, rhs: R) -> Expr {
                Expr::binary(BinaryOp::$op, self.clone(), rhs.into())
            }
        }
        // On the left, every Rust number (`2.0f32 * &x`, `3i32 + &x`, `n * &x` with `n: usize`):
        // a weak scalar, as on the right (NEP 50). With several float (and integer) types on
        // the left, an unsuffixed literal does not fix its type before a method call on the
        // result: `(0.5 * &x).exp()` needs `(&x * 0.5).exp()`, `(0.5f64 * &x).exp()` or
        // `Expr::from(0.5) * &x`; operators chain without help (`(5.0 * &x + 4.0) * &x`), and
        // the literal falls back to f64 / i32 as usual.
        binop_trait!(@scalar $tr, $method, $op, f64, f32, i64, i32, i16, i8, isize, u64, u32,
            u16, u8, usize, bool);
    };
    (@scalar $tr:ident, $method:ident, $op:ident, $($t:ty),*) => {
        $(
            impl std::ops::$tr<Expr> for $t {
                type Output = Expr;
                fn $method(self, rhs: Expr) -> Expr {
                    Expr::binary(BinaryOp::$op, Expr::from(self), rhs)
                }
            }
            impl std::ops::$tr<&Expr> for $t {
                type Output = Expr;
                fn $method(self, rhs: &Expr) -> Expr {
                    Expr::binary(BinaryOp::$op, Expr::from(self), rhs.clone())
                }
            }
        )*
    };
}
binop_trait!(Add, add, Add);
binop_trait!(Sub, sub, Sub);
binop_trait!(Mul, mul, Mul);
binop_trait!(Div, div, Div);
binop_trait!(Rem, rem, Rem);
binop_trait!(BitAnd, bitand, And);
binop_trait!(BitOr, bitor, Or);
binop_trait!(BitXor, bitxor, Xor);
binop_trait!(Shl, shl, Shl);
binop_trait!(Shr, shr, Shr);

impl std::ops::Neg for Expr {
    type Output = Expr;
    fn neg(self) -> Expr {
        Expr::unary(UnaryOp::Neg, self)
    }
}
impl std::ops::Neg for &Expr {
    type Output = Expr;
    fn neg(self) -> Expr {
        Expr::unary(UnaryOp::Neg, self.clone())
    }
}
impl std::ops::Not for Expr {
    type Output = Expr;
    fn not(self) -> Expr {
        Expr::unary(UnaryOp::Not, self)
    }
}
impl std::ops::Not for &Expr {
    type Output = Expr;
    fn not(self) -> Expr {
        Expr::unary(UnaryOp::Not, self.clone())
    }
}

// ---- printing ---------------------------------------------------------------------------

/// Binding strength of an infix operator (Python's table).
pub(crate) fn precedence(op: BinaryOp) -> u8 {
    use BinaryOp::*;
    match op {
        // Python: comparisons bind loosest, below `|`, `^` and `&`.
        Eq | Ne | Lt | Le | Gt | Ge => 1,
        Or => 2,
        Xor => 3,
        And => 4,
        Shl | Shr => 5,
        Add | Sub => 6,
        Mul | Div | FloorDiv | Rem => 7,
        Pow => 9,
        _ => 10,
    }
}

const PREC_UNARY: u8 = 8;
const PREC_ATOM: u8 = 11;

impl Expr {
    fn prec(&self) -> u8 {
        match self.kind() {
            ExprKind::Binary(op, ..) if op.symbol().is_some() => precedence(*op),
            ExprKind::Unary(UnaryOp::Neg | UnaryOp::Not, _) => PREC_UNARY,
            ExprKind::Literal(Scalar::Int(i)) if *i < 0 => PREC_UNARY,
            ExprKind::Literal(Scalar::Float(f)) if f.is_sign_negative() => PREC_UNARY,
            _ => PREC_ATOM,
        }
    }
}

/// A piece of [`Expr`]'s printed text still to write: a subexpression (with the least
/// precedence it may have without parentheses) or fixed text.
enum Piece<'a> {
    Expr(&'a Expr, u8),
    Str(&'static str),
    /// An infix operator's symbol, written with a space on each side.
    Infix(&'static str),
    Text(String),
}

impl Expr {
    /// Print in numexpr syntax with minimal parentheses. Iterative (an explicit stack of the
    /// pieces still to write), so any depth prints in linear time without deep recursion.
    fn write_text(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut todo = vec![Piece::Expr(self, 0)];
        while let Some(piece) = todo.pop() {
            let (e, min) = match piece {
                Piece::Str(s) => {
                    f.write_str(s)?;
                    continue;
                }
                Piece::Infix(s) => {
                    write!(f, " {s} ")?;
                    continue;
                }
                Piece::Text(s) => {
                    f.write_str(&s)?;
                    continue;
                }
                Piece::Expr(e, min) => (e, min),
            };
            if e.prec() < min {
                f.write_str("(")?;
                todo.push(Piece::Str(")"));
            }
            // What follows the node's first text, pushed in reverse order.
            match e.kind() {
                ExprKind::Symbol(n) => f.write_str(n)?,
                ExprKind::Data { name: Some(n), .. } => f.write_str(n)?,
                ExprKind::Data { name: None, array } => write!(f, "{array}")?,
                ExprKind::Literal(s) => write!(f, "{s}")?,
                ExprKind::Unary(UnaryOp::Neg, x) => {
                    f.write_str("-")?;
                    todo.push(Piece::Expr(x, PREC_UNARY));
                }
                ExprKind::Unary(UnaryOp::Not, x) => {
                    f.write_str("~")?;
                    todo.push(Piece::Expr(x, PREC_UNARY));
                }
                ExprKind::Unary(op, x) => {
                    write!(f, "{op}(")?;
                    todo.extend([Piece::Str(")"), Piece::Expr(x, 0)]);
                }
                ExprKind::Binary(op, a, b) => match op.symbol() {
                    Some(sym) => {
                        let p = precedence(*op);
                        // Left-associative, except `**` (right-associative, binds tighter than
                        // unary minus on its left).
                        let (lp, rp) = if *op == BinaryOp::Pow {
                            (p + 1, PREC_UNARY)
                        } else if op.is_comparison() {
                            // Comparisons do not chain in numexpr: parenthesize nested ones.
                            (p + 1, p + 1)
                        } else {
                            (p, p + 1)
                        };
                        todo.extend([Piece::Expr(b, rp), Piece::Infix(sym), Piece::Expr(a, lp)]);
                    }
                    None => {
                        write!(f, "{op}(")?;
                        todo.extend([
                            Piece::Str(")"),
                            Piece::Expr(b, 0),
                            Piece::Str(", "),
                            Piece::Expr(a, 0),
                        ]);
                    }
                },
                ExprKind::Where(c, a, b) => {
                    f.write_str("where(")?;
                    todo.extend([
                        Piece::Str(")"),
                        Piece::Expr(b, 0),
                        Piece::Str(", "),
                        Piece::Expr(a, 0),
                        Piece::Str(", "),
                        Piece::Expr(c, 0),
                    ]);
                }
                ExprKind::Cast(d, x) => {
                    f.write_str("astype(")?;
                    todo.extend([Piece::Text(format!(", {d})")), Piece::Expr(x, 0)]);
                }
                ExprKind::View(op, x) => {
                    f.write_str(op.name())?;
                    f.write_str("(")?;
                    todo.extend([
                        Piece::Text(format!(", {})", view_args(op))),
                        Piece::Expr(x, 0),
                    ]);
                }
                ExprKind::Reduce(r, x, spec) => {
                    write!(f, "{r}(")?;
                    let mut tail = String::new();
                    match &spec.axes {
                        Some(a) if a.len() == 1 => tail += &format!(", axis={}", a[0]),
                        Some(a) => {
                            let list: Vec<String> = a.iter().map(|d| d.to_string()).collect();
                            tail += &format!(", axis=({})", list.join(", "));
                        }
                        None => {}
                    }
                    if let Reduction::Var { ddof } | Reduction::Std { ddof } = r {
                        if *ddof != 0 {
                            tail += &format!(", ddof={ddof}");
                        }
                    }
                    if spec.keepdims {
                        tail += ", keepdims=True";
                    }
                    tail += ")";
                    todo.extend([Piece::Text(tail), Piece::Expr(x, 0)]);
                }
            }
        }
        Ok(())
    }
}

/// The arguments of a shape operation as NumPy spells them (`(1, 0)`, `::2`).
fn view_args(op: &ViewOp) -> String {
    let tuple = |v: Vec<String>| match v.len() {
        1 => format!("({},)", v[0]),
        _ => format!("({})", v.join(", ")),
    };
    let nums = |v: &[isize]| tuple(v.iter().map(|a| a.to_string()).collect());
    match op {
        ViewOp::Permute(None) => "None".into(),
        ViewOp::Permute(Some(a)) | ViewOp::Reshape(a) | ViewOp::ExpandDims(a) => nums(a),
        ViewOp::Squeeze(None) => "None".into(),
        ViewOp::Squeeze(Some(a)) => nums(a),
        ViewOp::BroadcastTo(s) => tuple(s.iter().map(|a| a.to_string()).collect()),
        ViewOp::Slice(specs) => {
            let part = |o: Option<isize>| o.map(|v| v.to_string()).unwrap_or_default();
            let items: Vec<String> = specs
                .iter()
                .map(|s| format!("{}:{}:{}", part(s.start), part(s.stop), s.step))
                .collect();
            format!("[{}]", items.join(", "))
        }
    }
}

impl fmt::Display for Expr {
    /// The expression in numexpr syntax (parseable by [`crate::parse`]); unnamed data prints as
    /// a NumPy-like preview.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_text(f)
    }
}

impl fmt::Debug for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.meta() {
            Ok(m) => write!(f, "Expr({self}: {} {:?})", m.dtype, m.shape),
            Err(e) => write!(f, "Expr({self}: error: {e})"),
        }
    }
}

/// Preview of bound data for `Display` in tools (NumPy-like, 3 items per edge).
pub fn data_preview(a: &DynArray) -> String {
    preview(a, 3)
}

/// For every float -> integer `astype` in `exprs` (each shared node once), a bool scalar
/// that is true where the cast meets a value it cannot represent (NaN, an infinity, a value
/// whose truncation is out of the integer's range), with the error it raises: the
/// checks behind [`crate::session::InvalidCast::Raise`] (NumPy's
/// `np.errstate(invalid='raise')` for casts). Like NumPy, every element is checked, also
/// those a `where` discards (NumPy computes both branches).
pub(crate) fn invalid_cast_checks(exprs: &[Expr]) -> Vec<(Expr, Error)> {
    // Post-order with an explicit stack (a tree of any depth), as the recursive walk did:
    // operands' checks come before their users'.
    let mut seen = std::collections::HashSet::new();
    let mut out = vec![];
    for root in exprs {
        let mut stack: Vec<(&Expr, bool)> = vec![(root, false)];
        while let Some((e, expanded)) = stack.pop() {
            if expanded {
                if let Some(check) = cast_check(e) {
                    out.push(check);
                }
            } else if seen.insert(e.ptr_id()) {
                stack.push((e, true));
                let kids: Vec<&Expr> = e.kind().children().collect();
                stack.extend(kids.into_iter().rev().map(|c| (c, false)));
            }
        }
    }
    out
}

/// The check of one node, if it is a float -> integer `astype`.
fn cast_check(e: &Expr) -> Option<(Expr, Error)> {
    let ExprKind::Cast(to, v) = e.kind() else {
        return None;
    };
    let from = v.dtype().ok()?;
    if !from.is_float() || !to.is_int() {
        return None;
    }
    // Bounds exact in the source dtype: truncation toward zero lands in [MIN, MAX], that is
    // MIN - 1 < x < MAX + 1 (MAX + 1 is a power of two, exact in every float). Where MIN - 1
    // is not exact in the source (int32 from float32, int64), x >= MIN says the same.
    let (min, max) = to.int_range()?;
    // float16 compares in float32 (exact), since the bounds of int16 and wider are not
    // float16 values (a weak bound would round, to infinity past 65504).
    let source = from;
    let widened;
    let (v, from) = if from == DType::F16 {
        widened = v.astype(DType::F32);
        (&widened, DType::F32)
    } else {
        (v, from)
    };
    let below = (min - 1) as f64;
    let exact = if from == DType::F32 {
        (below as f32) as i128 == min - 1
    } else {
        below as i128 == min - 1
    };
    let (lo, lo_inclusive, hi) = if exact {
        (below, false, (max + 1) as f64)
    } else {
        (min as f64, true, (max + 1) as f64)
    };
    let lo_ok = if lo_inclusive { v.ge(lo) } else { v.gt(lo) };
    let ok = lo_ok & v.lt(hi);
    Some((
        (!ok).any(),
        Error::InvalidCast {
            from: source,
            to: *to,
            expr: e.to_string(),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn x() -> Expr {
        Expr::symbol("x", DType::F64, &[10])
    }

    #[test]
    fn display_uses_minimal_parentheses() {
        let x = x();
        let poly: Expr = (5.0 * &x + 4.0) * &x + 1.0;
        assert_eq!(poly.to_string(), "(5.0 * x + 4.0) * x + 1.0");
        let e = -(&x - 1.0).pow(2) / 2.0;
        assert_eq!(e.to_string(), "-(x - 1.0) ** 2 / 2.0");
        let e = &x - (&x - 1.0);
        assert_eq!(e.to_string(), "x - (x - 1.0)");
        assert_eq!(
            where_(x.gt(0.0), x.exp(), 0.0).to_string(),
            "where(x > 0.0, exp(x), 0.0)"
        );
        let b = x.gt(0.0) & x.lt(1.0);
        assert_eq!(b.to_string(), "(x > 0.0) & (x < 1.0)");
        assert_eq!(x.lt(1.0).eq_(true).to_string(), "(x < 1.0) == True");
        assert_eq!(x.lt(&x + 1.0).to_string(), "x < x + 1.0");
    }

    #[test]
    fn weak_literals_fold_and_keep_array_dtype() {
        let c: Expr = 2.0 * Expr::from(std::f64::consts::PI);
        assert!(matches!(c.kind(), ExprKind::Literal(Scalar::Float(_))));
        let y = Expr::symbol("y", DType::F32, &[3]) * 2.0;
        assert_eq!(y.dtype().unwrap(), DType::F32);
        let i = Expr::symbol("i", DType::I32, &[3]);
        assert_eq!((&i / &i).dtype().unwrap(), DType::F64);
        assert_eq!((&i + 1).dtype().unwrap(), DType::I32);
        assert!(matches!(
            (&i + (1i64 << 40)).dtype(),
            Err(Error::IntegerOverflow { .. })
        ));
        assert_eq!(i.sum().dtype().unwrap(), DType::I64);
    }

    #[test]
    fn shape_errors_name_both_shapes() {
        let a = Expr::symbol("a", DType::F64, &[3]);
        let b = Expr::symbol("b", DType::F64, &[4]);
        let e = (&a + &b).exp();
        match e.dtype() {
            Err(Error::ShapeMismatch { lhs, rhs }) => assert_eq!((lhs, rhs), (vec![3], vec![4])),
            other => panic!("{other:?}"),
        }
    }
}
