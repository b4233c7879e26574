//! NumPy agreement: every case in `tests/golden/manifest.tsv` (written by
//! `tests/numpy/gen_golden.py` with NumPy 2.4) is built with the Rust `Expr` API, evaluated by
//! the reference evaluator, and compared with NumPy's saved result: dtype, shape and values
//! (`exact`: bitwise, NaN matches NaN, the sign of zero counts; `ulp:N`: at most N units in the
//! last place, NaN matches NaN, infinities must be equal). Where NumPy raises (or gives a dtype
//! fusebox does not have) fusebox must return an error.
//!
//! The test prints the measured maximum ULP distance per function and dtype, and fails with the
//! list of every mismatching case, not only the first.
use fusebox::unstable::reference;
use fusebox::{BinaryOp, Reduction, UnaryOp};
use fusebox::{DType, DynArray, Expr, Scalar};
use fusebox::{ExprKind, ReduceAxes};
use ndarray::{ArcArray, ArrayD, Axis, Dimension, IxDyn, Slice};
use ndarray_npy::{read_npy, ReadNpyError};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Tol {
    Exact,
    Ulp(u64),
}

struct Case {
    name: String,
    expr: String,
    sexpr: String,
    bindings: Vec<(String, String)>,
    expected: Option<String>,
    tol: Tol,
}

fn read_manifest(dir: &Path) -> Vec<Case> {
    let text = std::fs::read_to_string(dir.join("manifest.tsv"))
        .expect("manifest.tsv (run tests/numpy/gen_golden.py)");
    let mut cases = Vec::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(f.len(), 6, "manifest line: {line}");
        let bindings = if f[3] == "-" {
            vec![]
        } else {
            f[3].split(' ')
                .map(|b| {
                    let (k, v) = b.split_once('=').expect("binding name=path");
                    (k.to_string(), v.to_string())
                })
                .collect()
        };
        let tol = match f[5] {
            "exact" | "-" => Tol::Exact,
            t => Tol::Ulp(
                t.strip_prefix("ulp:")
                    .and_then(|n| n.parse().ok())
                    .expect(t),
            ),
        };
        cases.push(Case {
            name: f[0].to_string(),
            expr: f[1].to_string(),
            sexpr: f[2].to_string(),
            bindings,
            expected: (f[4] != "error").then(|| f[4].to_string()),
            tol,
        });
    }
    cases
}

/// Read a `.npy` of any fusebox dtype.
fn load(dir: &Path, rel: &str) -> DynArray {
    let path = dir.join(rel);
    fn try_read<T: fusebox::Element + ndarray_npy::ReadableElement>(
        p: &Path,
    ) -> Result<DynArray, ReadNpyError> {
        read_npy::<_, ArrayD<T>>(p).map(DynArray::from)
    }
    try_read::<f64>(&path)
        .or_else(|_| try_read::<f32>(&path))
        .or_else(|_| try_read::<i64>(&path))
        .or_else(|_| try_read::<i32>(&path))
        .or_else(|_| try_read::<bool>(&path))
        .or_else(|_| try_read::<i8>(&path))
        .or_else(|_| try_read::<i16>(&path))
        .or_else(|_| try_read::<u8>(&path))
        .or_else(|_| try_read::<u16>(&path))
        .or_else(|_| try_read::<u32>(&path))
        .or_else(|_| try_read::<u64>(&path))
        // float16: ndarray-npy has no element type for it; fusebox's reader (the bits through
        // ndarray-npy, see src/npy.rs).
        .or_else(|e| fusebox::npy::read_npy(&path).map_err(|_| e))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

// ---- S-expressions -> Expr -------------------------------------------------------------------

enum Sx {
    Atom(String),
    List(Vec<Sx>),
}

fn parse_sexpr(s: &str) -> Sx {
    let spaced = s.replace('(', " ( ").replace(')', " ) ");
    let mut tokens = spaced.split_whitespace().peekable();
    fn go<'a>(t: &mut std::iter::Peekable<impl Iterator<Item = &'a str>>) -> Sx {
        match t.next().expect("unexpected end of sexpr") {
            "(" => {
                let mut items = Vec::new();
                while t.peek() != Some(&")") {
                    items.push(go(t));
                }
                t.next();
                Sx::List(items)
            }
            atom => Sx::Atom(atom.to_string()),
        }
    }
    go(&mut tokens)
}

