//! Reductions split out of an expression, for `fusebox.dask`: Dask runs element-wise work one
//! block at a time but needs reductions as trees of partial results. [`analyze`] parses an
//! expression against argument dtypes and shapes, replaces each outermost reduction by a new
//! name (`__fbr0`, ...) and reports, per reduction, its operation, its operand's source text,
//! the resolved axes and the dtypes and shapes involved. Printing an [`Expr`] gives source
//! that parses back to the same tree (`Expr`'s `Display` contract), so the pieces can be
//! evaluated on blocks by `fusebox.evaluate`.
use crate::args::dtype_from_py;
use crate::errors::IntoPy;
use fusebox::parse::parse;
use fusebox::{Expr, ExprKind, Reduction, Scalar};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyTuple};

/// One reduction taken out of an expression.
struct Split {
    name: String,
    reduction: Reduction,
    operand: Expr,
    axes: Vec<usize>,
    keepdims: bool,
    result: Expr,
}

/// `e` with every outermost reduction replaced by a symbol; the reductions in `out`.
fn replace(e: &Expr, out: &mut Vec<Split>) -> fusebox::Result<Expr> {
    Ok(match e.kind() {
        ExprKind::Symbol(_) | ExprKind::Data { .. } | ExprKind::Literal(_) => e.clone(),
        ExprKind::Unary(op, x) => Expr::unary(*op, replace(x, out)?),
        ExprKind::Binary(op, a, b) => Expr::binary(*op, replace(a, out)?, replace(b, out)?),
        ExprKind::Where(c, a, b) => {
            Expr::select(replace(c, out)?, replace(a, out)?, replace(b, out)?)
        }
        ExprKind::Cast(dt, x) => replace(x, out)?.astype(*dt),
        ExprKind::View(op, x) => replace(x, out)?.view(op.clone()),
        ExprKind::Reduce(r, x, spec) => {
            let m = e.meta()?;
            let ndim = x.meta()?.shape.len();
            let axes = spec.resolve(*r, ndim)?;
            let name = format!("__fbr{}", out.len());
            let sym = Expr::symbol(&name, m.dtype, &m.shape);
            out.push(Split {
                name,
                reduction: *r,
                operand: x.clone(),
                axes,
                keepdims: spec.keepdims,
                result: e.clone(),
            });
            sym
        }
    })
}

/// `specs` maps each name to `(dtype, shape)` for arrays or to a Python number (weak).
/// Returns `{"dtype", "shape", "outer", "reductions": [{"name", "op", "ddof", "operand",
/// "operand_dtype", "operand_shape", "axes", "keepdims", "dtype", "shape"}]}`.
#[pyfunction]
pub fn analyze<'py>(
    py: Python<'py>,
    ex: &str,
    specs: &Bound<'py, PyDict>,
) -> PyResult<Bound<'py, PyDict>> {
    let mut bound: Vec<(String, Expr)> = Vec::new();
    for (k, v) in specs.iter() {
        let name: String = k.extract()?;
        let e = if v.is_instance_of::<PyBool>() {
            Expr::literal(Scalar::Bool(v.extract()?))
        } else if v.is_instance_of::<PyInt>() {
            Expr::literal(Scalar::Int(v.extract()?))
        } else if v.is_instance_of::<PyFloat>() {
            Expr::literal(Scalar::Float(v.extract()?))
        } else if let Ok(t) = v.cast::<PyTuple>() {
            let (dt, shape): (Bound<'py, PyAny>, Vec<usize>) = t.extract()?;
            Expr::symbol(&name, dtype_from_py(py, &dt)?, &shape)
        } else {
            return Err(PyTypeError::new_err(format!(
                "`{name}` must be (dtype, shape) or a Python number"
            )));
        };
        bound.push((name, e));
    }
    let e = parse(ex, &|n| {
        bound.iter().find(|(b, _)| b == n).map(|(_, e)| e.clone())
    })
    .py_err(py)?;
    let mut splits = Vec::new();
    let outer = replace(&e, &mut splits).py_err(py)?;
    let m = outer.meta().py_err(py)?.clone();
    let d = PyDict::new(py);
    d.set_item("dtype", m.dtype.name())?;
    d.set_item("shape", PyTuple::new(py, &m.shape)?)?;
    d.set_item("outer", outer.to_string())?;
    let list = PyList::empty(py);
    for s in splits {
        let om = s.operand.meta().py_err(py)?;
        let rm = s.result.meta().py_err(py)?;
        let r = PyDict::new(py);
        let (op, ddof) = match s.reduction {
            Reduction::Var { ddof } => ("var".to_string(), ddof),
            Reduction::Std { ddof } => ("std".to_string(), ddof),
            other => (other.to_string(), 0),
        };
        r.set_item("name", &s.name)?;
        r.set_item("op", op)?;
        r.set_item("ddof", ddof)?;
        r.set_item("operand", s.operand.to_string())?;
        r.set_item("operand_dtype", om.dtype.name())?;
        r.set_item("operand_shape", PyTuple::new(py, &om.shape)?)?;
        r.set_item("axes", PyTuple::new(py, &s.axes)?)?;
        r.set_item("keepdims", s.keepdims)?;
        r.set_item("dtype", rm.dtype.name())?;
        r.set_item("shape", PyTuple::new(py, &rm.shape)?)?;
        list.append(r)?;
    }
    d.set_item("reductions", list)?;
    Ok(d)
}
