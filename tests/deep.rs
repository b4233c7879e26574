//! Expressions of any depth: a tree built through the Rust API a million levels deep drops,
//! prints (`Display`, `Debug`), explains, compiles and computes without overflowing the stack.
//! Walks that must work at any depth are iterative (drop, printing, the reference evaluator,
//! the planner's depth check, the cast checks); the planner takes trees up to
//! `opt::lower::MAX_DEPTH` and returns `Error::TooDeep` beyond. A string nested a million deep
//! is an error from the parser. Everything runs on the default 2 MiB test-thread stack.
use fusebox::unstable::opt::lower::MAX_DEPTH;
use fusebox::unstable::reference;
use fusebox::{parse, where_, DType, Device, DynArray, Error, Expr, InvalidCast, Options, Session};
use ndarray::arr1;
use std::collections::HashMap;

const DEEP: usize = 1_000_000;

fn session(device: Device) -> Session {
    Session::with_options(Options::default().with_device(device))
}

fn x() -> Expr {
    Expr::data(arr1(&[1.0, 2.0]), Some("x"))
}

fn f64s(a: &DynArray) -> Vec<f64> {
    match a {
        DynArray::F64(v) => v.iter().copied().collect(),
        other => panic!("expected float64, got {:?}", other.dtype()),
    }
}

/// The planning entry points refuse `e` with `TooDeep`, with and without the optimizer and
/// with the cast checks on; the reference evaluator computes it.
fn planners_refuse(e: &Expr) {
    let too_deep = Error::TooDeep { limit: MAX_DEPTH };
    for opts in [
        Options::default().with_device(Device::Cpu),
        Options::default().with_device(Device::Auto),
        Options::default().with_optimize(false),
        Options::default().with_invalid_cast(InvalidCast::Raise),
    ] {
        let s = Session::with_options(opts);
        assert_eq!(s.compute(e).unwrap_err(), too_deep);
        assert_eq!(s.explain(e).unwrap_err(), too_deep);
        assert_eq!(s.compile(e).err(), Some(too_deep.clone()));
        assert_eq!(
            s.compute_many(&[x(), e.clone()]).unwrap_err(),
            too_deep,
            "many"
        );
    }
}

#[test]
fn a_million_additions() {
    let mut e = x();
    for _ in 0..DEEP {
        e = e + 1.0;
    }
    let text = e.to_string();
    assert_eq!(text.len(), 1 + " + 1.0".len() * DEEP);
    assert!(text.starts_with("x + 1.0 + 1.0 + "));
    assert!(text.ends_with(" + 1.0 + 1.0"));
    assert_eq!(text.matches(" + 1.0").count(), DEEP);
    let debug = format!("{e:?}");
    assert_eq!(debug, format!("Expr({text}: float64 [2])"));
    drop((text, debug));

    planners_refuse(&e);
    // The reference evaluator is iterative: the exact sums (integers below 2**53).
    let want = vec![1.0 + DEEP as f64, 2.0 + DEEP as f64];
    assert_eq!(f64s(&session(Device::Reference).compute(&e).unwrap()), want);
    // Dropping it (here, and in every test) must not recurse once per level.
    drop(e);
}

#[test]
fn a_million_nested_functions_and_negations() {
    let mut e = x();
    for _ in 0..DEEP {
        e = e.sin();
    }
    let text = e.to_string();
    assert_eq!(
        text,
        format!("{}x{}", "sin(".repeat(DEEP), ")".repeat(DEEP))
    );
    planners_refuse(&e);
    let got = f64s(&reference::evaluate(&e, &HashMap::new()).unwrap());
    // The reference's sin is the platform's `f64::sin`, one call per level.
    let mut want = [1.0f64, 2.0];
    for _ in 0..DEEP {
        want = want.map(f64::sin);
    }
    assert_eq!(got, want);
    drop(e);

    let mut n = x();
    for _ in 0..DEEP {
        n = -n;
    }
    assert_eq!(n.to_string(), format!("{}x", "-".repeat(DEEP)));
    planners_refuse(&n);
    assert_eq!(
        f64s(&session(Device::Reference).compute(&n).unwrap()),
        [1.0, 2.0]
    );
}

#[test]
fn a_million_nested_wheres_casts_and_reductions() {
    let x = x();
    let pos = x.gt(0.0);
    let levels = DEEP / 4;
    // Each level: where (1), + (2), astype twice (3, 4).
    let mut e = x.clone();
    for _ in 0..levels {
        e = where_(&pos, &e + 1.0, &x)
            .astype(DType::I64)
            .astype(DType::F64);
    }
    let text = e.to_string();
    let head = "astype(astype(where(x > 0.0, ";
    assert!(text.starts_with(&head.repeat(3)));
    assert!(text.ends_with(&" + 1.0, x), int64), float64)".repeat(3)));
    assert_eq!(
        text.len(),
        1 + (head.len() + " + 1.0, x), int64), float64)".len()) * levels
    );
    planners_refuse(&e);
    assert_eq!(
        f64s(&session(Device::Reference).compute(&e).unwrap()),
        [1.0 + levels as f64, 2.0 + levels as f64]
    );
    drop(e);

    // `x - mean(.)` alternates between `x` and `x - 1.5` (exact in float64).
    let mut r = x.clone();
    for _ in 0..DEEP / 2 {
        r = &x - r.mean();
    }
    assert!(r.to_string().starts_with("x - mean(x - mean(x - mean("));
    planners_refuse(&r);
    assert_eq!(
        f64s(&session(Device::Reference).compute(&r).unwrap()),
        [1.0, 2.0]
    );
}