fn literal(atom: &str) -> Scalar {
    match atom {
        "True" => Scalar::Bool(true),
        "False" => Scalar::Bool(false),
        _ => match atom.parse::<i64>() {
            Ok(i) => Scalar::Int(i),
            Err(_) => Scalar::Float(atom.parse().unwrap_or_else(|_| panic!("literal {atom}"))),
        },
    }
}

/// Map a manifest expression onto the public Expr API.
fn build(sx: &Sx, data: &HashMap<String, Expr>) -> Expr {
    match sx {
        Sx::Atom(a) => match data.get(a) {
            Some(e) => e.clone(),
            None => Expr::literal(literal(a)),
        },
        Sx::List(items) => {
            let Some(Sx::Atom(head)) = items.first() else {
                panic!("sexpr head")
            };
            let args: Vec<&Sx> = items[1..].iter().collect();
            match head.as_str() {
                "where" => fusebox::where_(
                    build(args[0], data),
                    build(args[1], data),
                    build(args[2], data),
                ),
                "astype" => {
                    let Sx::Atom(d) = args[0] else {
                        panic!("astype dtype")
                    };
                    build(args[1], data).astype(DType::parse(d).expect("dtype"))
                }
                name if Reduction::from_name(name, 0).is_some() => reduction(name, &args, data),
                name => {
                    if let Some(op) = UnaryOp::ALL.iter().find(|o| o.name() == name) {
                        assert_eq!(args.len(), 1, "{name}");
                        Expr::unary(*op, build(args[0], data))
                    } else if let Some(op) = BinaryOp::ALL.iter().find(|o| o.name() == name) {
                        assert_eq!(args.len(), 2, "{name}");
                        Expr::binary(*op, build(args[0], data), build(args[1], data))
                    } else {
                        panic!("unknown op {name}")
                    }
                }
            }
        }
    }
}

/// `(NAME x [axis=1 | axis=[0,1] | axis=[]] [ddof=N] [keepdims])`: a reduction.
fn reduction(name: &str, args: &[&Sx], data: &HashMap<String, Expr>) -> Expr {
    let mut spec = ReduceAxes::all();
    let mut ddof = 0;
    for opt in &args[1..] {
        let Sx::Atom(opt) = opt else {
            panic!("{name}: options are atoms")
        };
        if opt == "keepdims" {
            spec.keepdims = true;
        } else if let Some(v) = opt.strip_prefix("ddof=") {
            ddof = v.parse().expect("ddof");
        } else if let Some(v) = opt.strip_prefix("axis=") {
            let list = v.trim_start_matches('[').trim_end_matches(']');
            spec.axes = Some(
                list.split(',')
                    .filter(|a| !a.is_empty())
                    .map(|a| a.parse().expect("axis"))
                    .collect(),
            );
        } else {
            panic!("{name}: unknown option {opt}");
        }
    }
    let r = Reduction::from_name(name, ddof).expect("reduction name");
    build(args[0], data).reduce_with(r, spec)
}

// ---- comparison ------------------------------------------------------------------------------

/// Distance in units in the last place, on the line of floats ordered by value (-0 and +0 are
/// one apart). `None` where the two cannot be compared by distance (NaN vs number, inf vs
/// anything else); both NaN or equal infinities give `Some(0)`.
fn ulp_f64(a: f64, b: f64) -> Option<u64> {
    if a.is_nan() || b.is_nan() {
        return (a.is_nan() && b.is_nan()).then_some(0);
    }
    if a.is_infinite() || b.is_infinite() {
        return (a == b).then_some(0);
    }
    let key = |x: f64| -> i128 {
        let bits = x.to_bits();
        let mag = (bits & !(1u64 << 63)) as i128;
        if bits >> 63 == 1 {
            -mag - 1
        } else {
            mag
        }
    };
    Some((key(a) - key(b)).unsigned_abs() as u64)
}

fn ulp_f32(a: f32, b: f32) -> Option<u64> {
    if a.is_nan() || b.is_nan() {
        return (a.is_nan() && b.is_nan()).then_some(0);
    }
    if a.is_infinite() || b.is_infinite() {
        return (a == b).then_some(0);
    }
    let key = |x: f32| -> i64 {
        let bits = x.to_bits();
        let mag = (bits & !(1u32 << 31)) as i64;
        if bits >> 31 == 1 {
            -mag - 1
        } else {
            mag
        }
    };
    Some((key(a) - key(b)).unsigned_abs())
}

