//! Element-wise operators, casts and transcendentals against `semantics.rs`.
use super::*;

// ---- tests -------------------------------------------------------------------------------

#[test]
fn exact_unary_ops_match_semantics() {
    let Some(b) = backend() else { return };
    for t in DType::ALL.into_iter().filter(|t| supported(b, *t)) {
        let mut xs = specials(t);
        xs.extend(random(t, 500, 7));
        let input = array(t, &xs, &[xs.len()]);
        for op in UnaryOp::ALL {
            if op.is_transcendental() && op != UnaryOp::Sqrt {
                continue;
            }
            match op.signature(t) {
                Ok((c, _)) if c == t => {}
                _ => continue,
            }
            let got = values(&run(
                b,
                &unary_kernel(op, t),
                std::slice::from_ref(&input),
                &[xs.len()],
            ));
            for (x, g) in xs.iter().zip(&got) {
                let want = oracle_unary(op, t, *x);
                assert!(
                    same(want, *g),
                    "{op}.{t}({x:?}): GPU {g:?}, semantics {want:?}"
                );
            }
        }
    }
}

#[test]
fn binary_ops_match_semantics() {
    let Some(b) = backend() else { return };
    for t in DType::ALL.into_iter().filter(|t| supported(b, *t)) {
        let sp = specials(t);
        let (mut xs, mut ys) = (Vec::new(), Vec::new());
        for x in &sp {
            for y in &sp {
                xs.push(*x);
                ys.push(*y);
            }
        }
        xs.extend(random(t, 400, 11));
        ys.extend(random(t, 400, 12));
        let n = xs.len();
        let inputs = [array(t, &xs, &[n]), array(t, &ys, &[n])];
        for op in BinaryOp::ALL {
            match op.signature(t) {
                Ok((c, _)) if c == t => {}
                _ => continue,
            }
            let got = values(&run(b, &binary_kernel(op, t), &inputs, &[n]));
            let name = op.name();
            let ulp_op = matches!(op, BinaryOp::Pow | BinaryOp::Arctan2 | BinaryOp::Hypot);
            for ((x, y), g) in xs.iter().zip(&ys).zip(&got) {
                let want = oracle_binary(op, t, *x, *y);
                let ok = match (want, *g) {
                    (V::F(w), V::F(gv)) if ulp_op => {
                        // Huge results of pow with random operands: compare in ULP too.
                        ulps(t, w, gv) <= bound(name, t)
                    }
                    _ => same(want, *g),
                };
                assert!(
                    ok,
                    "{name}.{t}({x:?}, {y:?}): GPU {g:?}, semantics {want:?}"
                );
            }
        }
    }
}

#[test]
fn casts_and_select_match_semantics() {
    let Some(b) = backend() else { return };
    for from in DType::ALL.into_iter().filter(|t| supported(b, *t)) {
        let mut xs = specials(from);
        xs.extend(random(from, 200, 3));
        let n = xs.len();
        let input = array(from, &xs, &[n]);
        for to in DType::ALL.into_iter().filter(|t| supported(b, *t)) {
            let mut kb = KernelBuilder::new();
            let x = load(&mut kb, from);
            let c = kb.push(Inst::Cast { arg: x }, to);
            let k = kb.finish(Output::Store { value: c });
            let got = values(&run(b, &k, std::slice::from_ref(&input), &[n]));
            for (x, g) in xs.iter().zip(&got) {
                let want = oracle_cast(to, *x);
                assert!(
                    same(want, *g),
                    "cast {from}->{to} of {x:?}: GPU {g:?}, semantics {want:?}"
                );
            }
        }
        // select(x > 0 (as bool), x, -x) style: condition from the data, two value operands.
        let mut kb = KernelBuilder::new();
        let c = load(&mut kb, DType::Bool);
        let x = load(&mut kb, from);
        let y = load(&mut kb, from);
        let s = kb.push(
            Inst::Select {
                cond: c,
                on_true: x,
                on_false: y,
            },
            from,
        );
        let k = kb.finish(Output::Store { value: s });
        let conds = random(DType::Bool, n, 5);
        let ys = random(from, n, 6);
        let got = values(&run(
            b,
            &k,
            &[
                array(DType::Bool, &conds, &[n]),
                input.clone(),
                array(from, &ys, &[n]),
            ],
            &[n],
        ));
        for i in 0..n {
            let want = if matches!(conds[i], V::B(true)) {
                xs[i]
            } else {
                ys[i]
            };
            assert!(
                same(want, got[i]),
                "select.{from} at {i}: GPU {:?}, want {want:?}",
                got[i]
            );
        }
    }
}

