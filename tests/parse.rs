//! The string front end against Rust-built expressions: precedence (compared structurally, fully
//! parenthesized), error kinds and columns, printing/parsing round trips, nesting limits.
use fusebox::parse::{names, parse};
use fusebox::ExprKind;
use fusebox::{where_, DType, Error, Expr};
use fusebox::{ReduceOp, Reduction};

fn sym(name: &str) -> Option<Expr> {
    Some(match name {
        "x" | "y" | "z" => Expr::symbol(name, DType::F64, &[3]),
        "f" => Expr::symbol(name, DType::F32, &[3]),
        "i" | "j" => Expr::symbol(name, DType::I64, &[3]),
        "b" | "c" => Expr::symbol(name, DType::Bool, &[3]),
        "m" => Expr::symbol(name, DType::F64, &[2, 3]),
        "w" => Expr::symbol(name, DType::F64, &[4]),
        _ => return None,
    })
}
fn s(name: &str) -> Expr {
    sym(name).unwrap()
}

/// Fully parenthesized structure: the oracle for precedence (independent of `Display`).
fn tree(e: &Expr) -> String {
    match e.kind() {
        ExprKind::Symbol(n) => n.clone(),
        ExprKind::Data { name, .. } => format!("data:{}", name.as_deref().unwrap_or("?")),
        ExprKind::Literal(v) => format!("{v:?}"),
        ExprKind::Unary(op, x) => format!("({op} {})", tree(x)),
        ExprKind::Binary(op, a, b) => format!("({op} {} {})", tree(a), tree(b)),
        ExprKind::Where(c, a, b) => format!("(where {} {} {})", tree(c), tree(a), tree(b)),
        ExprKind::Cast(d, x) => format!("(astype {} {d})", tree(x)),
        ExprKind::Reduce(r, x, spec) => format!("({r:?} {spec:?} {})", tree(x)),
        ExprKind::View(op, x) => format!("({op:?} {})", tree(x)),
    }
}

fn p(src: &str) -> Expr {
    parse(src, &sym).unwrap_or_else(|e| panic!("{src}: {e}"))
}

fn check(src: &str, built: Expr) {
    assert_eq!(tree(&p(src)), tree(&built), "{src}");
}

#[test]
fn precedence_follows_python() {
    let (x, y, i, j, b, c) = (s("x"), s("y"), s("i"), s("j"), s("b"), s("c"));
    check("x + y * 2", &x + &y * 2i64);
    check("x - y - 1", (&x - &y) - 1i64);
    check("x / y * 2.5", (&x / &y) * 2.5);
    check("x // 2 % 3", x.floor_div(2i64) % 3i64);
    check("-x ** 2", -(x.pow(2i64)));
    check("-x * y", (-&x) * &y);
    check("2 * -x", 2i64 * -&x);
    check("x ** y ** 2", x.pow(y.pow(2i64)));
    check("(x ** y) ** 2", x.pow(&y).pow(2i64));
    check("x ** -y ** 2", x.pow(-(y.pow(2i64))));
    check("2 ** -1", Expr::from(0.5));
    check("-2 ** 2", Expr::from(-4i64));
    check("+x", x.clone());
    check("i << 1 + 1", &i << 2i64);
    check("i & j | i ^ j", (&i & &j) | (&i ^ &j));
    check("i | j ^ i & j", &i | (&j ^ (&i & &j)));
    check("~b & c", !&b & &c);
    check("~~b", !!&b);
    // Comparisons bind looser than bitwise operators, as in Python and numexpr:
    check("i == 1 | 2", i.eq_(3i64));
    check("(x > 0) & (y <= 1)", x.gt(0i64) & y.le(1i64));
    check("x + 1 >= y * 2", (&x + 1i64).ge(&y * 2i64));
    check("(x < y) < 1", x.lt(&y).lt(1i64));
    check("x != y", x.ne_(&y));
}