fn ulp_f16(a: fusebox::f16, b: fusebox::f16) -> Option<u64> {
    if a.is_nan() || b.is_nan() {
        return (a.is_nan() && b.is_nan()).then_some(0);
    }
    if a.is_infinite() || b.is_infinite() {
        return (a == b).then_some(0);
    }
    let key = |x: fusebox::f16| -> i64 {
        let bits = x.to_bits();
        let mag = (bits & 0x7fff) as i64;
        if bits >> 15 == 1 {
            -mag - 1
        } else {
            mag
        }
    };
    Some((key(a) - key(b)).unsigned_abs())
}

/// Per element: `Ok(ulp)` if within tolerance, `Err(ulp or None)` otherwise. Values as strings
/// for the report.
struct ElemDiff {
    index: Vec<usize>,
    ours: String,
    numpy: String,
    ulp: Option<u64>,
}

struct Outcome {
    max_ulp: Option<u64>,
    bad: Vec<ElemDiff>,
}

fn compare(ours: &DynArray, numpy: &DynArray, tol: Tol) -> Outcome {
    let mut out = Outcome {
        max_ulp: None,
        bad: vec![],
    };
    let indices: Vec<Vec<usize>> = ndarray::indices(numpy.shape())
        .into_iter()
        .map(|i| i.as_array_view().to_vec())
        .collect();
    let mut note = |ix: &[usize], ok_exact: bool, ulp: Option<u64>, o: String, n: String| {
        if let Some(u) = ulp {
            out.max_ulp = Some(out.max_ulp.unwrap_or(0).max(u));
        }
        let ok = match tol {
            Tol::Exact => ok_exact,
            Tol::Ulp(n) => ulp.is_some_and(|u| u <= n),
        };
        if !ok {
            out.bad.push(ElemDiff {
                index: ix.to_vec(),
                ours: o,
                numpy: n,
                ulp,
            });
        }
    };
    macro_rules! each {
        ($variant:ident, |$x:ident, $y:ident| $exact:expr, $ulp:expr) => {
            if let (DynArray::$variant(a), DynArray::$variant(b)) = (ours, numpy) {
                for ix in &indices {
                    let ($x, $y) = (a[IxDyn(ix)], b[IxDyn(ix)]);
                    note(ix, $exact, $ulp, format!("{:?}", $x), format!("{:?}", $y));
                }
            }
        };
    }
    each!(
        F64,
        |x, y| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()),
        ulp_f64(x, y)
    );
    each!(
        F32,
        |x, y| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()),
        ulp_f32(x, y)
    );
    each!(
        F16,
        |x, y| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()),
        ulp_f16(x, y)
    );
    each!(I64, |x, y| x == y, None);
    each!(I8, |x, y| x == y, None);
    each!(I16, |x, y| x == y, None);
    each!(U8, |x, y| x == y, None);
    each!(U16, |x, y| x == y, None);
    each!(U32, |x, y| x == y, None);
    each!(U64, |x, y| x == y, None);
    each!(I32, |x, y| x == y, None);
    each!(Bool, |x, y| x == y, None);
    out
}

/// The element of input `a` that produced output element `ix` (NumPy broadcasting).
fn input_elem(a: &DynArray, ix: &[usize]) -> String {
    if a.ndim() > ix.len() {
        return format!("<{} elements reduced>", a.len());
    }
    let lead = ix.len() - a.ndim();
    let idx: Vec<usize> = a
        .shape()
        .iter()
        .enumerate()
        .map(|(k, &d)| if d == 1 { 0 } else { ix[lead + k] })
        .collect();
    let i = IxDyn(&idx);
    match a {
        DynArray::Bool(x) => format!("{:?}", x[i]),
        DynArray::I32(x) => format!("{:?}", x[i]),
        DynArray::I64(x) => format!("{:?}", x[i]),
        DynArray::I8(x) => format!("{:?}", x[i]),
        DynArray::I16(x) => format!("{:?}", x[i]),
        DynArray::U8(x) => format!("{:?}", x[i]),
        DynArray::U16(x) => format!("{:?}", x[i]),
        DynArray::U32(x) => format!("{:?}", x[i]),
        DynArray::U64(x) => format!("{:?}", x[i]),
        DynArray::F16(x) => format!("{:?}", x[i]),
        DynArray::F32(x) => format!("{:?}", x[i]),
        DynArray::F64(x) => format!("{:?}", x[i]),
    }
}

