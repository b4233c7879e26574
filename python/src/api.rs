//! The functions `fusebox._core` exports: numexpr's `evaluate`, `validate` and `re_evaluate`,
//! `explain`, compiled functions ([`PyCompiled`]) and the thread count.
//!
//! One call: the expression string's [`Prepared`] form (cached) lists its names; each name is
//! looked up in `local_dict` then `global_dict` (by default the caller's frame, as numexpr
//! does) and classified ([`crate::args`]); the (session, dtypes, ranks, weak values)
//! signature picks a compiled [`Entry`] (or compiles one); the arrays are passed as views and
//! the kernel runs with the GIL released; the result's buffer becomes the returned array.
use crate::args::{classify, dtype_from_py, out_view_of, to_numpy, Held, Value};
use crate::cache::{self, ArgSig, Ctx, Entry, Prepared, WeakKey};
use crate::errors::IntoPy;
use crate::out::{check_out, direct_dtype, write_into, write_weak};
use fusebox::{ArgView, DType, Device};
use numpy::{PyArrayDescrMethods, PyUntypedArrayMethods};
use pyo3::exceptions::{PyKeyError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple, PyWeakrefMethods, PyWeakrefReference};
use std::cell::RefCell;
use std::sync::Arc;

/// `order=`: only the layout of a fresh result (fusebox writes C order; 'F' copies).
fn check_order(order: &str) -> PyResult<char> {
    match order {
        "K" | "A" | "C" | "F" => Ok(order.chars().next().unwrap_or('K')),
        _ => Err(PyValueError::new_err(format!(
            "order must be one of 'C', 'F', 'A' or 'K' (got '{order}')"
        ))),
    }
}

/// `casting=`: NumPy's rule for writing the result into `out=`.
fn check_casting(casting: &str) -> PyResult<&'static str> {
    const RULES: [&str; 5] = ["no", "equiv", "safe", "same_kind", "unsafe"];
    match RULES.iter().find(|r| **r == casting) {
        Some(r) => Ok(r),
        None => Err(PyValueError::new_err(format!(
            "casting must be one of 'no', 'equiv', 'safe', 'same_kind', or 'unsafe' (got '{casting}')"
        ))),
    }
}

/// `device=`: None (auto), 'auto', 'cpu', 'gpu', 'gpu:N' (and 'reference', the oracle).
pub fn parse_device(device: Option<&str>) -> PyResult<Device> {
    match device {
        None => Ok(Device::Auto),
        Some(s) => Device::parse(s).map_err(|e| PyValueError::new_err(e.to_string())),
    }
}

fn ctx(device: Device, optimize: bool) -> Ctx {
    Ctx {
        device,
        threads: cache::threads(),
        optimize,
    }
}

/// numexpr's extra keyword arguments: accepted where they mean nothing to fusebox, checked
/// as numexpr checks them. Returns `_frame_depth` if given.
fn check_numexpr_kwargs(kwargs: Option<&Bound<'_, PyDict>>) -> PyResult<Option<usize>> {
    let mut depth = None;
    let Some(kw) = kwargs else {
        return Ok(None);
    };
    for (k, v) in kw.iter() {
        let k: String = k.extract()?;
        match k.as_str() {
            "optimization" => {
                let ok = v
                    .extract::<String>()
                    .is_ok_and(|s| ["none", "moderate", "aggressive"].contains(&s.as_str()));
                if !ok {
                    return Err(PyValueError::new_err(format!(
                        "'optimization' must be one of ('none', 'moderate', 'aggressive'), got {v}"
                    )));
                }
            }
            "truediv" => {
                let ok =
                    v.extract::<bool>().is_ok() || v.extract::<String>().is_ok_and(|s| s == "auto");
                if !ok {
                    return Err(PyValueError::new_err(format!(
                        "'truediv' must be one of (False, True, 'auto'), got {v}"
                    )));
                }
            }
            "sanitize" | "disable_cache" => {
                if !v.is_none() && v.extract::<bool>().is_err() {
                    return Err(PyTypeError::new_err(format!(
                        "'{k}' must be a bool or None"
                    )));
                }
            }
            "_frame_depth" => depth = Some(v.extract::<usize>()?),
            _ => {
                return Err(PyValueError::new_err(format!(
                    "Unknown keyword argument '{k}'"
                )))
            }
        }
    }
    Ok(depth)
}