#[test]
fn literals_and_constants() {
    let x = s("x");
    check("1.", Expr::from(1.0));
    check(".5", Expr::from(0.5));
    check("1e-3", Expr::from(1e-3));
    check("1E+3", Expr::from(1e3));
    check("42", Expr::from(42i64));
    check("True", Expr::from(true));
    check("False | True", Expr::from(true));
    check("pi", Expr::from(std::f64::consts::PI));
    check("2 * e", Expr::from(2.0 * std::f64::consts::E));
    check("-9223372036854775808", Expr::from(i64::MIN));
    check("x * nan + inf", &x * f64::NAN + f64::INFINITY);
    // A binding wins over the constant.
    let e = parse("e + 1", &|n| (n == "e").then(|| s("x"))).unwrap();
    assert_eq!(tree(&e), tree(&(s("x") + 1i64)));
}

#[test]
fn functions() {
    let (x, y, i) = (s("x"), s("y"), s("i"));
    check("where(x > 0, x, -x)", where_(x.gt(0i64), &x, -&x));
    check("sin(x) + cos(y)", x.sin() + y.cos());
    check("arctan2(x, y)", x.arctan2(&y));
    check("absolute(x) + abs(y)", x.abs() + y.abs());
    check("rint(x)", x.round());
    check("mod(i, 3)", &i % 3i64);
    check("fmod(x, 2.0)", x.fmod(2.0));
    check("pow(x, 3)", x.pow(3i64));
    check("maximum(x, minimum(y, 1))", x.maximum(y.minimum(1i64)));
    check("floor_divide(i, 2)", i.floor_div(2i64));
    check("astype(i, float32) + 1", i.astype(DType::F32) + 1i64);
    check("astype(x, 'int64')", x.astype(DType::I64));
    check("astype(x, \"bool\")", x.astype(DType::Bool));
    check("sum(x * 2)", (&x * 2i64).sum());
    check("conj(x) + real(y) + copy(x)", &x + &y + &x);
    check("sqrt(exp(log1p(x)))", x.log1p().exp().sqrt());
    // imag of real input: zeros of the input's dtype and shape; ones_like: ones.
    let zero = where_(x.eq_(&x), 0i64, 0i64).astype(DType::F64);
    check("imag(x)", zero);
    let ones = p("ones_like(f)");
    assert_eq!(ones.dtype().unwrap(), DType::F32);
    assert_eq!(ones.shape().unwrap(), vec![3]);
    let ib = p("imag(b)");
    assert_eq!(ib.dtype().unwrap(), DType::Bool);
    check("imag(2.5)", Expr::from(0.0));
    check("ones_like(3)", Expr::from(1i64));
    assert_eq!(p("ones_like(m)").shape().unwrap(), vec![2, 3]);
}

fn err(src: &str) -> Error {
    match parse(src, &sym) {
        Ok(e) => panic!("{src}: expected an error, got {e}"),
        Err(e) => e,
    }
}

/// A parse error at `column` whose message contains `fragment`.
fn check_err(src: &str, column: usize, fragment: &str) {
    match err(src) {
        Error::Parse { column: c, message } => {
            assert_eq!(c, column, "{src}: {message}");
            assert!(message.contains(fragment), "{src}: {message}");
        }
        other => panic!("{src}: {other:?}"),
    }
}

#[test]
fn errors_have_exact_columns() {
    check_err("x + ", 5, "end of expression");
    check_err("", 1, "empty");
    check_err("x + * y", 5, "found `*`");
    check_err("(x + y", 7, "expected `)`");
    check_err("x + y)", 6, "unmatched `)`");
    check_err("x y", 3, "unexpected `y`");
    check_err("sin(x, y)", 1, "`sin` takes 1 argument, got 2");
    check_err("  where(x, y)", 3, "takes 3 arguments, got 2");
    check_err("x + foo(x)", 5, "unknown function `foo`");
    check_err("contains(x, y)", 1, "strings");
    check_err("x $ y", 3, "unexpected character `$`");
    check_err("α + $", 5, "`$`");
    check_err("x < y < 1", 7, "chained comparisons");
    check_err("x > 0 & y > 0", 11, "chained comparisons");
    check_err("x = 1", 3, "==");
    check_err("!b", 1, "`~`");
    check_err("x and y", 3, "`&`");
    check_err("99999999999999999999 + x", 1, "int64");
    check_err("9223372036854775808", 1, "int64");
    check_err("astype(x, complex64)", 11, "unknown dtype `complex64`");
    check_err("astype(x)", 1, "takes 2 arguments, got 1");
    check_err("1.5j", 1, "complex");
    check_err("sin + 1", 1, "needs arguments");
    check_err("x.sum()", 2, "`.`");
    check_err("x + (y = 1)", 8, "==");
    check_err("'float32'", 1, "string");
    check_err("1e+", 2, "exponent");
}