/// Check one engine (`eval`) against every golden case; returns the failure report lines and
/// the max ULP table.
/// The same values with other strides: axis 0 reversed (a negative stride) and every other
/// element of a buffer twice as long along the last axis. 0-d arrays are returned as they are.
fn strided_copy(a: &DynArray) -> DynArray {
    fn go<T: fusebox::Element>(a: &ArcArray<T, IxDyn>) -> DynArray {
        if a.ndim() == 0 {
            return DynArray::from(a.clone());
        }
        let last = a.ndim() - 1;
        let n0 = a.shape()[0];
        let mut shape = a.shape().to_vec();
        shape[last] *= 2;
        let mut big = ArrayD::<T>::default(IxDyn(&shape));
        for (ix, &v) in a.indexed_iter() {
            let mut j = ix.as_array_view().to_vec();
            j[0] = n0 - 1 - j[0];
            j[last] *= 2;
            big[IxDyn(&j)] = v;
        }
        let mut big = big.into_shared();
        big.slice_each_axis_inplace(|ax| {
            if ax.axis.index() == last {
                Slice::new(0, None, 2)
            } else {
                Slice::from(..)
            }
        });
        big.invert_axis(Axis(0));
        debug_assert_eq!(big.shape(), a.shape()); // values: see the unit test (NaN != NaN)
        DynArray::from(big)
    }
    match a {
        DynArray::Bool(x) => go(x),
        DynArray::I32(x) => go(x),
        DynArray::I64(x) => go(x),
        DynArray::I8(x) => go(x),
        DynArray::I16(x) => go(x),
        DynArray::U8(x) => go(x),
        DynArray::U16(x) => go(x),
        DynArray::U32(x) => go(x),
        DynArray::U64(x) => go(x),
        DynArray::F16(x) => go(x),
        DynArray::F32(x) => go(x),
        DynArray::F64(x) => go(x),
    }
}

/// Per function and result dtype: (max ULP measured, tolerance applied, elements where NaN or
/// infinity disagreed and no distance applies).
type UlpTable = BTreeMap<(String, DType), (u64, Tol, usize)>;