type Scope<'py> = (Option<Bound<'py, PyAny>>, Option<Bound<'py, PyAny>>);

/// The locals (if `want_locals`) and globals of the Python frame that called us, or of one
/// `extra` frames further out. The locals are only read when asked for: reading them makes
/// CPython snapshot the frame's variables into a dict that keeps them alive.
fn frame_scope(py: Python<'_>, extra: usize, want_locals: bool) -> PyResult<Scope<'_>> {
    if extra == 0 {
        // SAFETY: called with the GIL held; both return borrowed references (or NULL when no
        // Python frame is running), which we turn into owned ones at once.
        unsafe {
            let l = if want_locals {
                Bound::from_borrowed_ptr_or_opt(py, pyo3::ffi::PyEval_GetLocals())
            } else {
                None
            };
            let g = Bound::from_borrowed_ptr_or_opt(py, pyo3::ffi::PyEval_GetGlobals());
            return Ok((l, g));
        }
    }
    let f = py.import("sys")?.getattr("_getframe")?.call1((extra,))?;
    let l = if want_locals {
        Some(f.getattr("f_locals")?)
    } else {
        None
    };
    Ok((l, Some(f.getattr("f_globals")?)))
}

/// `local_dict` and `global_dict`, the caller's frame filling in those not given.
fn scope<'py>(
    py: Python<'py>,
    local_dict: Option<Bound<'py, PyAny>>,
    global_dict: Option<Bound<'py, PyAny>>,
    extra: usize,
) -> PyResult<Scope<'py>> {
    if local_dict.is_some() && global_dict.is_some() {
        return Ok((local_dict, global_dict));
    }
    let (fl, fg) = frame_scope(py, extra, local_dict.is_none())?;
    Ok((local_dict.or(fl), global_dict.or(fg)))
}

/// `name` in `scope` (a dict or any mapping), or None.
fn get<'py>(
    scope: &Bound<'py, PyAny>,
    name: &Bound<'py, PyString>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    if let Ok(d) = scope.cast::<PyDict>() {
        return d.get_item(name);
    }
    match scope.get_item(name) {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.is_instance_of::<PyKeyError>(scope.py()) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The arguments of one call: per name its signature, and the borrowed arrays.
struct Args<'py> {
    sigs: Vec<ArgSig>,
    held: Vec<Option<Held<'py>>>,
}

impl Args<'_> {
    fn shapes(&self) -> Vec<&[usize]> {
        self.held
            .iter()
            .map(|h| h.as_ref().map_or(&[][..], |h| h.shape()))
            .collect()
    }
}

/// Look up and classify every name of `prep`.
fn resolve<'py>(
    py: Python<'py>,
    prep: &Prepared,
    local: Option<&Bound<'py, PyAny>>,
    global: Option<&Bound<'py, PyAny>>,
) -> PyResult<Args<'py>> {
    let mut sigs = Vec::with_capacity(prep.names.len());
    let mut held = Vec::with_capacity(prep.names.len());
    for (i, (name, pyname)) in prep.names.iter().zip(&prep.py_names).enumerate() {
        let pyname = pyname.bind(py);
        let mut found = None;
        for scope in [local, global].into_iter().flatten() {
            if let Some(v) = get(scope, pyname)? {
                found = Some(v);
                break;
            }
        }
        match found {
            Some(v) => match classify(py, name, &v)? {
                Value::Array(h, dt) => {
                    sigs.push(ArgSig::Array(dt, h.shape().len()));
                    held.push(Some(h));
                }
                Value::Weak(s) => {
                    sigs.push(ArgSig::Weak(WeakKey::of(s)));
                    held.push(None);
                }
            },
            None if i >= prep.required => {
                sigs.push(ArgSig::Constant);
                held.push(None);
            }
            None => return Err(PyKeyError::new_err(name.clone())),
        }
    }
    Ok(Args { sigs, held })
}

