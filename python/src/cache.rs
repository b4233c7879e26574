//! What the bindings keep between calls, so that a repeated `evaluate` costs a dictionary
//! lookup, a few comparisons and the kernel call:
//!
//! - one [`Session`] per (device, threads, optimize) ([`session`]): each owns its JIT cache
//!   and thread pool;
//! - per expression string a [`Prepared`] (its names, checked for syntax once), holding the
//!   [`Entry`]s compiled for each signature: the session and, per name, the dtype and rank of
//!   its array or the value of its weak scalar. A weak scalar's value is part of the
//!   signature because fusebox folds it into the kernel as a constant (NEP 50 types it by its
//!   context); a new value compiles a new kernel (about a millisecond), so pass a NumPy scalar
//!   (`np.float64(v)`, a strong 0-d array) for a value that changes on every call.
//!   Shapes are not in the signature: a [`Compiled`] re-plans for new shapes (microseconds).
//!
//! Both levels are bounded: at most [`MAX_EXPRESSIONS`] strings (the map is emptied when
//! full, as numexpr's cache is) and [`MAX_ENTRIES`] signatures per string (oldest dropped).
use crate::errors::IntoPy;
use crate::glue;
use fusebox::{Compiled, DType, Device, Options, Scalar, Session};
use pyo3::prelude::*;
use pyo3::types::PyString;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

pub const MAX_EXPRESSIONS: usize = 512;
pub const MAX_ENTRIES: usize = 16;

/// How a call runs: where, on how many CPU threads (0: all cores), fused or not.
#[derive(Clone, Copy, PartialEq, Debug)]
pub struct Ctx {
    pub device: Device,
    pub threads: usize,
    pub optimize: bool,
}

static THREADS: AtomicUsize = AtomicUsize::new(0);

/// The thread count new calls use (0: all cores); `set_num_threads` changes it.
pub fn threads() -> usize {
    THREADS.load(Ordering::Relaxed)
}

pub fn set_threads(n: usize) {
    THREADS.store(n, Ordering::Relaxed)
}

/// The session for `ctx` (made on first use, then shared by every call and thread).
pub fn session(ctx: Ctx) -> Session {
    static SESSIONS: OnceLock<Mutex<Vec<(Ctx, Session)>>> = OnceLock::new();
    let mut all = SESSIONS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some((_, s)) = all.iter().find(|(c, _)| *c == ctx) {
        return s.clone();
    }
    let s = Session::with_options(
        Options::default()
            .with_device(ctx.device)
            .with_threads(ctx.threads)
            .with_optimize(ctx.optimize),
    );
    all.push((ctx, s.clone()));
    s
}

/// What one name is bound to, as far as compiling cares.
#[derive(Clone, PartialEq, Debug)]
pub enum ArgSig {
    /// An array of this dtype and rank.
    Array(DType, usize),
    /// A weak scalar; floats compare by their bits (so NaN matches NaN).
    Weak(WeakKey),
    /// A constant name (`pi`, `e`, `nan`, `inf`) the caller did not bind: the constant.
    Constant,
}

#[derive(Clone, Copy, PartialEq, Debug)]
pub enum WeakKey {
    Bool(bool),
    Int(i64),
    Float(u64),
}

impl WeakKey {
    pub fn of(s: Scalar) -> WeakKey {
        match s {
            Scalar::Bool(b) => WeakKey::Bool(b),
            Scalar::Int(i) => WeakKey::Int(i),
            Scalar::Float(f) => WeakKey::Float(f.to_bits()),
        }
    }
    pub fn scalar(self) -> Scalar {
        match self {
            WeakKey::Bool(b) => Scalar::Bool(b),
            WeakKey::Int(i) => Scalar::Int(i),
            WeakKey::Float(f) => Scalar::Float(f64::from_bits(f)),
        }
    }
}

/// One compiled signature of an expression.
pub struct Entry {
    pub ctx: Ctx,
    pub args: Vec<ArgSig>,
    pub compiled: Compiled,
    /// For each parameter of `compiled` (in call order), the index of its name in
    /// [`Prepared::names`].
    pub order: Vec<usize>,
    /// The value of an expression that folded to a weak literal (`2 * 3`, `a + 1` with `a`
    /// a Python number): written into `out=` with NumPy's rules for Python scalars.
    pub weak_result: Option<Scalar>,
}

/// An expression string, its names, and its compiled signatures.
pub struct Prepared {
    pub src: String,
    /// The names to resolve, in order of first appearance; then the constant names the
    /// string uses, which resolve to the constant when the caller does not bind them.
    pub names: Vec<String>,
    /// How many of `names` must be bound (the rest are constant names).
    pub required: usize,
    pub py_names: Vec<Py<PyString>>,
    entries: Mutex<Vec<Arc<Entry>>>,
}

impl Prepared {
    /// The entry compiled for `ctx` and `args`, if any.
    pub fn find(&self, ctx: Ctx, args: &[ArgSig]) -> Option<Arc<Entry>> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .iter()
            .find(|e| e.ctx == ctx && e.args == args)
            .cloned()
    }

    /// Compile `args` (whose arrays have the given shapes) for `ctx`, and keep it.
    pub fn compile(
        &self,
        py: Python<'_>,
        ctx: Ctx,
        args: &[ArgSig],
        shapes: &[&[usize]],
    ) -> PyResult<Arc<Entry>> {
        let expr = glue::build_expr(&self.src, &self.names, args, shapes).py_err(py)?;
        let weak_result = expr.meta().ok().and_then(|m| m.weak);
        let s = session(ctx);
        let compiled = py.detach(|| s.compile(&expr)).py_err(py)?;
        let order = compiled
            .params()
            .iter()
            .map(|(name, _)| {
                self.names.iter().position(|n| n == name).ok_or_else(|| {
                    pyo3::exceptions::PyRuntimeError::new_err(format!(
                        "compiled parameter `{name}` is not a name of the expression"
                    ))
                })
            })
            .collect::<PyResult<Vec<_>>>()?;
        let entry = Arc::new(Entry {
            ctx,
            args: args.to_vec(),
            compiled,
            order,
            weak_result,
        });
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.remove(0);
        }
        entries.push(entry.clone());
        Ok(entry)
    }
}

/// The prepared form of `src` (its names checked and listed once per string).
pub fn prepared(py: Python<'_>, src: &str) -> PyResult<Arc<Prepared>> {
    static MAP: OnceLock<Mutex<HashMap<String, Arc<Prepared>>>> = OnceLock::new();
    let map = MAP.get_or_init(Default::default);
    if let Some(p) = map
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(src)
        .cloned()
    {
        return Ok(p);
    }
    let mut names = fusebox::parse::names(src).py_err(py)?;
    let required = names.len();
    names.extend(glue::constant_names(src));
    let py_names = names
        .iter()
        .map(|n| PyString::intern(py, n).unbind())
        .collect();
    let p = Arc::new(Prepared {
        src: src.to_string(),
        names,
        required,
        py_names,
        entries: Mutex::new(Vec::new()),
    });
    let mut m = map.lock().unwrap_or_else(|p| p.into_inner());
    if m.len() >= MAX_EXPRESSIONS {
        m.clear();
    }
    m.insert(src.to_string(), p.clone());
    Ok(p)
}