/// `name(args)` of a reduction on `x` with `axes` and `keepdims`.
fn red(r: Reduction, x: &Expr, axes: Option<&[isize]>, keepdims: bool) -> Expr {
    x.reduce(r, axes, keepdims)
}
const SUM: Reduction = Reduction::Op(ReduceOp::Sum);

#[test]
fn reductions_with_axes_and_keywords() {
    use ReduceOp::*;
    let (x, y, m, b, i) = (s("x"), s("y"), s("m"), s("b"), s("i"));
    check("sum(x*x)", (&x * &x).sum());
    check("sum(m, axis=1)", red(SUM, &m, Some(&[1]), false));
    check("sum(m, axis=None)", m.sum());
    check("sum(m, axis=(1,))", red(SUM, &m, Some(&[1]), false));
    check("sum(m, axis=(0))", red(SUM, &m, Some(&[0]), false));
    check("sum(m, axis=())", red(SUM, &m, Some(&[]), false));
    check(
        "sum(m, keepdims=False, axis=-1)",
        red(SUM, &m, Some(&[-1]), false),
    );
    check(
        "mean(m, axis=0)",
        red(Reduction::Mean, &m, Some(&[0]), false),
    );
    check(
        "max(abs(x - y), axis=0)",
        red(Reduction::Op(Max), &(&x - &y).abs(), Some(&[0]), false),
    );
    check(
        "std(x, ddof=1)",
        red(Reduction::Std { ddof: 1 }, &x, None, false),
    );
    check("std(x, ddof=0)", x.std());
    check(
        "var(m, axis=(0, 1), keepdims=True)",
        red(Reduction::Var { ddof: 0 }, &m, Some(&[0, 1]), true),
    );
    check(
        "argmax(m, axis=-1)",
        red(Reduction::Op(ArgMax), &m, Some(&[-1]), false),
    );
    check("argmin(x) + prod(i)", x.argmin() + i.prod());
    check("min(x) < max(y)", x.min().lt(y.max()));
    check(
        "any(b) | all(b, axis=0)",
        b.any() | red(Reduction::Op(All), &b, Some(&[0]), false),
    );
    check("(x - mean(x)) / std(x)", (&x - x.mean()) / x.std());
    check(
        "exp(x - max(x)) / sum(exp(x - max(x)))",
        (&x - x.max()).exp() / (&x - x.max()).exp().sum(),
    );
    // Dtypes and shapes are NumPy's.
    assert_eq!(p("sum(i)").dtype().unwrap(), DType::I64);
    assert_eq!(p("mean(i)").dtype().unwrap(), DType::F64);
    assert_eq!(p("mean(f)").dtype().unwrap(), DType::F32);
    assert_eq!(p("argmax(f)").dtype().unwrap(), DType::I64);
    assert_eq!(p("any(x)").dtype().unwrap(), DType::Bool);
    assert_eq!(p("sum(m, axis=0)").shape().unwrap(), vec![3]);
    assert_eq!(
        p("sum(m, axis=1, keepdims=True)").shape().unwrap(),
        vec![2, 1]
    );
    assert_eq!(p("std(m)").shape().unwrap(), Vec::<usize>::new());
}