/// The entry for these arguments (compiled now if new).
fn entry_for(py: Python<'_>, prep: &Prepared, ctx: Ctx, args: &Args<'_>) -> PyResult<Arc<Entry>> {
    match prep.find(ctx, &args.sigs) {
        Some(e) => Ok(e),
        None => prep.compile(py, ctx, &args.sigs, &args.shapes()),
    }
}

/// Run `entry` on `args`; the result as a new array, or written into `out` (in place when
/// `out` fits the result, see [`crate::out`]).
fn run_entry<'py>(
    py: Python<'py>,
    entry: &Entry,
    args: Args<'py>,
    out: Option<&Bound<'py, PyAny>>,
    casting: &str,
    order: char,
) -> PyResult<Bound<'py, PyAny>> {
    if let (Some(out), Some(s)) = (out, entry.weak_result) {
        write_weak(py, s, out, casting)?;
        return Ok(out.clone());
    }
    let result = {
        let mut views: Vec<ArgView<'_>> = Vec::with_capacity(entry.order.len());
        for &i in &entry.order {
            match &args.held[i] {
                Some(h) => views.push(h.view()),
                None => {
                    return Err(PyRuntimeError::new_err(
                        "internal error: a compiled parameter bound to no array",
                    ))
                }
            }
        }
        let compiled = &entry.compiled;
        let elements: usize = views.iter().map(|v| v.len()).max().unwrap_or(0);
        // Releasing and taking back the GIL costs about 0.1-0.2 us: worth it unless the
        // kernel is shorter still (NumPy has the same kind of threshold for its loops).
        let keep_gil = elements < GIL_RELEASE_ELEMENTS
            && matches!(entry.ctx.device, Device::Cpu | Device::Auto);
        let direct = match (out, compiled.expr().dtype()) {
            (Some(o), Ok(dt)) if direct_dtype(o, dt) => Some((o, dt)),
            _ => None,
        };
        if let Some((o, dt)) = direct {
            let mut target = out_view_of(o, dt, &views)?;
            let keep_gil = keep_gil && target.view.len() < GIL_RELEASE_ELEMENTS;
            let mut into = || compiled.call_into(&views, target.view.reborrow());
            let r = if keep_gil { into() } else { py.detach(into) };
            drop(target);
            match r {
                Ok(()) => return Ok(o.clone()),
                // `out` has another shape that the result may broadcast to: np.copyto below.
                Err(fusebox::Error::ShapeMismatch { lhs, .. }) if lhs == o_shape(o)? => {}
                Err(e) => return Err(e).py_err(py),
            }
        }
        if keep_gil {
            compiled.call(&views).py_err(py)?
        } else {
            py.detach(|| compiled.call(&views)).py_err(py)?
        }
    };
    // Release the inputs' borrows first: `out` may be one of them (`evaluate('a + 1', out=a)`).
    drop(args);
    match out {
        Some(out) => {
            write_into(py, result, out, casting)?;
            Ok(out.clone())
        }
        None => {
            let a = to_numpy(py, result)?;
            if order == 'F' && a.getattr("ndim")?.extract::<usize>()? > 1 {
                return py.import("numpy")?.getattr("asfortranarray")?.call1((a,));
            }
            Ok(a)
        }
    }
}

fn o_shape(o: &Bound<'_, PyAny>) -> PyResult<Vec<usize>> {
    Ok(o.cast::<numpy::PyUntypedArray>()?.shape().to_vec())
}

/// Arguments below this many elements run on the CPU without releasing the GIL.
const GIL_RELEASE_ELEMENTS: usize = 4096;