fn check_all(
    dir: &Path,
    strided: bool,
    eval: &dyn Fn(&Expr) -> fusebox::Result<DynArray>,
) -> (Vec<String>, UlpTable, usize) {
    let cases = read_manifest(dir);
    let mut cache: HashMap<String, DynArray> = HashMap::new();
    let mut failures = Vec::new();
    let mut table: UlpTable = BTreeMap::new();
    for case in &cases {
        let mut data = HashMap::new();
        let mut inputs = Vec::new();
        for (sym, path) in &case.bindings {
            let arr = cache
                .entry(path.clone())
                .or_insert_with(|| load(dir, path))
                .clone();
            let arr = if strided { strided_copy(&arr) } else { arr };
            inputs.push((sym.clone(), arr.clone()));
            data.insert(sym.clone(), Expr::data(arr, Some(sym)));
        }
        let expr = build(&parse_sexpr(&case.sexpr), &data);
        // A lone weak literal folded away from a node would mean the builder lost structure.
        debug_assert!(!matches!(expr.kind(), ExprKind::Literal(_)) || case.bindings.is_empty());
        let result = eval(&expr);
        let head = format!("{} `{}`", case.name, case.expr);
        let Some(expected_path) = &case.expected else {
            match result {
                Ok(r) => failures.push(format!(
                    "{head}: NumPy raises, fusebox gave {} {:?}: {r}",
                    r.dtype(),
                    r.shape()
                )),
                Err(_) => {
                    if expr.meta().is_ok() {
                        failures.push(format!("{head}: evaluation fails but Expr::meta() is Ok"));
                    }
                }
            }
            continue;
        };
        let expected = cache
            .entry(expected_path.clone())
            .or_insert_with(|| load(dir, expected_path))
            .clone();
        let ours = match result {
            Ok(r) => r,
            Err(e) => {
                failures.push(format!(
                    "{head}: NumPy gives {} {:?}, fusebox errors: {e}",
                    expected.dtype(),
                    expected.shape()
                ));
                continue;
            }
        };
        if let Ok(m) = expr.meta() {
            if m.dtype != expected.dtype() || m.shape != expected.shape() {
                failures.push(format!(
                    "{head}: Expr::meta() infers {} {:?}, NumPy gives {} {:?}",
                    m.dtype,
                    m.shape,
                    expected.dtype(),
                    expected.shape()
                ));
            }
        }
        if ours.dtype() != expected.dtype() || ours.shape() != expected.shape() {
            failures.push(format!(
                "{head}: fusebox gives {} {:?}, NumPy gives {} {:?}",
                ours.dtype(),
                ours.shape(),
                expected.dtype(),
                expected.shape()
            ));
            continue;
        }
        let tol = case.tol;
        let outcome = compare(&ours, &expected, tol);
        if let Tol::Ulp(_) = case.tol {
            let op = case.name.split("__").next().unwrap_or("?").to_string();
            let entry = table
                .entry((op, expected.dtype()))
                .or_insert((0, case.tol, 0));
            entry.0 = entry.0.max(outcome.max_ulp.unwrap_or(0));
            entry.2 += outcome.bad.iter().filter(|d| d.ulp.is_none()).count();
        }
        if !outcome.bad.is_empty() {
            let mut msg = format!(
                "{head} [{}, {:?}]: {} of {} elements differ",
                expected.dtype(),
                tol,
                outcome.bad.len(),
                expected.len()
            );
            for d in outcome.bad.iter().take(6) {
                let args: Vec<String> = inputs
                    .iter()
                    .map(|(s, a)| format!("{s}={}", input_elem(a, &d.index)))
                    .collect();
                msg.push_str(&format!(
                    "\n      at {:?} ({}): numpy {} ours {}{}",
                    d.index,
                    args.join(", "),
                    d.numpy,
                    d.ours,
                    d.ulp.map(|u| format!(" ({u} ulp)")).unwrap_or_default()
                ));
            }
            failures.push(msg);
        }
    }
    (failures, table, cases.len())
}

fn report(engine: &str, failures: &[String], table: &UlpTable, n: usize) {
    eprintln!("{engine}: max ULP distance to NumPy per function and result dtype:");
    eprintln!(
        "  {:<10} {:<8} {:>8} {:>8} {:>14}",
        "function", "dtype", "max ulp", "allowed", "nan/inf wrong"
    );
    for ((op, dt), (max, tol, wrong)) in table {
        let allowed = match tol {
            Tol::Ulp(n) => n.to_string(),
            Tol::Exact => "0".into(),
        };
        eprintln!(
            "  {op:<10} {:<8} {max:>8} {allowed:>8} {wrong:>14}",
            dt.name()
        );
    }
    eprintln!("{engine}: {n} cases, {} failing", failures.len());
    for f in failures {
        eprintln!("  FAIL {f}");
    }
}

/// Known, deliberate differences from NumPy, each with its reason. Each entry is a case-name
/// pattern (`*` matches any run) and the explanation. They are printed on every run; a pattern that no longer matches any failing case
/// fails the test, so the list cannot go stale: delete the entry when the fix lands.
/// Every engine: the findings in `semantics.rs` and `expr.rs` show up in all of them.
const REF: &[&str] = &["reference", "cpu-jit", "cpu-jit-unfused"];
const JIT: &[&str] = &["cpu-jit", "cpu-jit-unfused"];
const KNOWN_FINDINGS: &[(&[&str], &str, &str)] = &[
    (
        JIT,
        "sum__f*",
        "deliberate: the JIT sums floats pairwise in fixed 128-element blocks and 65,536-element \
         chunks (the same bits for any thread count), not in NumPy's buffer order, so sums differ \
         from np.sum in the last bits (f64 n=1000: 12 ULP). Accuracy, not order, is the contract: \
         tests/differential.rs bounds the error by eps * sum|x| and src/cpu/tests.rs checks an \
         f32 sum of 1e7 values within 1e-7 of the f64 result (float32 accumulates in float64)",
    ),
    (
        JIT,
        "compound__sum_mul",
        "deliberate: the same summation order as `sum__f*`",
    ),
    (
        JIT,
        "red_sum__f*",
        "deliberate: the JIT's float summation order (see `sum__f*`) along axes too",
    ),
    (
        JIT,
        "red_prod__f*",
        "deliberate: the JIT multiplies floats in its own order (per-thread and per-block \
         partial products), not NumPy's left-to-right order; last-bit differences",
    ),
    (
        JIT,
        "red_mean__*",
        "deliberate: mean is a sum (the JIT's order) divided by the count",
    ),
    (
        JIT,
        "red_var*",
        "deliberate: var is two sums in the JIT's order (NumPy's two-pass algorithm)",
    ),
    (
        JIT,
        "red_std*",
        "deliberate: std is sqrt(var), two sums in the JIT's order",
    ),
    (
        JIT,
        "red_done__*",
        "deliberate: the done-when expressions contain float sums (the JIT's order)",
    ),
    (
        REF,
        "where__*w3000000000*",
        "deliberate: np.where(c, int32_array, 3000000000) silently wraps the literal to int32 in \
         NumPy 2.4 (-1294967296), against NEP 50's rule that out-of-range Python ints are an \
         error; fusebox returns IntegerOverflow, as NumPy does for every other operator",
    ),
];