#[test]
fn reduction_call_errors() {
    check_err(
        "sum(x, axis=0, axis=0)",
        16,
        "keyword argument `axis` repeated",
    );
    check_err("var(x, ddof=1, ddof=2)", 16, "`ddof` repeated");
    check_err(
        "sum(x, axes=0)",
        8,
        "unknown keyword argument `axes` for `sum`",
    );
    check_err("sum(x, ddof=1)", 8, "it takes axis, keepdims)");
    check_err("std(x, dof=1)", 8, "axis, keepdims, ddof");
    check_err("sum(x, axis=x)", 13, "bad axis value `x`");
    check_err("sum(x, axis=1.5)", 13, "bad axis value");
    check_err("sum(x, axis=(0, y))", 17, "bad axis value `y`");
    check_err(
        "sum(x, axis=(0 1))",
        16,
        "expected `,` or `)` in axis tuple",
    );
    check_err("sum(x, axis=-)", 14, "bad axis value");
    check_err("max(x, y)", 1, "`maximum(a, b)`");
    check_err("min(x, y)", 1, "`minimum(a, b)`");
    check_err("sum(x, 1)", 1, "`axis=...`");
    check_err("sum(axis=1)", 1, "`sum` takes 1 argument, got 0");
    check_err("sum()", 1, "`sum` takes 1 argument, got 0");
    check_err("sum(x, keepdims=1)", 17, "True or False");
    check_err("std(x, ddof=-1)", 13, "non-negative");
    check_err("std(x, ddof=99999999999)", 13, "too large");
    check_err("sin(x, axis=0)", 8, "`sin` takes no keyword arguments");
    check_err(
        "sum(axis=0, x)",
        13,
        "positional argument follows keyword argument",
    );
    check_err("sum(x, axis=0", 14, "expected `,` or `)` in call to `sum`");
    check_err("sum", 1, "needs arguments");
    // Axis errors are NumPy's, reported after the syntax is known to be right.
    match err("sum(x, axis=1)") {
        e @ Error::AxisOutOfBounds { axis: 1, ndim: 1 } => assert_eq!(
            e.to_string(),
            "axis error: axis 1 is out of bounds for array of dimension 1"
        ),
        other => panic!("{other:?}"),
    }
    match err("sum(m, axis=(1, -1))") {
        e @ Error::DuplicateAxis { axis: 1 } => {
            assert_eq!(e.to_string(), "axis error: duplicate value in 'axis'")
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(err("argmax(m, axis=(0, 1))"), Error::Axis { .. }));
    assert!(matches!(
        err("sum(m, axis=5) + (1"),
        Error::Parse { column: 20, .. }
    ));
}

#[test]
fn unknown_names_and_type_errors() {
    assert_eq!(
        err("zz + 1"),
        Error::UnknownName {
            name: "zz".into(),
            known: vec![]
        }
    );
    assert_eq!(
        err("sin(q)"),
        Error::UnknownName {
            name: "q".into(),
            known: vec![]
        }
    );
    match err("x + w") {
        Error::ShapeMismatch { lhs, rhs } => assert_eq!((lhs, rhs), (vec![3], vec![4])),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        err("~x"),
        Error::OperandType { op, dtype: DType::F64, .. } if op == "not"
    ));
    assert!(matches!(
        err("+b"),
        Error::OperandType { op, dtype: DType::Bool, .. } if op == "positive"
    ));
    assert!(matches!(
        err("astype(i, int32) + 2**40"),
        Error::IntegerOverflow { .. }
    ));
    // Syntax errors are reported before type errors.
    assert!(matches!(err("~x + (1"), Error::Parse { column: 8, .. }));
}