/// What `re_evaluate` repeats (per thread, as numexpr keeps it).
struct Last {
    prep: Arc<Prepared>,
    ctx: Ctx,
    /// A weak reference: `out` is not kept alive by being remembered.
    out: Option<Py<PyWeakrefReference>>,
    casting: &'static str,
    order: char,
}

thread_local! {
    static LAST: RefCell<Option<Last>> = const { RefCell::new(None) };
}

#[allow(clippy::too_many_arguments)]
fn remember(
    py: Python<'_>,
    prep: &Arc<Prepared>,
    ctx: Ctx,
    out: Option<&Bound<'_, PyAny>>,
    casting: &'static str,
    order: char,
) -> PyResult<()> {
    // The same call again (the common case in a loop): nothing to replace.
    let same = LAST.with(|l| {
        l.borrow().as_ref().is_some_and(|l| {
            Arc::ptr_eq(&l.prep, prep)
                && l.ctx == ctx
                && l.out.is_none()
                && out.is_none()
                && l.casting == casting
                && l.order == order
        })
    });
    if same {
        return Ok(());
    }
    let out = match out {
        Some(o) => Some(PyWeakrefReference::new(o)?.unbind()),
        None => None,
    };
    let last = Last {
        prep: prep.clone(),
        ctx,
        out,
        casting,
        order,
    };
    // Drop the previous one after the borrow ends (its weakref is a Python object).
    let old = LAST.with(|l| l.borrow_mut().replace(last));
    drop(old);
    let _ = py;
    Ok(())
}

/// Everything `evaluate` and `validate` share: check, resolve, compile, remember.
#[allow(clippy::too_many_arguments)]
fn prepare_call<'py>(
    py: Python<'py>,
    ex: &Bound<'py, PyAny>,
    local_dict: Option<Bound<'py, PyAny>>,
    global_dict: Option<Bound<'py, PyAny>>,
    out: Option<&Bound<'py, PyAny>>,
    order: &str,
    casting: &str,
    device: Option<&str>,
    optimize: bool,
    kwargs: Option<&Bound<'py, PyDict>>,
    default_depth: usize,
) -> PyResult<(Arc<Entry>, Args<'py>, char)> {
    let Ok(src) = ex.cast::<PyString>() else {
        return Err(PyTypeError::new_err(format!(
            "the expression must be a string, got {}",
            ex.get_type().name()?
        )));
    };
    let depth = check_numexpr_kwargs(kwargs)?;
    let order = check_order(order)?;
    let casting = check_casting(casting)?;
    if let Some(o) = out {
        check_out(o)?;
    }
    let ctx = ctx(parse_device(device)?, optimize);
    let prep = cache::prepared(py, src.to_str()?)?;
    let extra = depth.map_or(0, |d| d.saturating_sub(default_depth));
    let (local, global) = scope(py, local_dict, global_dict, extra)?;
    // numexpr remembers the expression before it can fail on the arguments.
    remember(py, &prep, ctx, out, casting, order)?;
    let args = resolve(py, &prep, local.as_ref(), global.as_ref())?;
    let entry = entry_for(py, &prep, ctx, &args)?;
    Ok((entry, args, order))
}

/// Evaluate a numexpr-syntax expression on NumPy arrays; see the `fusebox` package docs.
#[pyfunction]
#[pyo3(signature = (ex, local_dict=None, global_dict=None, out=None, order="K", casting="same_kind", *, device=None, optimize=true, **kwargs))]
#[allow(clippy::too_many_arguments)]
pub fn evaluate<'py>(
    py: Python<'py>,
    ex: &Bound<'py, PyAny>,
    local_dict: Option<Bound<'py, PyAny>>,
    global_dict: Option<Bound<'py, PyAny>>,
    out: Option<Bound<'py, PyAny>>,
    order: &str,
    casting: &str,
    device: Option<&str>,
    optimize: bool,
    kwargs: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyAny>> {
    let (entry, args, order) = prepare_call(
        py,
        ex,
        local_dict,
        global_dict,
        out.as_ref(),
        order,
        casting,
        device,
        optimize,
        kwargs,
        3,
    )?;
    run_entry(py, &entry, args, out.as_ref(), casting, order)
}