fn glob(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let mut rest = name;
    for (i, p) in parts.iter().enumerate() {
        if i == 0 {
            match rest.strip_prefix(p) {
                Some(r) => rest = r,
                None => return false,
            }
        } else if i == parts.len() - 1 {
            return rest.ends_with(p);
        } else {
            match rest.find(p) {
                Some(k) => rest = &rest[k + p.len()..],
                None => return false,
            }
        }
    }
    rest.is_empty()
}

/// Split failures into unexpected ones and known findings; stale findings count as unexpected.
fn triage(engine: &str, failures: Vec<String>) -> (Vec<String>, Vec<String>) {
    triage_with(KNOWN_FINDINGS, engine, failures)
}

fn triage_with(
    findings: &[(&[&str], &str, &str)],
    engine: &str,
    failures: Vec<String>,
) -> (Vec<String>, Vec<String>) {
    let mut unexpected = Vec::new();
    let mut known = Vec::new();
    let mine = |k: usize| findings[k].0.contains(&engine);
    let mut used: Vec<bool> = (0..findings.len()).map(|k| !mine(k)).collect();
    for f in failures {
        let name = f.split(' ').next().unwrap_or("");
        let hit = (0..findings.len()).find(|&k| mine(k) && glob(findings[k].1, name));
        match hit {
            Some(k) => {
                used[k] = true;
                known.push(f);
            }
            None => unexpected.push(f),
        }
    }
    for ((_, pattern, _), used) in findings.iter().zip(used) {
        if !used {
            unexpected.push(format!(
                "known finding `{pattern}` no longer fails: remove it from KNOWN_FINDINGS"
            ));
        }
    }
    (unexpected, known)
}

#[test]
fn reference_evaluator_agrees_with_numpy() {
    let (failures, table, n) = check_all(&golden_dir(), false, &|e| {
        reference::evaluate(e, &HashMap::new())
    });
    let (unexpected, known) = triage("reference", failures);
    report("reference", &unexpected, &table, n);
    eprintln!("reference: {} cases hit known findings:", known.len());
    for (_, pattern, finding) in KNOWN_FINDINGS {
        eprintln!("  KNOWN `{pattern}`: {finding}");
    }
    for k in &known {
        eprintln!("  known: {k}");
    }
    assert!(n > 1000, "manifest looks truncated: {n} cases");
    assert!(
        unexpected.is_empty(),
        "{} of {n} golden cases disagree with NumPy:\n{}",
        unexpected.len(),
        unexpected.join("\n")
    );
}

/// Run every case on `eval` (`engine` names it for the known findings); `strided` rebinds
/// every input with other strides (see [`strided_copy`]): the results must not change.
fn check_engine(engine: &str, strided: bool, eval: &dyn Fn(&Expr) -> fusebox::Result<DynArray>) {
    let (failures, table, n) = check_all(&golden_dir(), strided, eval);
    let (unexpected, known) = triage(engine, failures);
    let label = if strided {
        format!("{engine} (strided inputs)")
    } else {
        engine.to_string()
    };
    let engine = label.as_str();
    report(engine, &unexpected, &table, n);
    eprintln!("{engine}: {} cases hit known findings", known.len());
    for k in &known {
        eprintln!("  known: {k}");
    }
    assert!(
        unexpected.is_empty(),
        "{} of {n} golden cases disagree with NumPy on {engine}:\n{}",
        unexpected.len(),
        unexpected.join("\n")
    );
}