/// Inputs per transcendental: a domain where the function is defined and interesting.
fn domain(op: &str, t: DType, n: usize) -> Vec<f64> {
    let mut r = Lcg(op.len() as u64 * 7919 + 1);
    let f32t = t == DType::F32;
    let (lo_e, hi_e) = if f32t { (-37.0, 37.0) } else { (-300.0, 300.0) };
    let mut v: Vec<f64> = (0..n)
        .map(|i| match op {
            "exp" => {
                if f32t {
                    r.range(-103.0, 88.0)
                } else {
                    r.range(-745.0, 709.7)
                }
            }
            "expm1" => {
                if i % 2 == 0 {
                    r.range(-1.0, 1.0)
                } else if f32t {
                    r.range(-20.0, 88.0)
                } else {
                    r.range(-40.0, 709.0)
                }
            }
            "log" | "log2" | "log10" => {
                if i % 3 == 0 {
                    r.range(0.5, 2.0)
                } else {
                    r.mag(lo_e, hi_e, false)
                }
            }
            "log1p" => {
                if i % 2 == 0 {
                    r.range(-0.999, 1.0)
                } else {
                    r.mag(lo_e, 20.0, false)
                }
            }
            "sin" | "cos" | "tan" => {
                if i % 2 == 0 {
                    r.range(-10.0, 10.0)
                } else {
                    r.range(-1e5, 1e5)
                }
            }
            "arcsin" | "arccos" | "arctanh" => r.range(-1.0, 1.0),
            "arctan" | "arcsinh" => r.mag(-10.0, 10.0, true),
            "sinh" | "cosh" => {
                if i % 2 == 0 {
                    r.range(-2.0, 2.0)
                } else if f32t {
                    r.range(-89.0, 89.0)
                } else {
                    r.range(-710.0, 710.0)
                }
            }
            "tanh" => r.range(-25.0, 25.0),
            "arccosh" => 1.0 + r.mag(-10.0, if f32t { 30.0 } else { 300.0 }, false),
            _ => unreachable!(),
        })
        .map(|x| round_to(t, x))
        .collect();
    v.extend([
        0.0,
        -0.0,
        1.0,
        -1.0,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
        0.5,
        2.0,
        1e-20,
    ]);
    v
}