/// numexpr's `evaluate` (default `casting='safe'`, as numexpr's).
#[pyfunction]
#[pyo3(signature = (ex, local_dict=None, global_dict=None, out=None, order="K", casting="safe", *, device=None, optimize=true, **kwargs))]
#[allow(clippy::too_many_arguments)]
pub fn ne_evaluate<'py>(
    py: Python<'py>,
    ex: &Bound<'py, PyAny>,
    local_dict: Option<Bound<'py, PyAny>>,
    global_dict: Option<Bound<'py, PyAny>>,
    out: Option<Bound<'py, PyAny>>,
    order: &str,
    casting: &str,
    device: Option<&str>,
    optimize: bool,
    kwargs: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyAny>> {
    let (entry, args, order) = prepare_call(
        py,
        ex,
        local_dict,
        global_dict,
        out.as_ref(),
        order,
        casting,
        device,
        optimize,
        kwargs,
        3,
    )?;
    run_entry(py, &entry, args, out.as_ref(), casting, order)
}

/// Check and compile without running: None, or the exception `evaluate` would raise
/// (numexpr's contract). Afterwards `re_evaluate` runs it.
#[pyfunction]
#[pyo3(signature = (ex, local_dict=None, global_dict=None, out=None, order="K", casting="safe", *, device=None, optimize=true, **kwargs))]
#[allow(clippy::too_many_arguments)]
pub fn validate<'py>(
    py: Python<'py>,
    ex: &Bound<'py, PyAny>,
    local_dict: Option<Bound<'py, PyAny>>,
    global_dict: Option<Bound<'py, PyAny>>,
    out: Option<Bound<'py, PyAny>>,
    order: &str,
    casting: &str,
    device: Option<&str>,
    optimize: bool,
    kwargs: Option<&Bound<'py, PyDict>>,
) -> PyResult<Option<Py<PyAny>>> {
    match prepare_call(
        py,
        ex,
        local_dict,
        global_dict,
        out.as_ref(),
        order,
        casting,
        device,
        optimize,
        kwargs,
        2,
    ) {
        Ok(_) => Ok(None),
        Err(e) => Ok(Some(e.into_value(py).into_any())),
    }
}

/// Run the last expression this thread evaluated or validated again, with the arrays its names
/// are bound to now (and the same `out=`, if it is alive).
#[pyfunction]
#[pyo3(signature = (local_dict=None, global_dict=None, **kwargs))]
pub fn re_evaluate<'py>(
    py: Python<'py>,
    local_dict: Option<Bound<'py, PyAny>>,
    global_dict: Option<Bound<'py, PyAny>>,
    kwargs: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyAny>> {
    let depth = check_numexpr_kwargs(kwargs)?;
    let last = LAST.with(|l| {
        l.borrow().as_ref().map(|l| {
            (
                l.prep.clone(),
                l.ctx,
                l.out.as_ref().map(|o| o.clone_ref(py)),
                l.casting,
                l.order,
            )
        })
    });
    let Some((prep, ctx, out, casting, order)) = last else {
        return Err(PyRuntimeError::new_err(
            "no previous evaluate() or validate() in this thread: call one before re_evaluate()",
        ));
    };
    let out = match out {
        Some(w) => w.bind(py).upgrade(),
        None => None,
    };
    let extra = depth.map_or(0, |d| d.saturating_sub(2));
    let (local, global) = scope(py, local_dict, global_dict, extra)?;
    let args = resolve(py, &prep, local.as_ref(), global.as_ref())?;
    let entry = entry_for(py, &prep, ctx, &args)?;
    run_entry(py, &entry, args, out.as_ref(), casting, order)
}