// ---- the integer dtypes of issue 17 (tests/golden_ints, `gen_golden.py --ints`) ----------

fn golden_ints_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden_ints")
}

/// Known differences on the integer fixtures (none so far; same rules as [`KNOWN_FINDINGS`]).
const KNOWN_INT_FINDINGS: &[(&[&str], &str, &str)] = &[];

/// Every int8/int16/uint8/uint16/uint32/uint64 case (and their pairs with every other dtype)
/// on `eval`, exact against NumPy (integers and the float results of mixed pairs).
fn check_ints(engine: &str, strided: bool, eval: &dyn Fn(&Expr) -> fusebox::Result<DynArray>) {
    let (failures, table, n) = check_all(&golden_ints_dir(), strided, eval);
    let (unexpected, _known) = triage_with(KNOWN_INT_FINDINGS, engine, failures);
    report(engine, &unexpected, &table, n);
    assert!(n > 4000, "manifest looks truncated: {n} cases");
    assert!(
        unexpected.is_empty(),
        "{} of {n} integer-dtype golden cases disagree with NumPy on {engine} (strided: \
         {strided}):\n{}",
        unexpected.len(),
        unexpected.join("\n")
    );
}

#[test]
fn int_dtypes_reference_agrees_with_numpy() {
    check_ints("reference", false, &|e| {
        reference::evaluate(e, &HashMap::new())
    });
}

#[test]
fn int_dtypes_cpu_jit_agrees_with_numpy() {
    let session = fusebox::Session::new();
    check_ints("cpu-jit", false, &|e| session.compute(e));
}

#[test]
fn int_dtypes_cpu_jit_unfused_agrees_with_numpy() {
    let options = fusebox::Options::default().with_optimize(false);
    let session = fusebox::Session::with_options(options);
    check_ints("cpu-jit-unfused", false, &|e| session.compute(e));
}

#[test]
fn int_dtypes_cpu_jit_on_strided_inputs_agrees_with_numpy() {
    let session = fusebox::Session::new();
    check_ints("cpu-jit", true, &|e| session.compute(e));
}

// ---- float16 (tests/golden_f16, `gen_golden.py --f16`) -----------------------------------

fn golden_f16_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden_f16")
}

/// Known differences on the float16 fixtures (same rules as [`KNOWN_FINDINGS`]).
const KNOWN_F16_FINDINGS: &[(&[&str], &str, &str)] = &[
    (
        JIT,
        "red_sum__f16_red*",
        "NumPy's float16 reduction rounds its float16 output after each inner run, so along an \
         outer axis (axis=0 of a matrix) it rounds after every row; the JIT accumulates the \
         float16 values in float32 and rounds once (the reference follows NumPy exactly). \
         Sums along the contiguous axis and of everything agree to the bit",
    ),
    (
        JIT,
        "red_prod__f16_red*",
        "the same per-row rounding as `red_sum__f16_red*`; NumPy's intermediate rounding can \
         even overflow to inf where the float32 product does not",
    ),
    (
        JIT,
        "red_var*__f16_red*",
        "var of float16 is NumPy's float16 sums (rounded per row along outer axes, see \
         `red_sum__f16_red*`)",
    ),
    (
        JIT,
        "red_std*__f16_red*",
        "std is sqrt(var): the same float16 sums",
    ),
    (
        JIT,
        "red_min__f16_red_edges2d_a0",
        "NumPy's float16 minimum keeps the first of equal values (0.0 before -0.0); the JIT \
         reduces in float32, whose loop keeps the later one: only the sign of a zero differs",
    ),
];

/// Every float16 case (and its pairs with every other dtype) on `eval`: arithmetic exact
/// against NumPy, functions within 1 float16 ULP.
fn check_f16(engine: &str, strided: bool, eval: &dyn Fn(&Expr) -> fusebox::Result<DynArray>) {
    let (failures, table, n) = check_all(&golden_f16_dir(), strided, eval);
    let (unexpected, _known) = triage_with(KNOWN_F16_FINDINGS, engine, failures);
    report(engine, &unexpected, &table, n);
    assert!(n > 1400, "manifest looks truncated: {n} cases");
    assert!(
        unexpected.is_empty(),
        "{} of {n} float16 golden cases disagree with NumPy on {engine} (strided: \
         {strided}):\n{}",
        unexpected.len(),
        unexpected.join("\n")
    );
}