/// Dropping a deep tree whose nodes are shared, also from two threads at once: each node is
/// freed exactly once, by whichever thread holds its last reference, without recursion.
#[test]
fn deep_shared_trees_drop_from_any_thread() {
    let mut e = x();
    let mut middle = None;
    for i in 0..DEEP {
        e = e * 1.0;
        if i == DEEP / 2 {
            middle = Some(e.clone());
        }
    }
    let middle = middle.unwrap();
    let clones: Vec<Expr> = (0..4).map(|_| e.clone()).collect();
    let handles: Vec<_> = clones
        .into_iter()
        .map(|c| std::thread::spawn(move || drop(c)))
        .collect();
    drop(e);
    for h in handles {
        h.join().unwrap();
    }
    // The shared middle survives its users and still prints.
    assert_eq!(
        middle.to_string().len(),
        1 + " * 1.0".len() * (DEEP / 2 + 1)
    );
}

/// The deepest tree the planner takes computes, fused and unfused, bit for bit as the
/// reference does; one level more is `TooDeep`.
#[test]
fn the_planners_limit_computes_and_one_more_is_refused() {
    let data = arr1(&[0.1, -3.75, 1e6, f64::NAN, -0.0, 7.0]);
    let x = Expr::data(data, Some("x"));
    let mut e = x.clone();
    for i in 0..MAX_DEPTH {
        e = match i % 4 {
            0 => e * 1.0001,
            1 => e - 0.3,
            2 => where_(x.gt(0.0), e, &x),
            _ => e.sin(),
        };
    }
    let want = session(Device::Reference).compute(&e).unwrap();
    let got = session(Device::Cpu).compute(&e).unwrap();
    let (want, got) = (f64s(&want), f64s(&got));
    for (w, g) in want.iter().zip(&got) {
        // sin: the JIT's polynomial is within an ULP of the platform's per level, so the
        // chain is compared loosely; the structure (NaN, signs, `where`) exactly.
        assert_eq!(w.is_nan(), g.is_nan(), "{want:?} vs {got:?}");
        if !w.is_nan() {
            assert!(
                (w - g).abs() <= 1e-9 * w.abs().max(1.0),
                "{want:?} vs {got:?}"
            );
        }
    }
    assert!(session(Device::Cpu).explain(&e).is_ok());
    // `**` with NumPy's fast paths (x * x, sqrt): the deepest recursion lowering had.
    let mut p = x.clone();
    for i in 0..MAX_DEPTH {
        p = p.pow(if i % 2 == 0 { 2.0 } else { 0.5 });
    }
    let bits = |a: &DynArray| f64s(a).iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    assert_eq!(
        bits(&session(Device::Cpu).compute(&p).unwrap()),
        bits(&session(Device::Reference).compute(&p).unwrap())
    );
    let deeper = e * 1.0;
    assert_eq!(
        session(Device::Cpu).compute(&deeper).unwrap_err(),
        Error::TooDeep { limit: MAX_DEPTH }
    );
}

/// A chain of reductions as deep as the planner takes: planned (explained) without
/// overflowing the stack; a moderate depth with reductions inside computes exactly.
#[test]
fn reductions_inside_deep_chains() {
    let x = Expr::data(arr1(&[1.0, 2.0, 4.0, 8.0]), Some("x"));
    let mut r = x.clone();
    for _ in 0..MAX_DEPTH / 2 {
        r = &x - r.mean();
    }
    let ex = session(Device::Cpu).explain(&r).unwrap();
    assert!(ex.to_string().contains("kernel"));
    assert_eq!(
        session(Device::Cpu).explain(&(&x - r.mean())).unwrap_err(),
        Error::TooDeep { limit: MAX_DEPTH }
    );

    // 1000 levels, a reduction every 100: exactly the reference's bits, fused and unfused.
    let mut e = x.clone();
    for i in 0..1000 {
        e = if i % 100 == 99 {
            &x + e.sum() * 0.5
        } else {
            e * 1.0625 - 0.125
        };
    }
    let want = f64s(&session(Device::Reference).compute(&e).unwrap());
    for optimize in [true, false] {
        let s = Session::with_options(
            Options::default()
                .with_device(Device::Cpu)
                .with_optimize(optimize),
        );
        assert_eq!(f64s(&s.compute(&e).unwrap()), want, "optimize {optimize}");
    }
}

/// Strings nested a million deep are refused by the parser (`TooDeep`), not by the stack.
#[test]
fn strings_a_million_deep_are_errors() {
    let x = Expr::symbol("x", DType::F64, &[2]);
    let lookup = |n: &str| (n == "x").then(|| x.clone());
    let too_deep = Error::TooDeep {
        limit: parse::MAX_DEPTH,
    };
    let parens = format!("{}x{}", "(".repeat(DEEP), ")".repeat(DEEP));
    assert_eq!(parse::parse(&parens, &lookup).unwrap_err(), too_deep);
    let negs = format!("{}x{}", "-(".repeat(DEEP), ")".repeat(DEEP));
    assert_eq!(parse::parse(&negs, &lookup).unwrap_err(), too_deep);
    let calls = format!("{}x{}", "sin(".repeat(DEEP), ")".repeat(DEEP));
    assert_eq!(parse::parse(&calls, &lookup).unwrap_err(), too_deep);
    let chain = format!("x{}", " + x".repeat(DEEP));
    assert_eq!(parse::parse(&chain, &lookup).unwrap_err(), too_deep);
    assert_eq!(parse::names(&parens).unwrap_err(), too_deep);
}