/// The plan for `ex` on the arrays its names are bound to: text (`{:#}`: graph, kernels, bytes,
/// estimates per device) or the JSON form as a dict. A `fusebox.Expr` (Blaze's `Data(...)`
/// expressions, over arrays or a table's columns) explains itself (`Expr.explain`).
#[pyfunction]
#[pyo3(signature = (ex, local_dict=None, global_dict=None, *, device=None, optimize=true, json=false))]
#[allow(clippy::too_many_arguments)]
pub fn explain<'py>(
    py: Python<'py>,
    ex: Bound<'py, PyAny>,
    local_dict: Option<Bound<'py, PyAny>>,
    global_dict: Option<Bound<'py, PyAny>>,
    device: Option<&str>,
    optimize: bool,
    json: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let Ok(ex) = ex.extract::<String>() else {
        let expr_class = py.import("fusebox.table")?.getattr("Expr")?;
        if !ex.is_instance(&expr_class)? {
            return Err(PyTypeError::new_err(format!(
                "explain takes an expression string or a fusebox.Expr, not {}",
                ex.get_type().name()?
            )));
        }
        let kw = PyDict::new(py);
        kw.set_item("optimize", optimize)?;
        kw.set_item("device", device)?;
        kw.set_item("json", json)?;
        return ex.call_method("explain", (), Some(&kw));
    };
    let ex = ex.as_str();
    let ctx = ctx(parse_device(device)?, optimize);
    let prep = cache::prepared(py, ex)?;
    let (local, global) = scope(py, local_dict, global_dict, 0)?;
    let args = resolve(py, &prep, local.as_ref(), global.as_ref())?;
    let expr =
        crate::glue::build_expr(&prep.src, &prep.names, &args.sigs, &args.shapes()).py_err(py)?;
    let bindings: Vec<(&str, ArgView<'_>)> = prep
        .names
        .iter()
        .zip(&args.held)
        .filter_map(|(n, h)| h.as_ref().map(|h| (n.as_str(), h.view())))
        .collect();
    let s = cache::session(ctx);
    let e = py.detach(|| s.explain_with(&expr, &bindings)).py_err(py)?;
    if json {
        py.import("json")?.getattr("loads")?.call1((e.to_json(),))
    } else {
        Ok(PyString::new(py, &format!("{e:#}")).into_any())
    }
}

/// A compiled expression: a function of its names with fixed dtypes (`fusebox.compile`).
#[pyclass(name = "Compiled", module = "fusebox", frozen)]
pub struct PyCompiled {
    prep: Arc<Prepared>,
    params: Vec<(String, DType)>,
    /// For each name of the expression, its parameter (None: a constant name).
    param_of: Vec<Option<usize>>,
    device: Option<String>,
    optimize: bool,
}