#[test]
fn f16_reference_agrees_with_numpy() {
    check_f16("reference", false, &|e| {
        reference::evaluate(e, &HashMap::new())
    });
}

#[test]
fn f16_cpu_jit_agrees_with_numpy() {
    let session = fusebox::Session::new();
    check_f16("cpu-jit", false, &|e| session.compute(e));
}

#[test]
fn f16_cpu_jit_unfused_agrees_with_numpy() {
    let options = fusebox::Options::default().with_optimize(false);
    let session = fusebox::Session::with_options(options);
    check_f16("cpu-jit-unfused", false, &|e| session.compute(e));
}

#[test]
fn f16_cpu_jit_on_strided_inputs_agrees_with_numpy() {
    let session = fusebox::Session::new();
    check_f16("cpu-jit", true, &|e| session.compute(e));
}

#[test]
fn cpu_jit_unfused_agrees_with_numpy() {
    let options = fusebox::Options::default().with_optimize(false);
    let session = fusebox::Session::with_options(options);
    check_engine("cpu-jit-unfused", false, &|e| session.compute(e));
}

#[test]
fn cpu_jit_agrees_with_numpy() {
    let session = fusebox::Session::new();
    check_engine("cpu-jit", false, &|e| session.compute(e));
}

#[test]
fn reference_on_strided_inputs_agrees_with_numpy() {
    check_engine("reference", true, &|e| {
        reference::evaluate(e, &HashMap::new())
    });
}

#[test]
fn cpu_jit_on_strided_inputs_agrees_with_numpy() {
    let session = fusebox::Session::new();
    check_engine("cpu-jit", true, &|e| session.compute(e));
}

#[test]
fn strided_copy_keeps_values_and_changes_strides() {
    let a = DynArray::from(ndarray::arr2(&[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]));
    let b = strided_copy(&a);
    assert_eq!(a, b);
    assert_eq!(b.strides(), &[-6, 2]);
}

/// A wider ULP survey than the committed fixtures allow (200,000 inputs per function):
/// `/tmp/pv/bin/python tests/numpy/gen_golden.py --survey DIR`, then
/// `FUSEBOX_ULP_SURVEY=DIR cargo test --test golden_numpy -- --ignored --nocapture`.
#[test]
#[ignore = "needs a survey directory written by gen_golden.py --survey"]
fn ulp_survey() {
    let Some(dir) = std::env::var_os("FUSEBOX_ULP_SURVEY") else {
        panic!("set FUSEBOX_ULP_SURVEY to the directory gen_golden.py --survey wrote");
    };
    let dir = PathBuf::from(dir);
    let (failures, table, n) = check_all(&dir, false, &|e| reference::evaluate(e, &HashMap::new()));
    report("survey reference", &failures, &table, n);
    let session = fusebox::Session::new();
    let (failures, table, n) = check_all(&dir, false, &|e| session.compute(e));
    report("survey cpu-jit", &failures, &table, n);
}

#[test]
fn glob_patterns() {
    assert!(glob("maximum__*", "maximum__f64_f64"));
    assert!(!glob("maximum__*", "minimum__f64_f64"));
    assert!(glob("*__i32_w3000000000", "eq__i32_w3000000000"));
    assert!(!glob("*__i32_w3000000000", "eq__i64_w3000000000"));
    assert!(glob("where__*w3000000000*", "where__w3000000000_i32"));
    assert!(glob("where__*w3000000000*", "where__i32_w3000000000"));
}

#[test]
fn ulp_distance_is_symmetric_and_counts_zero_signs() {
    assert_eq!(ulp_f64(1.0, 1.0 + f64::EPSILON), Some(1));
    assert_eq!(ulp_f64(1.0 + f64::EPSILON, 1.0), Some(1));
    assert_eq!(ulp_f64(0.0, -0.0), Some(1));
    assert_eq!(ulp_f64(f64::NAN, f64::NAN), Some(0));
    assert_eq!(ulp_f64(f64::INFINITY, f64::MAX), None);
    assert_eq!(ulp_f32(-1.0, -1.0 - f32::EPSILON), Some(1));
    assert_eq!(ulp_f32(f32::NAN, 1.0), None);
}