#[test]
fn display_round_trips() {
    let (x, y, i, b) = (s("x"), s("y"), s("i"), s("b"));
    let mu = -1.33;
    let sigma = 1.25;
    let cases = [
        (5.0 * &x + 4.0) * &x + 1.0,
        1.0 / (sigma * (2.0 * std::f64::consts::PI).sqrt())
            * (-(&x - mu).pow(2i64) / (2.0 * sigma * sigma)).exp(),
        where_(x.gt(0.0), x.exp(), 0.0),
        -(&x - 1.0).pow(2i64) / 2.0,
        &x - (&y - 1.0),
        x.pow(-1.0),
        Expr::from(-2.0).pow(&x),
        x.arctan2(&y).maximum(x.hypot(1.5)),
        (&i % 3i64).astype(DType::F32) + 1.5,
        (&i << 2i64) ^ (&i >> 1i64) | &i,
        !&b & (&b ^ true) | &b,
        x.lt(&y),
        ((&x * 2.0).sum() + 1e20).floor(),
        &x * f64::NAN - f64::INFINITY,
        x.copysign(-1.0).nextafter(&y).fmod(2.0),
        where_(b.clone(), &i, i.floor_div(-2i64)),
        (&x * &x).sum(),
        red(SUM, &s("m"), Some(&[1]), true),
        red(SUM, &s("m"), Some(&[]), false),
        red(Reduction::Std { ddof: 1 }, &s("m"), Some(&[0, 1]), false),
        red(Reduction::Var { ddof: 2 }, &s("m"), Some(&[-1]), true),
        red(Reduction::Op(ReduceOp::ArgMax), &s("m"), Some(&[-1]), false),
        (&x - x.mean()) / x.std(),
        (&x - x.max()).exp() / (&x - x.max()).exp().sum(),
        x.prod() * x.min() + x.var() + i.argmin() + b.any().astype(DType::F64),
        b.all() & x.argmax().eq_(0i64),
        -red(Reduction::Mean, &s("m"), Some(&[0]), false).pow(2i64),
    ];
    for e in cases {
        let text = e.to_string();
        let back = parse(&text, &sym).unwrap_or_else(|err| panic!("{text}: {err}"));
        assert_eq!(back.to_string(), text);
        assert_eq!(tree(&back), tree(&e), "{text}");
    }
}

#[test]
fn names_in_order_of_first_use() {
    let n = names("x + sin(y) * x + pi + astype(z, float32) + e + where(b, q, x)").unwrap();
    assert_eq!(n, vec!["x", "y", "z", "b", "q"]);
    let n = names("sum(x, axis=1) + std(y, ddof=1, keepdims=True) + max(z, axis=(0, 1))").unwrap();
    assert_eq!(n, vec!["x", "y", "z"]);
    // Only the syntax is checked: these names have no dtype yet.
    assert_eq!(names("~a & b").unwrap(), vec!["a", "b"]);
    assert!(matches!(names("x +"), Err(Error::Parse { column: 4, .. })));
}

#[test]
fn nesting_is_capped_without_overflowing_the_stack() {
    let ok = format!("{}x{}", "(".repeat(256), ")".repeat(256));
    assert_eq!(tree(&p(&ok)), "x");
    let deep = format!("{}x{}", "(".repeat(257), ")".repeat(257));
    assert_eq!(err(&deep), Error::TooDeep { limit: 256 });
    assert_eq!(err(&"(".repeat(100_000)), Error::TooDeep { limit: 256 });
    assert_eq!(
        err(&format!("{}x", "-".repeat(100_000))),
        Error::TooDeep { limit: 256 }
    );
    assert_eq!(
        err(&format!("{}x", "sin(".repeat(100_000))),
        Error::TooDeep { limit: 256 }
    );
    assert_eq!(
        err(&format!("x{}", "**x".repeat(100_000))),
        Error::TooDeep { limit: 256 }
    );
    // A long flat chain builds a deep tree: capped too (printing or dropping it would recurse).
    let flat_ok = format!("x{}", " + x".repeat(255));
    assert!(parse(&flat_ok, &sym).is_ok());
    let flat = format!("x{}", " + x".repeat(100_000));
    assert_eq!(err(&flat), Error::TooDeep { limit: 256 });
    // Literals fold, so a long literal chain is one node.
    let lits = format!("1{}", " + 1".repeat(10_000));
    check(&lits, Expr::from(10_001i64));
    assert_eq!(
        names(&"(".repeat(100_000)),
        Err(Error::TooDeep { limit: 256 })
    );
}