impl PyCompiled {
    fn call_impl<'py>(
        &self,
        py: Python<'py>,
        args: &Bound<'py, PyTuple>,
        out: Option<Bound<'py, PyAny>>,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let n = self.params.len();
        if args.len() > n {
            return Err(PyTypeError::new_err(format!(
                "expected at most {n} arguments ({}), got {}",
                self.names_list(),
                args.len()
            )));
        }
        let mut values: Vec<Option<Bound<'py, PyAny>>> = args.iter().map(Some).collect();
        values.resize(n, None);
        if let Some(kw) = kwargs {
            for (k, v) in kw.iter() {
                let k: String = k.extract()?;
                let Some(i) = self.params.iter().position(|(p, _)| *p == k) else {
                    return Err(PyTypeError::new_err(format!(
                        "unexpected keyword argument '{k}' (parameters: {})",
                        self.names_list()
                    )));
                };
                if values[i].is_some() {
                    return Err(PyTypeError::new_err(format!(
                        "got multiple values for argument '{k}'"
                    )));
                }
                values[i] = Some(v);
            }
        }
        if let Some(o) = &out {
            check_out(o)?;
        }
        let np = crate::args::numpy_module(py)?;
        let mut held_params = Vec::with_capacity(n);
        for ((name, dt), v) in self.params.iter().zip(values) {
            let Some(v) = v else {
                return Err(PyTypeError::new_err(format!("missing argument '{name}'")));
            };
            let exact = v.cast::<numpy::PyUntypedArray>().ok().is_some_and(|a| {
                let d = a.dtype();
                crate::args::dtype_of(d.kind(), d.itemsize()) == Some(*dt)
            });
            let arr = if exact {
                v
            } else {
                match v.cast::<numpy::PyUntypedArray>() {
                    Ok(_) => {
                        let safe: bool = np
                            .getattr("can_cast")?
                            .call1((v.getattr("dtype")?, dt.name(), "safe"))?
                            .extract()?;
                        if !safe {
                            return Err(PyTypeError::new_err(format!(
                                "argument '{name}' of dtype {} cannot be cast safely to {dt}",
                                v.getattr("dtype")?
                            )));
                        }
                        np.getattr("asarray")?.call1((v, dt.name()))?
                    }
                    Err(_) => np.getattr("asarray")?.call1((v, dt.name()))?,
                }
            };
            match classify(py, name, &arr)? {
                Value::Array(h, _) => held_params.push(Some(h)),
                Value::Weak(_) => unreachable_weak()?,
            }
        }
        let mut sigs = Vec::with_capacity(self.param_of.len());
        let mut held: Vec<Option<Held<'py>>> = Vec::with_capacity(self.param_of.len());
        for p in &self.param_of {
            match p {
                Some(i) => {
                    let h = held_params[*i].take();
                    let ndim = h.as_ref().map_or(0, |h| h.shape().len());
                    sigs.push(ArgSig::Array(self.params[*i].1, ndim));
                    held.push(h);
                }
                None => {
                    sigs.push(ArgSig::Constant);
                    held.push(None);
                }
            }
        }
        let a = Args { sigs, held };
        let ctx = ctx(parse_device(self.device.as_deref())?, self.optimize);
        let entry = entry_for(py, &self.prep, ctx, &a)?;
        run_entry(py, &entry, a, out.as_ref(), "same_kind", 'K')
    }

    fn names_list(&self) -> String {
        self.params
            .iter()
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn unreachable_weak() -> PyResult<()> {
    Err(PyRuntimeError::new_err(
        "internal error: an array argument classified as a scalar",
    ))
}

#[pymethods]
impl PyCompiled {
    /// Call with one array per parameter (positionally in signature order, or by name);
    /// `out=` is written in place.
    #[pyo3(signature = (*args, out=None, **kwargs))]
    fn __call__<'py>(
        &self,
        py: Python<'py>,
        args: &Bound<'py, PyTuple>,
        out: Option<Bound<'py, PyAny>>,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.call_impl(py, args, out, kwargs)
    }

    /// The same as calling it (numexpr's `NumExpr.run`).
    #[pyo3(signature = (*args, out=None, **kwargs))]
    fn run<'py>(
        &self,
        py: Python<'py>,
        args: &Bound<'py, PyTuple>,
        out: Option<Bound<'py, PyAny>>,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.call_impl(py, args, out, kwargs)
    }

    /// The parameters as (name, dtype name) pairs, in call order.
    #[getter]
    fn signature(&self) -> Vec<(String, &'static str)> {
        self.params
            .iter()
            .map(|(n, d)| (n.clone(), d.name()))
            .collect()
    }

    /// The parameter names, in call order.
    #[getter]
    fn input_names(&self) -> Vec<String> {
        self.params.iter().map(|(n, _)| n.clone()).collect()
    }

    /// The expression.
    #[getter]
    fn source(&self) -> String {
        self.prep.src.clone()
    }

    fn __repr__(&self) -> String {
        let sig: Vec<String> = self
            .params
            .iter()
            .map(|(n, d)| format!("{n}: {d}"))
            .collect();
        format!(
            "fusebox.Compiled({:?}, [{}])",
            self.prep.src,
            sig.join(", ")
        )
    }

    /// Pickled as its source and signature; rebuilt (and compiled again) where unpickled.
    fn __reduce__<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyTuple>)> {
        let f = py.import("fusebox._core")?.getattr("_rebuild_compiled")?;
        let sig: Vec<(String, &str)> = self
            .params
            .iter()
            .map(|(n, d)| (n.clone(), d.name()))
            .collect();
        let args = (
            self.prep.src.clone(),
            sig,
            self.device.clone(),
            self.optimize,
        )
            .into_pyobject(py)?;
        Ok((f, args))
    }
}