/// Max ULP error of every transcendental of the given dtypes on `b`: (table, bound failures).
fn measure_ulps(
    b: &GpuBackend,
    types: &[DType],
    bound: &dyn Fn(&str, DType) -> u64,
) -> (Vec<String>, Vec<String>) {
    let mut table = Vec::new();
    let mut failures = Vec::new();
    for &t in types {
        for op in UnaryOp::ALL
            .into_iter()
            .filter(|o| o.is_transcendental() && *o != UnaryOp::Sqrt)
        {
            let xs = domain(op.name(), t, 4000);
            let vals: Vec<V> = xs.iter().map(|&x| V::F(x)).collect();
            let got = values(&run(
                b,
                &unary_kernel(op, t),
                &[array(t, &vals, &[xs.len()])],
                &[xs.len()],
            ));
            let mut worst = (0u64, 0.0f64);
            for (x, g) in xs.iter().zip(&got) {
                let V::F(want) = oracle_unary(op, t, V::F(*x)) else {
                    unreachable!()
                };
                let V::F(g) = *g else { unreachable!() };
                let u = ulps(t, want, g);
                if u > worst.0 {
                    worst = (u, *x);
                }
            }
            table.push(format!(
                "{:8} {t}: max {} ulp (at {:e})",
                op.name(),
                worst.0,
                worst.1
            ));
            if worst.0 > bound(op.name(), t) {
                failures.push(format!(
                    "{op}.{t}: {} ulp at x = {:e} (bound {})",
                    worst.0,
                    worst.1,
                    bound(op.name(), t)
                ));
            }
        }
        for op in [BinaryOp::Pow, BinaryOp::Arctan2, BinaryOp::Hypot] {
            let mut r = Lcg(99);
            let n = 4000;
            let (mut xs, mut ys) = (Vec::new(), Vec::new());
            for i in 0..n {
                let (x, y) = match op {
                    BinaryOp::Pow if i % 4 == 0 => {
                        (-r.mag(-3.0, 3.0, false), (r.next() % 41) as f64 - 20.0)
                    }
                    BinaryOp::Pow => (r.mag(-5.0, 5.0, false), r.range(-60.0, 60.0)),
                    _ => (r.mag(-20.0, 20.0, true), r.mag(-20.0, 20.0, true)),
                };
                xs.push(V::F(round_to(t, x)));
                ys.push(V::F(round_to(t, y)));
            }
            let got = values(&run(
                b,
                &binary_kernel(op, t),
                &[array(t, &xs, &[n]), array(t, &ys, &[n])],
                &[n],
            ));
            let mut worst = (0u64, 0.0, 0.0);
            for ((x, y), g) in xs.iter().zip(&ys).zip(&got) {
                let (V::F(want), V::F(gv), V::F(xv), V::F(yv)) =
                    (oracle_binary(op, t, *x, *y), *g, *x, *y)
                else {
                    unreachable!()
                };
                let u = ulps(t, want, gv);
                if u > worst.0 {
                    worst = (u, xv, yv);
                }
            }
            table.push(format!(
                "{:8} {t}: max {} ulp (at {:e}, {:e})",
                op.name(),
                worst.0,
                worst.1,
                worst.2
            ));
            if worst.0 > bound(op.name(), t) {
                failures.push(format!(
                    "{op}.{t}: {} ulp at ({:e}, {:e})",
                    worst.0, worst.1, worst.2
                ));
            }
        }
    }
    (table, failures)
}

#[test]
fn transcendental_ulp_bounds() {
    let Some(b) = backend() else { return };
    // f32 runs in f32 arithmetic (the math expansions need no f64); f64 where the adapter has
    // it.
    let types: Vec<DType> = [DType::F64, DType::F32]
        .into_iter()
        .filter(|t| supported(b, *t))
        .collect();
    let (table, failures) = measure_ulps(b, &types, &bound);
    println!(
        "measured on {} ({}):\n{}",
        b.info().name,
        b.info().backend,
        table.join("\n")
    );
    assert!(
        failures.is_empty(),
        "ULP bounds exceeded:\n{}",
        failures.join("\n")
    );
}

/// The shaders compute math functions from the kernel-IR math library, in the kernel's own
/// float type: an f32 function uses no f64 (and no 64-bit integer), and no shader calls a
/// WGSL built-in transcendental or a hand-written one.
#[test]
fn math_functions_are_expanded_in_their_own_type() {
    let Some(b) = backend() else { return };
    let builtins = [
        "exp(", "exp2(", "log(", "log2(", "sin(", "cos(", "tan(", "asin(", "acos(", "atan(",
        "atan2(", "sinh(", "cosh(", "tanh(", "asinh(", "acosh(", "atanh(", "pow(",
    ];
    for t in [DType::F32, DType::F64]
        .into_iter()
        .filter(|t| supported(b, *t))
    {
        let mut ks: Vec<(String, Kernel)> = UnaryOp::ALL
            .into_iter()
            .filter(|o| o.is_transcendental() && *o != UnaryOp::Sqrt)
            .map(|op| (op.name().to_string(), unary_kernel(op, t)))
            .collect();
        for op in [BinaryOp::Pow, BinaryOp::Arctan2, BinaryOp::Hypot] {
            ks.push((op.name().to_string(), binary_kernel(op, t)));
        }
        for (name, k) in ks {
            let src = b.compile(&k).unwrap().source().to_string();
            // The function itself is gone: its shader only has the primitives.
            for f in builtins {
                let called = src
                    .match_indices(f)
                    .any(|(i, _)| !src[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_'));
                assert!(!called, "{name} {t}: calls {f}");
            }
            if t == DType::F32 {
                let code = src.lines().filter(|l| !l.trim_start().starts_with("//"));
                for l in code {
                    assert!(
                        !l.contains("f64") && !l.contains("i64"),
                        "{name} f32 uses 64-bit types: {l}"
                    );
                }
            }
        }
    }
}