#[test]
fn imag_and_ones_like_are_exact_for_every_value() {
    use fusebox::{Device, DynArray, Options, Session};
    use ndarray::arr1;
    let data = |n: &str| -> Option<Expr> {
        Some(match n {
            "x" => Expr::data(arr1(&[1.5, f64::NAN, -f64::INFINITY, -0.0]), Some("x")),
            "f" => Expr::data(arr1(&[f32::NAN, 2.0, 0.0, -1.0]), Some("f")),
            "b" => Expr::data(arr1(&[true, false, true, true]), Some("b")),
            "i" => Expr::data(arr1(&[i32::MIN, 0, 7, -1]), Some("i")),
            _ => return None,
        })
    };
    for device in [Device::Reference, Device::Cpu] {
        let s = Session::with_options(Options::default().with_device(device));
        let run = |src: &str| s.compute(&parse(src, &data).unwrap()).unwrap();
        assert_eq!(run("imag(x)"), DynArray::from(arr1(&[0.0; 4])));
        assert_eq!(run("ones_like(x)"), DynArray::from(arr1(&[1.0; 4])));
        assert_eq!(run("imag(f)"), DynArray::from(arr1(&[0.0f32; 4])));
        assert_eq!(run("ones_like(f)"), DynArray::from(arr1(&[1.0f32; 4])));
        assert_eq!(run("imag(b)"), DynArray::from(arr1(&[false; 4])));
        assert_eq!(run("ones_like(b)"), DynArray::from(arr1(&[true; 4])));
        assert_eq!(run("imag(i)"), DynArray::from(arr1(&[0i32; 4])));
        assert_eq!(run("ones_like(i)"), DynArray::from(arr1(&[1i32; 4])));
        // real/conj/copy of real input are the input itself.
        assert_eq!(
            run("real(i) + conj(i) - copy(i)"),
            DynArray::from(arr1(&[i32::MIN, 0, 7, -1]))
        );
    }
}

#[test]
fn isnan_isinf_isfinite_signbit_are_numpys_for_every_class_of_value() {
    use fusebox::{Device, DynArray, Options, Session};
    use ndarray::arr1;
    let neg_nan = -f64::NAN;
    assert!(neg_nan.is_sign_negative());
    let data = |n: &str| -> Option<Expr> {
        Some(match n {
            "x" => Expr::data(
                arr1(&[
                    1.5,
                    f64::NAN,
                    neg_nan,
                    f64::INFINITY,
                    -f64::INFINITY,
                    -0.0,
                    0.0,
                    -2.0,
                ]),
                Some("x"),
            ),
            "f" => Expr::data(
                arr1(&[
                    1.5f32,
                    f32::NAN,
                    -f32::NAN,
                    f32::INFINITY,
                    -f32::INFINITY,
                    -0.0,
                    0.0,
                    -2.0,
                ]),
                Some("f"),
            ),
            "i" => Expr::data(arr1(&[i32::MIN, -1, 0, 7]), Some("i")),
            "b" => Expr::data(arr1(&[true, false, true, false]), Some("b")),
            _ => return None,
        })
    };
    let t = true;
    let f = false;
    for device in [Device::Reference, Device::Cpu] {
        let s = Session::with_options(Options::default().with_device(device));
        let run = |src: &str| s.compute(&parse(src, &data).unwrap()).unwrap();
        for v in ["x", "f"] {
            let want = |b: [bool; 8]| DynArray::from(arr1(&b));
            assert_eq!(
                run(&format!("isnan({v})")),
                want([f, t, t, f, f, f, f, f]),
                "{v}"
            );
            assert_eq!(
                run(&format!("isinf({v})")),
                want([f, f, f, t, t, f, f, f]),
                "{v}"
            );
            assert_eq!(
                run(&format!("isfinite({v})")),
                want([t, f, f, f, f, t, t, t]),
                "{v}"
            );
            assert_eq!(
                run(&format!("signbit({v})")),
                want([f, f, t, f, t, t, f, t]),
                "{v}"
            );
        }
        let want = |b: [bool; 4]| DynArray::from(arr1(&b));
        assert_eq!(run("isnan(i)"), want([f; 4]));
        assert_eq!(run("isinf(i)"), want([f; 4]));
        assert_eq!(run("isfinite(i)"), want([t; 4]));
        assert_eq!(run("signbit(i)"), want([t, t, f, f]));
        assert_eq!(run("isnan(b) | isinf(b) | signbit(b)"), want([f; 4]));
        assert_eq!(run("isfinite(b)"), want([t; 4]));
        // In an expression, as numexpr uses them.
        assert_eq!(
            run("where(isfinite(x), x, 0.0)"),
            DynArray::from(arr1(&[1.5, 0.0, 0.0, 0.0, 0.0, -0.0, 0.0, -2.0]))
        );
    }
}