/// `fusebox.compile`'s core: `params` are (name, dtype) pairs in call order.
#[pyfunction]
#[pyo3(signature = (ex, params, device=None, optimize=true))]
pub fn compile(
    py: Python<'_>,
    ex: &str,
    params: Vec<(String, Bound<'_, PyAny>)>,
    device: Option<String>,
    optimize: bool,
) -> PyResult<PyCompiled> {
    let prep = cache::prepared(py, ex)?;
    let mut typed = Vec::with_capacity(params.len());
    for (name, spec) in &params {
        if typed.iter().any(|(n, _): &(String, DType)| n == name) {
            return Err(PyValueError::new_err(format!(
                "parameter '{name}' appears twice in the signature"
            )));
        }
        typed.push((name.clone(), dtype_from_py(py, spec)?));
    }
    let mut param_of = Vec::with_capacity(prep.names.len());
    for (i, name) in prep.names.iter().enumerate() {
        match typed.iter().position(|(n, _)| n == name) {
            Some(p) => param_of.push(Some(p)),
            None if i >= prep.required => param_of.push(None),
            None => {
                return Err(PyKeyError::new_err(format!(
                    "`{name}` is used by the expression but is not in the signature"
                )))
            }
        }
    }
    parse_device(device.as_deref())?;
    Ok(PyCompiled {
        prep,
        params: typed,
        param_of,
        device,
        optimize,
    })
}

/// Unpickling support for [`PyCompiled`].
#[pyfunction]
#[pyo3(signature = (ex, params, device=None, optimize=true))]
pub fn _rebuild_compiled(
    py: Python<'_>,
    ex: &str,
    params: Vec<(String, Bound<'_, PyAny>)>,
    device: Option<String>,
    optimize: bool,
) -> PyResult<PyCompiled> {
    compile(py, ex, params, device, optimize)
}

/// Set the CPU threads new calls use (0: all cores); returns the previous setting.
#[pyfunction]
pub fn _set_threads(n: usize) -> usize {
    let old = cache::threads();
    cache::set_threads(n);
    old
}

/// The CPU threads setting (0: all cores).
#[pyfunction]
pub fn _get_threads() -> usize {
    cache::threads()
}

/// The counters of the session `device`/`optimize` calls use now (threads included).
#[pyfunction]
#[pyo3(signature = (device=None, optimize=true))]
pub fn stats<'py>(
    py: Python<'py>,
    device: Option<&str>,
    optimize: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let st = cache::session(ctx(parse_device(device)?, optimize)).stats();
    let d = PyDict::new(py);
    d.set_item("plans", st.plans)?;
    d.set_item("plans_reused", st.plans_reused)?;
    d.set_item("plans_resized", st.plans_resized)?;
    d.set_item("kernels_launched", st.kernels_launched)?;
    d.set_item("bytes_read", st.bytes_read)?;
    d.set_item("bytes_written", st.bytes_written)?;
    d.set_item("compilations", st.compilations)?;
    d.set_item("cache_hits", st.cache_hits)?;
    d.set_item("bytes_uploaded", st.bytes_uploaded)?;
    d.set_item("bytes_downloaded", st.bytes_downloaded)?;
    d.set_item("auto_cpu", st.auto_cpu)?;
    d.set_item("auto_gpu", st.auto_gpu)?;
    d.set_item("gpu_fallbacks", st.gpu_fallbacks)?;
    Ok(d)
}

/// The names `ex` uses, in order of first appearance (checks the syntax).
#[pyfunction]
pub fn names(py: Python<'_>, ex: &str) -> PyResult<Vec<String>> {
    let prep = cache::prepared(py, ex)?;
    Ok(prep.names[..prep.required].to_vec())
}
