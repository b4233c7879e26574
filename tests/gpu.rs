//! Differential tests of the GPU backend against `semantics.rs` (the scalar definition of every
//! op). They skip with a printed reason when no adapter exists, and fail instead when
//! `FUSEBOX_REQUIRE_GPU=1` (CI, on lavapipe).
//!
//! Exact agreement (bit for bit, any NaN matching any NaN) for + - * / comparisons, casts,
//! integer ops, floor/ceil/round/trunc, select, % // fmod, maximum/minimum, copysign,
//! nextafter, sign, sqrt; the ULP bounds of `fusebox::unstable::gpu::wgsl::ULP_BOUNDS` for
//! transcendentals.
use fusebox::unstable::gpu::{adapters, wgsl, GpuBackend};
use fusebox::unstable::kir::{Const, Inst, Kernel, KernelBuilder, Output, Value};
use fusebox::unstable::semantics as sem;
use fusebox::{ArgView, DType, DynArray};
use fusebox::{BinaryOp, ReduceOp, UnaryOp};
use ndarray::{ArrayD, IxDyn};
use std::sync::OnceLock;

fn backend() -> Option<&'static GpuBackend> {
    static B: OnceLock<Option<GpuBackend>> = OnceLock::new();
    B.get_or_init(|| {
        let required = std::env::var("FUSEBOX_REQUIRE_GPU").is_ok_and(|v| v == "1");
        let list = adapters();
        if list.is_empty() {
            if required {
                panic!("FUSEBOX_REQUIRE_GPU=1 but no GPU adapter was found");
            }
            println!("skipping GPU tests: no GPU adapter found (install mesa-vulkan-drivers for lavapipe)");
            return None;
        }
        match GpuBackend::new(0) {
            Ok(b) => Some(b),
            Err(e) if !required => {
                println!("skipping GPU tests: {e}");
                None
            }
            Err(e) => panic!("FUSEBOX_REQUIRE_GPU=1 but the adapter cannot be opened: {e}"),
        }
    })
    .as_ref()
}

fn supported(b: &GpuBackend, t: DType) -> bool {
    match t {
        DType::F64 => b.info().f64,
        DType::I64 => b.info().i64,
        _ => true,
    }
}

// ---- values ------------------------------------------------------------------------------

/// A scalar of any dtype, for oracles (f32 values are held exactly in f64).
#[derive(Clone, Copy, Debug)]
enum V {
    B(bool),
    I(i64),
    F(f64),
}

struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 11
    }
    fn unit(&mut self) -> f64 {
        self.next() as f64 / (1u64 << 53) as f64
    }
    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }
    /// Log-uniform magnitude in [10^lo, 10^hi], random sign when `signed`.
    fn mag(&mut self, lo: f64, hi: f64, signed: bool) -> f64 {
        let m = 10f64.powf(self.range(lo, hi));
        if signed && self.next() & 1 == 1 {
            -m
        } else {
            m
        }
    }
}

fn specials(t: DType) -> Vec<V> {
    match t {
        DType::Bool => vec![V::B(false), V::B(true)],
        DType::I32 => [
            0,
            1,
            -1,
            2,
            -2,
            3,
            -3,
            7,
            -7,
            31,
            32,
            33,
            -32,
            100,
            -100,
            i32::MIN as i64,
            i32::MAX as i64,
            i32::MIN as i64 + 1,
        ]
        .into_iter()
        .map(V::I)
        .collect(),
        DType::I64 => [
            0,
            1,
            -1,
            2,
            -2,
            3,
            -3,
            7,
            -7,
            63,
            64,
            65,
            -64,
            100,
            -100,
            i64::MIN,
            i64::MAX,
            i64::MIN + 1,
            1 << 40,
        ]
        .into_iter()
        .map(V::I)
        .collect(),
        DType::F32 | DType::F64 => {
            let mut v = vec![
                0.0,
                -0.0,
                1.0,
                -1.0,
                0.5,
                -0.5,
                1.5,
                -1.5,
                2.5,
                -2.5,
                3.0,
                -3.0,
                7.0,
                -7.0,
                0.1,
                -0.1,
                1e-3,
                f64::INFINITY,
                f64::NEG_INFINITY,
                f64::NAN,
                1e10,
                -1e10,
                3e9,
                -3e9,
                1e19,
                -1e19,
                1e30,
                -1e30,
                2147483647.0,
                2147483648.0,
                -2147483648.0,
                -2147483649.0,
                9.223_372_036_854_776e18,
            ];
            if t == DType::F64 {
                v.extend([
                    1e-310,
                    -1e-310,
                    1e300,
                    -1e300,
                    4503599627370497.0,
                    f64::MAX,
                    f64::MIN_POSITIVE,
                ]);
            } else {
                v.extend([1e-40, -1e-40, f32::MAX as f64, 16777217.0]);
            }
            v.into_iter().map(|x| V::F(round_to(t, x))).collect()
        }
    }
}

fn round_to(t: DType, x: f64) -> f64 {
    if t == DType::F32 {
        x as f32 as f64
    } else {
        x
    }
}

fn random(t: DType, n: usize, seed: u64) -> Vec<V> {
    let mut r = Lcg(seed);
    (0..n)
        .map(|i| match t {
            DType::Bool => V::B(r.next() & 1 == 1),
            DType::I32 => V::I(if i % 2 == 0 {
                (r.next() % 200) as i64 - 100
            } else {
                r.next() as u32 as i32 as i64
            }),
            DType::I64 => V::I(if i % 2 == 0 {
                (r.next() % 200) as i64 - 100
            } else {
                (r.next() << 11 | r.next() & 2047) as i64
            }),
            _ => V::F(round_to(
                t,
                if i % 2 == 0 {
                    r.range(-100.0, 100.0)
                } else {
                    r.mag(-30.0, 30.0, true)
                },
            )),
        })
        .collect()
}

fn array(t: DType, vals: &[V], shape: &[usize]) -> DynArray {
    let sh = IxDyn(shape);
    macro_rules! mk {
        ($ty:ty, $f:expr) => {
            ArrayD::<$ty>::from_shape_vec(sh, vals.iter().map($f).collect())
                .unwrap()
                .into()
        };
    }
    match t {
        DType::Bool => mk!(bool, |v| matches!(v, V::B(true))),
        DType::I32 => mk!(i32, |v| match v {
            V::I(x) => *x as i32,
            _ => 0,
        }),
        DType::I64 => mk!(i64, |v| match v {
            V::I(x) => *x,
            _ => 0,
        }),
        DType::F32 => mk!(f32, |v| match v {
            V::F(x) => *x as f32,
            _ => 0.0,
        }),
        DType::F64 => mk!(f64, |v| match v {
            V::F(x) => *x,
            _ => 0.0,
        }),
    }
}

fn values(a: &DynArray) -> Vec<V> {
    match a {
        DynArray::Bool(a) => a.iter().map(|&x| V::B(x)).collect(),
        DynArray::I32(a) => a.iter().map(|&x| V::I(x as i64)).collect(),
        DynArray::I64(a) => a.iter().map(|&x| V::I(x)).collect(),
        DynArray::F32(a) => a.iter().map(|&x| V::F(x as f64)).collect(),
        DynArray::F64(a) => a.iter().map(|&x| V::F(x)).collect(),
    }
}

// ---- oracles -----------------------------------------------------------------------------

fn oracle_unary(op: UnaryOp, t: DType, x: V) -> V {
    match (t, x) {
        (DType::Bool, V::B(b)) => V::B(sem::unary_bool(op, b)),
        (DType::I32, V::I(i)) => V::I(sem::unary_i32(op, i as i32) as i64),
        (DType::I64, V::I(i)) => V::I(sem::unary_i64(op, i)),
        (DType::F32, V::F(f)) => V::F(sem::unary_f32(op, f as f32) as f64),
        (DType::F64, V::F(f)) => V::F(sem::unary_f64(op, f)),
        _ => unreachable!(),
    }
}

fn oracle_binary(op: BinaryOp, t: DType, a: V, b: V) -> V {
    if op.is_comparison() {
        return V::B(match (a, b) {
            (V::B(x), V::B(y)) => sem::compare(op, x, y),
            (V::I(x), V::I(y)) => sem::compare(op, x, y),
            (V::F(x), V::F(y)) if t == DType::F32 => sem::compare(op, x as f32, y as f32),
            (V::F(x), V::F(y)) => sem::compare(op, x, y),
            _ => unreachable!(),
        });
    }
    match (t, a, b) {
        (DType::Bool, V::B(x), V::B(y)) => V::B(sem::binary_bool(op, x, y)),
        (DType::I32, V::I(x), V::I(y)) => V::I(sem::binary_i32(op, x as i32, y as i32) as i64),
        (DType::I64, V::I(x), V::I(y)) => V::I(sem::binary_i64(op, x, y)),
        (DType::F32, V::F(x), V::F(y)) => V::F(sem::binary_f32(op, x as f32, y as f32) as f64),
        (DType::F64, V::F(x), V::F(y)) => V::F(sem::binary_f64(op, x, y)),
        _ => unreachable!(),
    }
}

fn oracle_cast(to: DType, x: V) -> V {
    match (x, to) {
        (V::B(b), DType::Bool) => V::B(b),
        (V::B(b), DType::F32 | DType::F64) => V::F(b as u8 as f64),
        (V::B(b), _) => V::I(b as i64),
        (V::I(i), DType::Bool) => V::B(i != 0),
        (V::I(i), DType::I32) => V::I(i as i32 as i64),
        (V::I(i), DType::I64) => V::I(i),
        (V::I(i), DType::F32) => V::F(i as f32 as f64),
        (V::I(i), DType::F64) => V::F(i as f64),
        (V::F(f), DType::Bool) => V::B(f != 0.0),
        (V::F(f), DType::I32) => V::I(sem::f64_to_i32(f) as i64),
        (V::F(f), DType::I64) => V::I(sem::f64_to_i64(f)),
        (V::F(f), DType::F32) => V::F(f as f32 as f64),
        (V::F(f), DType::F64) => V::F(f),
    }
}

/// Distance in units in the last place of `t` (0 when both are NaN; MAX when only one is).
fn ulps(t: DType, a: f64, b: f64) -> u64 {
    if a.is_nan() || b.is_nan() {
        return if a.is_nan() && b.is_nan() {
            0
        } else {
            u64::MAX
        };
    }
    if t == DType::F32 {
        sem::ulp_distance_f32(a as f32, b as f32)
    } else {
        sem::ulp_distance_f64(a, b)
    }
}

/// Exact agreement: same bits (so -0 differs from 0), any NaN equal to any NaN.
fn same(a: V, b: V) -> bool {
    match (a, b) {
        (V::B(x), V::B(y)) => x == y,
        (V::I(x), V::I(y)) => x == y,
        (V::F(x), V::F(y)) => (x.is_nan() && y.is_nan()) || x.to_bits() == y.to_bits(),
        _ => false,
    }
}

// ---- kernels -----------------------------------------------------------------------------

fn load(b: &mut KernelBuilder, t: DType) -> Value {
    let i = b.input(t);
    b.push(Inst::Load { input: i }, t)
}

fn unary_kernel(op: UnaryOp, t: DType) -> Kernel {
    let mut b = KernelBuilder::new();
    let x = load(&mut b, t);
    let r = op.signature(t).unwrap().1;
    let v = b.push(Inst::Unary { op, arg: x }, r);
    b.finish(Output::Store { value: v })
}

fn binary_kernel(op: BinaryOp, t: DType) -> Kernel {
    let mut b = KernelBuilder::new();
    let x = load(&mut b, t);
    let y = load(&mut b, t);
    let r = op.signature(t).unwrap().1;
    let v = b.push(Inst::Binary { op, lhs: x, rhs: y }, r);
    b.finish(Output::Store { value: v })
}

fn run(b: &GpuBackend, k: &Kernel, inputs: &[DynArray], shape: &[usize]) -> DynArray {
    let gk = b.compile(k).unwrap_or_else(|e| panic!("{e}\n{k}"));
    let views: Vec<ArgView<'_>> = inputs.iter().map(|a| a.view()).collect();
    b.run(&gk, &views, shape)
        .unwrap_or_else(|e| panic!("{e}\n{k}"))
}

fn bound(name: &str, t: DType) -> u64 {
    let (_, b64, b32) = wgsl::ULP_BOUNDS
        .iter()
        .find(|(n, _, _)| *n == name)
        .unwrap_or_else(|| panic!("no bound for {name}"));
    if t == DType::F32 {
        *b32
    } else {
        *b64
    }
}

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

fn sum_kernel(t: DType) -> Kernel {
    let mut kb = KernelBuilder::new();
    let x = load(&mut kb, t);
    let acc = ReduceOp::Sum.signature(t).unwrap().0;
    let v = if acc == t {
        x
    } else {
        kb.push(Inst::Cast { arg: x }, acc)
    };
    kb.finish(Output::Reduce {
        op: ReduceOp::Sum,
        value: v,
    })
}

#[test]
fn sum_matches_host() {
    let Some(b) = backend() else { return };
    for n in [0usize, 1, 255, 256, 257, 70_000, 1_000_003] {
        // Integers: exact.
        if b.info().i64 {
            let xs: Vec<V> = (0..n)
                .map(|i| V::I((i as i64 * 7919) % 2001 - 1000))
                .collect();
            let want: i64 = xs
                .iter()
                .map(|v| if let V::I(x) = v { *x } else { 0 })
                .sum();
            let got = run(
                b,
                &sum_kernel(DType::I32),
                &[array(DType::I32, &xs, &[n])],
                &[n],
            );
            assert_eq!(got.shape(), &[] as &[usize]);
            assert_eq!(
                got.into_i64().unwrap().into_iter().next(),
                Some(want),
                "sum of {n} i32"
            );
            let bs: Vec<V> = (0..n).map(|i| V::B(i % 3 == 0)).collect();
            let got = run(
                b,
                &sum_kernel(DType::Bool),
                &[array(DType::Bool, &bs, &[n])],
                &[n],
            );
            assert_eq!(
                got.into_i64().unwrap().into_iter().next(),
                Some(n.div_ceil(3) as i64)
            );
        }
        // Floats: against an f64 (or exact-ish) host sum, to the pairwise-sum tolerance.
        for t in [DType::F32, DType::F64]
            .into_iter()
            .filter(|t| supported(b, *t))
        {
            let xs: Vec<V> = (0..n)
                .map(|i| V::F(round_to(t, ((i % 1000) as f64 - 499.5) * 0.37)))
                .collect();
            let want: f64 = xs
                .iter()
                .map(|v| if let V::F(x) = v { *x } else { 0.0 })
                .sum();
            let got = run(b, &sum_kernel(t), &[array(t, &xs, &[n])], &[n])
                .scalar_f64()
                .unwrap();
            let scale: f64 = xs
                .iter()
                .map(|v| if let V::F(x) = v { x.abs() } else { 0.0 })
                .sum::<f64>()
                .max(1.0);
            let eps = if t == DType::F32 { 1e-6 } else { 1e-14 };
            assert!(
                (got - want).abs() <= eps * scale,
                "sum of {n} {t}: GPU {got}, host {want}"
            );
        }
    }
}

#[test]
fn strided_broadcast_zero_d_and_empty_inputs() {
    let Some(b) = backend() else { return };
    let t = DType::F32;
    // x * y + x with x strided (every other column, reversed rows) and y broadcast (a row).
    let mut kb = KernelBuilder::new();
    let x = load(&mut kb, t);
    let y = load(&mut kb, t);
    let m = kb.push(
        Inst::Binary {
            op: BinaryOp::Mul,
            lhs: x,
            rhs: y,
        },
        t,
    );
    let a = kb.push(
        Inst::Binary {
            op: BinaryOp::Add,
            lhs: m,
            rhs: x,
        },
        t,
    );
    let k = kb.finish(Output::Store { value: a });
    let gk = b.compile(&k).unwrap();
    let base = ArrayD::<f32>::from_shape_fn(IxDyn(&[5, 8]), |i| (i[0] * 10 + i[1]) as f32);
    let xs = base.slice(ndarray::s![..;-1, ..;2]).into_dyn();
    let row = ArrayD::<f32>::from_shape_fn(IxDyn(&[4]), |i| i[0] as f32 + 0.5);
    let col = ArrayD::<f32>::from_shape_fn(IxDyn(&[5, 1]), |i| i[0] as f32 - 2.0);
    let scalar = ArrayD::<f32>::from_elem(IxDyn(&[]), 3.0);
    for y in [row.view(), col.view(), scalar.view()] {
        let got = b
            .run(
                &gk,
                &[ArgView::from(xs.view()), ArgView::from(y.view())],
                &[5, 4],
            )
            .unwrap()
            .into_f32()
            .unwrap();
        let yb = y.broadcast(IxDyn(&[5, 4])).unwrap();
        let want = ndarray::Zip::from(&xs)
            .and(&yb)
            .map_collect(|&a, &c| a * c + a);
        assert_eq!(got, want, "y of shape {:?}", y.shape());
    }
    // A transposed (column-major) input.
    let tr = base.t();
    let gk1 = b.compile(&unary_kernel(UnaryOp::Neg, t)).unwrap();
    let got = b
        .run(&gk1, &[ArgView::from(tr.view())], &[8, 5])
        .unwrap()
        .into_f32()
        .unwrap();
    assert_eq!(got, tr.mapv(|v| -v));
    // 0-d in, 0-d out.
    let got = b
        .run(&gk1, &[ArgView::from(scalar.view())], &[])
        .unwrap()
        .into_f32()
        .unwrap();
    assert_eq!(got.shape(), &[] as &[usize]);
    assert_eq!(got.into_iter().next(), Some(-3.0));
    // Empty.
    let empty = ArrayD::<f32>::zeros(IxDyn(&[0, 3]));
    let got = b
        .run(&gk1, &[ArgView::from(empty.view())], &[0, 3])
        .unwrap();
    assert_eq!(got.shape(), &[0, 3]);
    let s = b.compile(&sum_kernel(t)).unwrap();
    assert_eq!(
        b.run(&s, &[ArgView::from(empty.view())], &[0, 3])
            .unwrap()
            .scalar_f64(),
        Some(0.0)
    );
    // Shape errors are typed, not panics.
    assert!(b.run(&gk1, &[ArgView::from(row.view())], &[3]).is_err());
}

#[test]
fn chunked_runs_equal_one_pass() {
    // A backend of its own: the small binding limit must not leak into concurrent tests.
    if backend().is_none() {
        return;
    }
    let b = &GpuBackend::new(0).unwrap();
    // Force chunking with a 4 KiB binding limit (1024 f32 per chunk): inputs above it stream,
    // a broadcast input is gathered per chunk; results must equal the one-pass run exactly.
    let mut kb = KernelBuilder::new();
    let x = load(&mut kb, DType::F32);
    let y = load(&mut kb, DType::F32);
    let e = kb.push(
        Inst::Unary {
            op: UnaryOp::Exp,
            arg: x,
        },
        DType::F32,
    );
    let v = kb.push(
        Inst::Binary {
            op: BinaryOp::Sub,
            lhs: e,
            rhs: y,
        },
        DType::F32,
    );
    let store = kb.finish(Output::Store { value: v });
    let sum = Kernel {
        outputs: vec![Output::Reduce {
            op: ReduceOp::Sum,
            value: v,
        }],
        ..store.clone()
    };
    let xs = ArrayD::<f32>::from_shape_fn(IxDyn(&[37, 301]), |i| {
        ((i[0] * 301 + i[1]) % 97) as f32 * 0.01
    });
    let ys_big = ArrayD::<f32>::from_shape_fn(IxDyn(&[37, 1]), |i| i[0] as f32);
    let ys_small = ArrayD::<f32>::from_shape_fn(IxDyn(&[301]), |i| i[0] as f32 * 0.5);
    let ys_wide = ArrayD::<f32>::from_shape_fn(IxDyn(&[1, 301]), |i| i[1] as f32 * 0.25);
    let gs = b.compile(&store).unwrap();
    let gsum = b.compile(&sum).unwrap();
    for y in [ys_big.view(), ys_small.view(), ys_wide.view()] {
        let args = [ArgView::from(xs.view()), ArgView::from(y.view())];
        b.set_binding_limit(None);
        let one = b.run(&gs, &args, &[37, 301]).unwrap();
        let one_sum = b.run(&gsum, &args, &[37, 301]).unwrap();
        let d0 = b.counters().dispatches;
        b.set_binding_limit(Some(4096));
        let chunked = b.run(&gs, &args, &[37, 301]).unwrap();
        assert!(
            b.counters().dispatches - d0 >= 10,
            "the run was not chunked"
        );
        let chunked_sum = b.run(&gsum, &args, &[37, 301]).unwrap();
        b.set_binding_limit(None);
        assert_eq!(one, chunked, "y {:?}", y.shape());
        let (s1, s2) = (
            one_sum.scalar_f64().unwrap(),
            chunked_sum.scalar_f64().unwrap(),
        );
        assert!(
            (s1 - s2).abs() <= 1e-5 * s1.abs().max(1.0),
            "sum {s1} vs chunked {s2}"
        );
    }
}

#[test]
fn larger_than_one_binding_f64() {
    let Some(b) = backend() else { return };
    if !b.info().f64 {
        println!("skipping: adapter has no f64");
        return;
    }
    // 20M f64 = 160 MB > the 128 MiB binding limit of lavapipe: (5x + 4)x + 1, exact.
    let n = 20_000_000usize;
    let xs = ArrayD::<f64>::from_shape_fn(IxDyn(&[n]), |i| (i[0] % 100_003) as f64 * 1e-3 - 50.0);
    let mut kb = KernelBuilder::new();
    let x = load(&mut kb, DType::F64);
    let c5 = kb.push(Inst::Const(Const::F64(5.0)), DType::F64);
    let c4 = kb.push(Inst::Const(Const::F64(4.0)), DType::F64);
    let c1 = kb.push(Inst::Const(Const::F64(1.0)), DType::F64);
    let m = kb.push(
        Inst::Binary {
            op: BinaryOp::Mul,
            lhs: c5,
            rhs: x,
        },
        DType::F64,
    );
    let a = kb.push(
        Inst::Binary {
            op: BinaryOp::Add,
            lhs: m,
            rhs: c4,
        },
        DType::F64,
    );
    let m2 = kb.push(
        Inst::Binary {
            op: BinaryOp::Mul,
            lhs: a,
            rhs: x,
        },
        DType::F64,
    );
    let p = kb.push(
        Inst::Binary {
            op: BinaryOp::Add,
            lhs: m2,
            rhs: c1,
        },
        DType::F64,
    );
    let k = kb.finish(Output::Store { value: p });
    let gk = b.compile(&k).unwrap();
    let d0 = b.counters().dispatches;
    let got = b
        .run(&gk, &[ArgView::from(xs.view())], &[n])
        .unwrap()
        .into_f64()
        .unwrap();
    assert!(
        b.counters().dispatches - d0 >= 2,
        "160 MB must be processed in chunks"
    );
    let want = xs.mapv(|x| (5.0 * x + 4.0) * x + 1.0);
    assert!(got == want, "GPU result differs from the host");
}

#[test]
fn pipeline_cache_and_counters() {
    let Some(b) = backend() else { return };
    let k = unary_kernel(UnaryOp::Floor, DType::F32);
    let c0 = b.counters();
    let k1 = b.compile(&k).unwrap();
    let k2 = b.compile(&k).unwrap();
    let c1 = b.counters();
    assert!(std::sync::Arc::ptr_eq(&k1, &k2));
    assert!(c1.cache_hits > c0.cache_hits);
    let xs = ArrayD::<f32>::from_elem(IxDyn(&[1000]), 2.5);
    let got = b.run(&k1, &[ArgView::from(xs.view())], &[1000]).unwrap();
    let c2 = b.counters();
    assert!(c2.bytes_uploaded - c1.bytes_uploaded >= 4000);
    assert!(c2.bytes_downloaded - c1.bytes_downloaded >= 4000);
    assert_eq!(got.into_f32().unwrap(), xs.mapv(f32::floor));
}

#[test]
fn unsupported_dtypes_are_refused_cleanly() {
    let Some(b) = backend() else { return };
    let k = unary_kernel(UnaryOp::Exp, DType::F64);
    match b.compile(&k) {
        Ok(_) => assert!(b.info().f64),
        Err(e) => {
            assert!(!b.info().f64);
            assert!(matches!(e, fusebox::Error::UnsupportedDtype { .. }), "{e}");
        }
    }
}

#[test]
fn resident_arrays_are_not_re_uploaded() {
    // A backend of its own: its counters must not see the concurrent tests' transfers.
    if backend().is_none() {
        return;
    }
    let b = &GpuBackend::new(0).unwrap();
    // y = x * 2 + 1 on the device, then sum(y) and y - x, without touching the host in between.
    let t = DType::F32;
    let mut kb = KernelBuilder::new();
    let x = load(&mut kb, t);
    let c2 = kb.push(Inst::Const(Const::F32(2.0)), t);
    let c1 = kb.push(Inst::Const(Const::F32(1.0)), t);
    let m = kb.push(
        Inst::Binary {
            op: BinaryOp::Mul,
            lhs: x,
            rhs: c2,
        },
        t,
    );
    let y = kb.push(
        Inst::Binary {
            op: BinaryOp::Add,
            lhs: m,
            rhs: c1,
        },
        t,
    );
    let affine = b.compile(&kb.finish(Output::Store { value: y })).unwrap();
    let sub = b.compile(&binary_kernel(BinaryOp::Sub, t)).unwrap();
    let sum = b.compile(&sum_kernel(t)).unwrap();
    let xs = ArrayD::<f32>::from_shape_fn(IxDyn(&[64, 50]), |i| (i[0] * 50 + i[1]) as f32 * 0.25);
    let row = ArrayD::<f32>::from_shape_fn(IxDyn(&[50]), |i| i[0] as f32);

    let c0 = b.counters();
    let dx = b.upload(&ArgView::from(xs.view())).unwrap();
    let drow = b.upload(&ArgView::from(row.view())).unwrap();
    let c1 = b.counters();
    assert_eq!(c1.bytes_uploaded - c0.bytes_uploaded, (64 * 50 + 50) * 4);
    let dy = b.run_resident(&affine, &[&dx], &[64, 50]).unwrap();
    let dd = b.run_resident(&sub, &[&dy, &drow], &[64, 50]).unwrap();
    let ds = b.run_resident(&sum, &[&dy], &[64, 50]).unwrap();
    let c2 = b.counters();
    assert_eq!(
        c2.bytes_uploaded, c1.bytes_uploaded,
        "data already on the device was re-uploaded"
    );
    assert_eq!(
        c2.bytes_downloaded, c1.bytes_downloaded,
        "a resident run read data back"
    );
    assert_eq!((dy.shape(), ds.shape()), (&[64usize, 50][..], &[][..]));

    let want_y = xs.mapv(|v| v * 2.0 + 1.0);
    assert_eq!(b.download(&dy).unwrap().into_f32().unwrap(), want_y);
    let want_d = &want_y - &row;
    assert_eq!(b.download(&dd).unwrap().into_f32().unwrap(), want_d);
    let s = b.download(&ds).unwrap().scalar_f64().unwrap();
    let host: f64 = want_y.iter().map(|&v| v as f64).sum();
    assert!(
        (s - host).abs() <= 1e-6 * host.abs(),
        "resident sum {s} vs host {host}"
    );
    assert!(b.counters().bytes_downloaded > c2.bytes_downloaded);
    // bool round trip through the u32 device layout.
    let flags = ArrayD::from_shape_vec(IxDyn(&[3]), vec![true, false, true]).unwrap();
    let df = b.upload(&ArgView::from(flags.view())).unwrap();
    assert_eq!(b.download(&df).unwrap().into_bool().unwrap(), flags);
}

// ---- regressions: whole expressions (constants, chained operators, casts) -----------------
// lavapipe compiles with fast-math assumptions; these failed in the differential suite.

fn float_vals(t: DType, xs: &[f64]) -> DynArray {
    array(
        t,
        &xs.iter().map(|&x| V::F(round_to(t, x))).collect::<Vec<_>>(),
        &[xs.len()],
    )
}

/// `x op c` (or `c op x`) with a float constant `c`, checked exactly against `semantics.rs`.
fn check_const_op(g: &GpuBackend, t: DType, op: BinaryOp, c: f64, const_left: bool, xs: &[f64]) {
    let mut b = KernelBuilder::new();
    let x = load(&mut b, t);
    let k = match t {
        DType::F32 => Const::F32(c as f32),
        _ => Const::F64(c),
    };
    let cv = b.push(Inst::Const(k), t);
    let (lhs, rhs) = if const_left { (cv, x) } else { (x, cv) };
    let v = b.push(Inst::Binary { op, lhs, rhs }, t);
    let k = b.finish(Output::Store { value: v });
    let out = values(&run(g, &k, &[float_vals(t, xs)], &[xs.len()]));
    for (i, &x) in xs.iter().enumerate() {
        let x = V::F(round_to(t, x));
        let c = V::F(round_to(t, c));
        let (a, bb) = if const_left { (c, x) } else { (x, c) };
        let want = oracle_binary(op, t, a, bb);
        assert!(
            same(out[i], want),
            "{t} {a:?} {op} {bb:?}: got {:?}, want {want:?}",
            out[i]
        );
    }
}

/// Mesa folded `x * 0.0` to 0 (wrong for NaN and inf) even with the constant passed through
/// `x * 1`: float constants now come from the parameter buffer.
#[test]
fn constant_times_nan_or_inf_is_nan() {
    let Some(g) = backend() else { return };
    let xs = [
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        1.5,
        -0.0,
        0.0,
        1e300,
    ];
    for t in [DType::F32, DType::F64] {
        if !supported(g, t) {
            continue;
        }
        for c in [0.0, -0.0, 2.0, f64::INFINITY, f64::NAN] {
            for left in [false, true] {
                check_const_op(g, t, BinaryOp::Mul, c, left, &xs);
            }
        }
    }
}

/// `-0.0 + 0.0` is `+0.0`; a driver that folds `x + 0.0` to `x` gives `-0.0`.
#[test]
fn negative_zero_plus_zero_constant_is_positive_zero() {
    let Some(g) = backend() else { return };
    let xs = [-0.0, 0.0, 1.0, f64::NAN, f64::NEG_INFINITY];
    for t in [DType::F32, DType::F64] {
        if !supported(g, t) {
            continue;
        }
        for left in [false, true] {
            check_const_op(g, t, BinaryOp::Add, 0.0, left, &xs);
            check_const_op(g, t, BinaryOp::Sub, 0.0, left, &xs);
        }
        check_const_op(g, t, BinaryOp::Add, -0.0, false, &xs);
    }
}

/// Kernels that differ only in a float constant share one pipeline (the constant is not in the
/// shader text), and each run uses its own constant.
#[test]
fn kernels_differing_only_in_constants_share_a_pipeline() {
    let Some(g) = backend() else { return };
    let xs = [1.0, -2.5, 3.0];
    for c in [2.0, 3.0, -0.5, 2.0] {
        check_const_op(g, DType::F32, BinaryOp::Mul, c, false, &xs);
        check_const_op(g, DType::F32, BinaryOp::Sub, c, true, &xs);
    }
}

/// f64 `2.0 * a + 3.0 * b * b - a / b` differed from the CPU in the last bit for ~1/4 of the
/// elements: the products' `* 1` barriers were factored out of the sum and the rest contracted
/// into an FMA. Now exact (every operation rounded once, unfused), f32 too.
#[test]
fn compound_float_expression_is_exact() {
    let Some(g) = backend() else { return };
    let n = 4096;
    for t in [DType::F32, DType::F64] {
        if !supported(g, t) {
            continue;
        }
        let av = random(t, n, 11);
        let bv = random(t, n, 12);
        let mut b = KernelBuilder::new();
        let x = load(&mut b, t);
        let y = load(&mut b, t);
        let (k2, k3) = match t {
            DType::F32 => (Const::F32(2.0), Const::F32(3.0)),
            _ => (Const::F64(2.0), Const::F64(3.0)),
        };
        let c2 = b.push(Inst::Const(k2), t);
        let c3 = b.push(Inst::Const(k3), t);
        let bin = |b: &mut KernelBuilder, op, lhs, rhs| b.push(Inst::Binary { op, lhs, rhs }, t);
        let m1 = bin(&mut b, BinaryOp::Mul, c2, x);
        let m2 = bin(&mut b, BinaryOp::Mul, c3, y);
        let m3 = bin(&mut b, BinaryOp::Mul, m2, y);
        let s = bin(&mut b, BinaryOp::Add, m1, m3);
        let d = bin(&mut b, BinaryOp::Div, x, y);
        let r = bin(&mut b, BinaryOp::Sub, s, d);
        let k = b.finish(Output::Store { value: r });
        let out = values(&run(
            g,
            &k,
            &[array(t, &av, &[n]), array(t, &bv, &[n])],
            &[n],
        ));
        let mut bad = Vec::new();
        for i in 0..n {
            let op = |o, p, q| oracle_binary(o, t, p, q);
            let two = V::F(2.0);
            let three = V::F(3.0);
            let want = op(
                BinaryOp::Sub,
                op(
                    BinaryOp::Add,
                    op(BinaryOp::Mul, two, av[i]),
                    op(BinaryOp::Mul, op(BinaryOp::Mul, three, bv[i]), bv[i]),
                ),
                op(BinaryOp::Div, av[i], bv[i]),
            );
            if !same(out[i], want) {
                bad.push(format!("{:?} {:?}: {:?} vs {want:?}", av[i], bv[i], out[i]));
            }
        }
        assert!(
            bad.is_empty(),
            "{t}: {} differ: {:?}",
            bad.len(),
            &bad[..bad.len().min(5)]
        );
    }
}

/// `//` `%` `**` of an int32 array cast to int64 gave wrong signs (-100 // -99 gave 0):
/// lavapipe miscompiles `(a < 0) != (b < 0)` when it can see `a` is a sign-extended i32.
#[test]
fn int64_floordiv_rem_pow_of_sign_extended_int32() {
    let Some(g) = backend() else { return };
    if !supported(g, DType::I64) {
        return;
    }
    let mut small = Vec::new();
    let mut wide = Vec::new();
    let edges = [i32::MIN as i64, i32::MAX as i64, i32::MIN as i64 + 1];
    let range: Vec<i64> = (-40..=40).chain(edges).collect();
    for &a in &range {
        for &b in &range {
            small.push(V::I(a));
            wide.push(V::I(b));
        }
    }
    let m = small.len();
    for op in [
        BinaryOp::FloorDiv,
        BinaryOp::Rem,
        BinaryOp::Fmod,
        BinaryOp::Pow,
    ] {
        for cast_lhs in [true, false] {
            let mut b = KernelBuilder::new();
            let x = load(&mut b, DType::I32);
            let y = load(&mut b, DType::I64);
            let xc = b.push(Inst::Cast { arg: x }, DType::I64);
            let (lhs, rhs) = if cast_lhs { (xc, y) } else { (y, xc) };
            let v = b.push(Inst::Binary { op, lhs, rhs }, DType::I64);
            let k = b.finish(Output::Store { value: v });
            let ins = [
                array(DType::I32, &small, &[m]),
                array(DType::I64, &wide, &[m]),
            ];
            let out = values(&run(g, &k, &ins, &[m]));
            for i in 0..m {
                let (a, bb) = if cast_lhs {
                    (small[i], wide[i])
                } else {
                    (wide[i], small[i])
                };
                let want = oracle_binary(op, DType::I64, a, bb);
                assert!(
                    same(out[i], want),
                    "{a:?} {op} {bb:?} (cast lhs: {cast_lhs}): got {:?}, want {want:?}",
                    out[i]
                );
            }
        }
    }
}

/// tanh(-0.1113) was 4 ULP off (the expm1 formula near 0); now a series there.
#[test]
fn tanh_near_zero_within_bound() {
    let Some(g) = backend() else { return };
    if !supported(g, DType::F64) {
        return;
    }
    let n = 20001;
    let xs: Vec<f64> = (0..n)
        .map(|i| -1.0 + 2.0 * i as f64 / (n - 1) as f64)
        .collect();
    let k = unary_kernel(UnaryOp::Tanh, DType::F64);
    let out = values(&run(g, &k, &[float_vals(DType::F64, &xs)], &[n]));
    let limit = bound("tanh", DType::F64);
    let mut worst = (0, 0.0);
    for (i, &x) in xs.iter().enumerate() {
        let V::F(got) = out[i] else {
            panic!("not a float")
        };
        let u = ulps(DType::F64, got, sem::unary_f64(UnaryOp::Tanh, x));
        if u > worst.0 {
            worst = (u, x);
        }
    }
    println!("tanh on [-1, 1]: worst {} ULP at {:e}", worst.0, worst.1);
    assert!(
        worst.0 <= limit,
        "tanh: {} ULP at {:e} > {limit}",
        worst.0,
        worst.1
    );
}

/// sin/cos/tan of |x| > 1.6e6 gave values far outside [-1, 1] (-inf, NaN, 1e27): the three-part
/// Cody-Waite reduction loses all bits there. Now a Payne-Hanek reduction above 2^20; the
/// differential suite met it through `sin(exp(x - a))`.
#[test]
fn sin_cos_tan_of_huge_arguments() {
    let Some(g) = backend() else { return };
    if !supported(g, DType::F64) {
        return;
    }
    let mut r = Lcg(7);
    let mut xs: Vec<f64> = (0..4000).map(|_| r.mag(6.0, 308.0, true)).collect();
    xs.extend([
        1048576.0,
        -1048576.0,
        1.6e6,
        f64::MAX,
        -f64::MAX,
        1e22,
        2f64.powi(1023),
        6381956970095103.0 * 2f64.powi(797), // near a multiple of pi/2
        4.2655066397560045e230f64.sqrt(),
    ]);
    let n = xs.len();
    for (op, name) in [
        (UnaryOp::Sin, "sin"),
        (UnaryOp::Cos, "cos"),
        (UnaryOp::Tan, "tan"),
    ] {
        let k = unary_kernel(op, DType::F64);
        let out = values(&run(g, &k, &[float_vals(DType::F64, &xs)], &[n]));
        let limit = bound(name, DType::F64);
        let mut worst = (0, 0.0);
        for (i, &x) in xs.iter().enumerate() {
            let V::F(got) = out[i] else {
                panic!("not a float")
            };
            let want = sem::unary_f64(op, x);
            let u = ulps(DType::F64, got, want);
            // Where x lies within ~1e-9 of a multiple of pi/2 the reference (glibc) itself is
            // several ULP off: at x = 5.319372648326541e255, cos is -4.687165924254628e-19
            // (exact rational arithmetic with 5000 bits of pi; our result) and glibc 2.36
            // gives -4.68716592425462e-19 (8 ULP); tan there is 14 ULP apart. There (results below
            // 1e-9 or above 1e9 in magnitude) only a 16 ULP agreement is asserted.
            if want.abs() < 1e-9 || want.abs() > 1e9 {
                assert!(u <= 16, "{name}({x:e}): {u} ULP from the reference");
                continue;
            }
            if u > worst.0 {
                worst = (u, x);
            }
        }
        println!(
            "{name} of huge arguments: worst {} ULP at {:e}",
            worst.0, worst.1
        );
        assert!(
            worst.0 <= limit,
            "{name}: {} ULP at {:e} > {limit}",
            worst.0,
            worst.1
        );
    }
}

// ---- reductions: every op, dtype, axis set and layout against the IR interpreter -----------

/// A kernel of one input of dtype `t` reducing it with each of `ops` (cast to the accumulator
/// dtype where the op needs it): a multi-output kernel when `ops` has several.
fn reduce_kernel(t: DType, ops: &[ReduceOp]) -> Kernel {
    let mut kb = KernelBuilder::new();
    let x = load(&mut kb, t);
    let mut outs = Vec::new();
    for &op in ops {
        let acc = op.signature(t).unwrap().0;
        let value = if acc == t {
            x
        } else {
            kb.push(Inst::Cast { arg: x }, acc)
        };
        outs.push(Output::Reduce { op, value });
    }
    kb.finish_many(outs)
}

/// Values with many ties, both zeros, rare infinities and NaNs (so some rows have a NaN and
/// others not), and products that stay finite: mostly +-1, now and then 2, 0.5, 0, 3, extremes.
fn tie_values(t: DType, n: usize, seed: u64) -> Vec<V> {
    let mut r = Lcg(seed);
    (0..n)
        .map(|_| {
            let u = r.next() % 1000;
            let s = if r.next() & 1 == 1 { -1.0 } else { 1.0 };
            match t {
                DType::Bool => V::B(u < 500),
                DType::I32 | DType::I64 => V::I(match u {
                    0 => i32::MIN as i64,
                    1 => i32::MAX as i64,
                    2..=9 => 0,
                    10..=20 => s as i64 * 3,
                    _ => s as i64 * (1 + (u % 2) as i64),
                }),
                _ => V::F(match u {
                    0 => f64::NAN,
                    1 => s * f64::INFINITY,
                    2..=9 => s * 0.0,
                    10 => s * 2.0,
                    11 => s * 0.5,
                    12..=40 => s * 0.75,
                    _ => s,
                }),
            }
        })
        .collect()
}

#[derive(Clone, Copy, Debug)]
enum Lay {
    Contiguous,
    Transposed,
    Reversed,
    /// The input has size 1 along axis 0, broadcast to the iteration space.
    Broadcast,
}

/// An input of dtype `t` for the iteration space `shape`, laid out as `lay`.
fn laid_out(t: DType, shape: &[usize], lay: Lay, seed: u64) -> DynArray {
    let mut phys: Vec<usize> = shape.to_vec();
    match lay {
        Lay::Transposed => phys.reverse(),
        Lay::Broadcast if !phys.is_empty() => phys[0] = 1,
        _ => {}
    }
    let n: usize = phys.iter().product();
    let a = array(t, &tie_values(t, n, seed), &phys);
    macro_rules! re {
        ($x:expr) => {{
            let mut x = $x;
            match lay {
                Lay::Transposed => x = x.reversed_axes(),
                Lay::Reversed => {
                    for d in 0..x.ndim() {
                        x.invert_axis(ndarray::Axis(d));
                    }
                }
                _ => {}
            }
            DynArray::from(x)
        }};
    }
    match a {
        DynArray::Bool(x) => re!(x),
        DynArray::I32(x) => re!(x),
        DynArray::I64(x) => re!(x),
        DynArray::F32(x) => re!(x),
        DynArray::F64(x) => re!(x),
    }
}

/// GPU result vs interpreter result of one output: exact (any NaN matching any NaN, zeros
/// by sign) except float sums and products, which match to `tol` relative.
fn check_reduced(got: &DynArray, want: &DynArray, op: ReduceOp, what: &str) {
    assert_eq!(got.dtype(), want.dtype(), "{what}: dtype");
    assert_eq!(got.shape(), want.shape(), "{what}: shape");
    let inexact = matches!(op, ReduceOp::Sum | ReduceOp::Prod) && want.dtype().is_float();
    let tol = if want.dtype() == DType::F32 {
        1e-5
    } else {
        1e-12
    };
    for (i, (g, w)) in values(got).into_iter().zip(values(want)).enumerate() {
        let ok = match (g, w) {
            (V::F(g), V::F(w)) if w.is_nan() => g.is_nan(),
            (V::F(g), V::F(w)) if inexact && w.is_finite() => {
                (g - w).abs() <= tol * w.abs().max(1.0)
            }
            (V::F(g), V::F(w)) => g.to_bits() == w.to_bits(),
            (V::I(g), V::I(w)) => g == w,
            (V::B(g), V::B(w)) => g == w,
            _ => false,
        };
        assert!(ok, "{what}: element {i}: GPU {g:?}, interpreter {w:?}");
    }
}

/// Run `k` on the GPU (host and device-resident paths) and in the interpreter; compare.
fn check_against_interp(
    b: &GpuBackend,
    gk: &fusebox::unstable::gpu::GpuKernel,
    inputs: &[DynArray],
    shape: &[usize],
    axes: &[usize],
    resident: bool,
    what: &str,
) {
    let k = gk.kernel();
    let views: Vec<ArgView<'_>> = inputs.iter().map(|a| a.view()).collect();
    let want = fusebox::unstable::interp::run_many(k, &views, shape, axes);
    let got = b.run_many(gk, &views, shape, axes);
    let (want, got) = match (want, got) {
        (Ok(w), Ok(g)) => (w, g),
        (Err(w), Err(g)) => {
            assert_eq!(
                std::mem::discriminant(&w),
                std::mem::discriminant(&g),
                "{what}: interpreter {w}, GPU {g}"
            );
            return;
        }
        (w, g) => panic!("{what}: interpreter {w:?}, GPU {g:?}"),
    };
    assert_eq!(got.len(), k.outputs.len(), "{what}");
    let op_of = |o: &Output| match *o {
        Output::Reduce { op, .. } => op,
        Output::Store { .. } => ReduceOp::Min, // compared exactly
    };
    for (o, (g, w)) in got.iter().zip(&want).enumerate() {
        check_reduced(g, w, op_of(&k.outputs[o]), &format!("{what}, output {o}"));
    }
    if resident {
        let dev: Vec<_> = views.iter().map(|v| b.upload(v).unwrap()).collect();
        let refs: Vec<_> = dev.iter().collect();
        let outs = b
            .run_resident_many(gk, &refs, shape, axes)
            .unwrap_or_else(|e| panic!("{what}, resident: {e}"));
        for (o, (g, w)) in outs.iter().zip(&want).enumerate() {
            let g = b.download(g).unwrap();
            check_reduced(
                &g,
                w,
                op_of(&k.outputs[o]),
                &format!("{what}, resident, output {o}"),
            );
        }
    }
}

/// Every subset of at most two axes (the empty one too: each output element reduces one
/// value), and all axes.
fn axis_sets(ndim: usize) -> Vec<Vec<usize>> {
    let mut v: Vec<Vec<usize>> = vec![(0..ndim).collect(), vec![]];
    for a in 0..ndim {
        v.push(vec![a]);
        for c in a + 1..ndim {
            v.push(vec![a, c]);
        }
    }
    v.sort();
    v.dedup();
    v
}

#[test]
fn every_reduction_dtype_axis_and_layout_matches_the_interpreter() {
    let Some(b) = backend() else { return };
    let shapes: &[&[usize]] = &[
        &[],
        &[1],
        &[7],
        &[3, 5, 7],
        &[2, 1, 9],
        &[5, 300, 3],
        &[70, 3, 130],
        &[1, 1, 1],
        &[0, 4, 3],
    ];
    for t in DType::ALL.into_iter().filter(|t| supported(b, *t)) {
        let k = reduce_kernel(t, &ReduceOp::ALL);
        let gk = b.compile(&k).unwrap_or_else(|e| panic!("{t}: {e}"));
        let mut seed = 1;
        for &shape in shapes {
            for axes in axis_sets(shape.len()) {
                for lay in [
                    Lay::Contiguous,
                    Lay::Transposed,
                    Lay::Reversed,
                    Lay::Broadcast,
                ] {
                    seed += 1;
                    let x = laid_out(t, shape, lay, seed);
                    // The resident path shares the shader; check it on part of the cases.
                    let resident = matches!(lay, Lay::Contiguous | Lay::Broadcast);
                    let what = format!("{t} {shape:?} axes {axes:?} {lay:?}");
                    check_against_interp(b, &gk, &[x], shape, &axes, resident, &what);
                }
            }
        }
    }
}

#[test]
fn reductions_over_many_workgroups_and_combine_passes() {
    let Some(b) = backend() else { return };
    // Full reductions beyond one workgroup (2048 values) and beyond one combine pass; rows and
    // columns of a matrix (reduced axis inner and outer); one op at a time too.
    let cases: &[(&[usize], &[usize])] = &[
        (&[2049], &[0]),
        (&[300_001], &[0]),
        (&[5_000_000], &[0]),
        (&[3001, 37], &[0]),
        (&[37, 3001], &[1]),
        (&[20_000, 3], &[0]),
        (&[3, 20_000], &[1]),
        (&[600, 700], &[0, 1]),
        (&[60, 50, 70], &[0, 2]),
    ];
    for t in [DType::F32, DType::I32, DType::Bool, DType::F64, DType::I64]
        .into_iter()
        .filter(|t| supported(b, *t))
    {
        let k = reduce_kernel(t, &ReduceOp::ALL);
        let gk = b.compile(&k).unwrap();
        for (i, &(shape, axes)) in cases.iter().enumerate() {
            let n: usize = shape.iter().product();
            // The largest case once per dtype group is enough (it is slow in the interpreter).
            if n > 1_000_000 && t != DType::F32 {
                continue;
            }
            let x = laid_out(t, shape, Lay::Contiguous, 100 + i as u64);
            let what = format!("{t} {shape:?} axes {axes:?}");
            check_against_interp(b, &gk, &[x], shape, axes, n < 1_000_000, &what);
        }
    }
    for op in ReduceOp::ALL {
        let k = reduce_kernel(DType::F32, &[op]);
        let gk = b.compile(&k).unwrap();
        for (shape, axes) in [
            (&[40_000usize][..], &[0usize][..]),
            (&[300, 70], &[0]),
            (&[70, 300], &[1]),
        ] {
            let x = laid_out(DType::F32, shape, Lay::Reversed, 7);
            let what = format!("{op} alone, {shape:?} axes {axes:?}");
            check_against_interp(b, &gk, &[x], shape, axes, true, &what);
        }
    }
}

#[test]
fn nan_zero_and_tie_positions() {
    let Some(b) = backend() else { return };
    for t in [DType::F32, DType::F64]
        .into_iter()
        .filter(|t| supported(b, *t))
    {
        let gk = b.compile(&reduce_kernel(t, &ReduceOp::ALL)).unwrap();
        let n = 5000;
        let cases: Vec<(Vec<f64>, &str)> = vec![
            // Both zeros everywhere: min/max give the last zero, arg* the first.
            (
                (0..n)
                    .map(|i| if i % 3 == 0 { -0.0 } else { 0.0 })
                    .collect(),
                "zeros",
            ),
            (
                (0..n)
                    .map(|i| if i == n - 1 { -0.0 } else { 0.0 })
                    .collect(),
                "last -0",
            ),
            // NaNs late and early: the first wins (value and position). (Products stay clear
            // of overflow next to a zero: the tree's order would give inf * 0.)
            (
                (0..n)
                    .map(|i| {
                        if i == 4000 || i == 4500 {
                            f64::NAN
                        } else {
                            i as f64 * 1e-3
                        }
                    })
                    .collect(),
                "late NaNs",
            ),
            (
                (0..n)
                    .map(|i| if i == 1 { f64::NAN } else { -(i as f64) * 1e-3 })
                    .collect(),
                "early NaN",
            ),
            (
                (0..n)
                    .map(|i| if i % 7 == 0 { f64::INFINITY } else { 1.0 })
                    .collect(),
                "inf ties",
            ),
        ];
        for (xs, name) in cases {
            let vals: Vec<V> = xs.iter().map(|&x| V::F(x)).collect();
            let x = array(t, &vals, &[n]);
            check_against_interp(
                b,
                &gk,
                std::slice::from_ref(&x),
                &[n],
                &[0],
                true,
                &format!("{t} {name}"),
            );
            let x2 = x.reshaped(&[50, 100]).unwrap();
            for axes in [&[0usize][..], &[1]] {
                check_against_interp(
                    b,
                    &gk,
                    std::slice::from_ref(&x2),
                    &[50, 100],
                    axes,
                    false,
                    &format!("{t} {name} {axes:?}"),
                );
            }
        }
    }
}

#[test]
fn fused_multi_output_reductions_and_stores() {
    let Some(b) = backend() else { return };
    let t = DType::F32;
    // sum(x*y), max(|x-y|), argmin(x), any(x > y), mean-style sum of a cast, over a broadcast y.
    let mut kb = KernelBuilder::new();
    let x = load(&mut kb, t);
    let y = load(&mut kb, t);
    let xy = kb.push(
        Inst::Binary {
            op: BinaryOp::Mul,
            lhs: x,
            rhs: y,
        },
        t,
    );
    let d = kb.push(
        Inst::Binary {
            op: BinaryOp::Sub,
            lhs: x,
            rhs: y,
        },
        t,
    );
    let ad = kb.push(
        Inst::Unary {
            op: UnaryOp::Abs,
            arg: d,
        },
        t,
    );
    let gt = kb.push(
        Inst::Binary {
            op: BinaryOp::Gt,
            lhs: x,
            rhs: y,
        },
        DType::Bool,
    );
    let c = kb.push(Inst::Const(Const::F32(0.25)), t);
    let xc = kb.push(
        Inst::Binary {
            op: BinaryOp::Add,
            lhs: x,
            rhs: c,
        },
        t,
    );
    let k = kb.finish_many(vec![
        Output::Reduce {
            op: ReduceOp::Sum,
            value: xy,
        },
        Output::Reduce {
            op: ReduceOp::Max,
            value: ad,
        },
        Output::Reduce {
            op: ReduceOp::ArgMin,
            value: x,
        },
        Output::Reduce {
            op: ReduceOp::Any,
            value: gt,
        },
        Output::Reduce {
            op: ReduceOp::Min,
            value: xc,
        },
    ]);
    let gk = b.compile(&k).unwrap();
    let shape = [300, 257];
    let xs = laid_out(t, &shape, Lay::Transposed, 5);
    let mut r = Lcg(9);
    let yv: Vec<V> = (0..257)
        .map(|_| V::F(round_to(t, r.range(-1.0, 1.0))))
        .collect();
    let ys = array(t, &yv, &[257]);
    for axes in axis_sets(2) {
        check_against_interp(
            b,
            &gk,
            &[xs.clone(), ys.clone()],
            &shape,
            &axes,
            true,
            &format!("fused {axes:?}"),
        );
    }
    // Stores: three outputs of different dtypes in one pass.
    let mut kb = KernelBuilder::new();
    let x = load(&mut kb, t);
    let y = load(&mut kb, t);
    let s = kb.push(
        Inst::Binary {
            op: BinaryOp::Add,
            lhs: x,
            rhs: y,
        },
        t,
    );
    let gt = kb.push(
        Inst::Binary {
            op: BinaryOp::Gt,
            lhs: x,
            rhs: y,
        },
        DType::Bool,
    );
    let ci = kb.push(Inst::Cast { arg: s }, DType::I32);
    let k = kb.finish_many(vec![
        Output::Store { value: s },
        Output::Store { value: gt },
        Output::Store { value: ci },
    ]);
    let gk = b.compile(&k).unwrap();
    check_against_interp(
        b,
        &gk,
        &[xs.clone(), ys.clone()],
        &shape,
        &[],
        true,
        "three stores",
    );
    // Stores with an empty space.
    let e = array(t, &[], &[0, 257]);
    check_against_interp(b, &gk, &[e, ys], &[0, 257], &[], true, "three empty stores");
}

#[test]
fn empty_reductions_give_identities_or_numpys_error() {
    let Some(b) = backend() else { return };
    for t in DType::ALL.into_iter().filter(|t| supported(b, *t)) {
        let with_id = b
            .compile(&reduce_kernel(
                t,
                &[ReduceOp::Sum, ReduceOp::Prod, ReduceOp::Any, ReduceOp::All],
            ))
            .unwrap();
        let x = array(t, &[], &[0, 5]);
        for axes in [&[0usize][..], &[1], &[0, 1]] {
            check_against_interp(
                b,
                &with_id,
                std::slice::from_ref(&x),
                &[0, 5],
                axes,
                true,
                &format!("{t} identities {axes:?}"),
            );
        }
        for op in [
            ReduceOp::Min,
            ReduceOp::Max,
            ReduceOp::ArgMin,
            ReduceOp::ArgMax,
        ] {
            let gk = b.compile(&reduce_kernel(t, &[op])).unwrap();
            let views = [x.view()];
            match b.run_many(&gk, &views, &[0, 5], &[0]) {
                Err(fusebox::Error::EmptyReduction { op: o }) => assert_eq!(o, op.name()),
                other => panic!("{op} of an empty axis: {other:?}"),
            }
            let d = b.upload(&views[0]).unwrap();
            assert!(matches!(
                b.run_resident_many(&gk, &[&d], &[0, 5], &[0]),
                Err(fusebox::Error::EmptyReduction { op: o }) if o == op.name()
            ));
            // Nothing to reduce into: an empty result, no error.
            let got = b.run_many(&gk, &views, &[0, 5], &[1]).unwrap();
            assert_eq!(got[0].shape(), &[0]);
        }
    }
}

#[test]
fn streamed_full_reductions_equal_one_pass() {
    // A backend of its own: the small binding limit must not leak into concurrent tests.
    if backend().is_none() {
        return;
    }
    let b = GpuBackend::new(0).unwrap();
    let t = DType::F32;
    let k = reduce_kernel(t, &ReduceOp::ALL);
    let gk = b.compile(&k).unwrap();
    let shape = [37, 301];
    let x = laid_out(t, &shape, Lay::Contiguous, 3);
    let views = [x.view()];
    let axes = [0, 1];
    let one = b.run_many(&gk, &views, &shape, &axes).unwrap();
    let d0 = b.counters().dispatches;
    b.set_binding_limit(Some(4096));
    let streamed = b.run_many(&gk, &views, &shape, &axes).unwrap();
    assert!(b.counters().dispatches - d0 >= 4, "the run was not chunked");
    let want = fusebox::unstable::interp::run_many(&k, &views, &shape, &axes).unwrap();
    for (o, op) in ReduceOp::ALL.iter().enumerate() {
        check_reduced(&streamed[o], &want[o], *op, &format!("streamed {op}"));
        check_reduced(
            &streamed[o],
            &one[o],
            *op,
            &format!("streamed vs one pass {op}"),
        );
    }
    // A broadcast input is gathered per chunk.
    let row = laid_out(t, &[1, 301], Lay::Contiguous, 4);
    let k2 = binary_reduce(t);
    let g2 = b.compile(&k2).unwrap();
    let v2 = [x.view(), row.view()];
    let got = b.run_many(&g2, &v2, &shape, &axes).unwrap();
    let want = fusebox::unstable::interp::run_many(&k2, &v2, &shape, &axes).unwrap();
    check_reduced(&got[0], &want[0], ReduceOp::Max, "streamed x - row");
    // Along some axes only, a streamed input is refused with a typed error.
    assert!(matches!(
        b.run_many(&gk, &views, &shape, &[1]),
        Err(fusebox::Error::TooLarge { .. })
    ));
    b.set_binding_limit(None);
}

fn binary_reduce(t: DType) -> Kernel {
    let mut kb = KernelBuilder::new();
    let x = load(&mut kb, t);
    let y = load(&mut kb, t);
    let d = kb.push(
        Inst::Binary {
            op: BinaryOp::Sub,
            lhs: x,
            rhs: y,
        },
        t,
    );
    kb.finish(Output::Reduce {
        op: ReduceOp::Max,
        value: d,
    })
}

#[test]
fn f32_sum_of_1e8_is_within_1e_6_of_f64() {
    let Some(b) = backend() else { return };
    let n = 100_000_000usize;
    let mut r = Lcg(42);
    let xs: Vec<f32> = (0..n).map(|_| r.unit() as f32).collect();
    let want: f64 = xs.iter().map(|&v| v as f64).sum();
    let a = ArrayD::from_shape_vec(IxDyn(&[n]), xs).unwrap();
    let gk = b
        .compile(&reduce_kernel(DType::F32, &[ReduceOp::Sum]))
        .unwrap();
    let got = b
        .run(&gk, &[ArgView::from(a.view())], &[n])
        .unwrap()
        .scalar_f64()
        .unwrap();
    let rel = (got - want).abs() / want;
    assert!(rel <= 1e-6, "GPU {got}, f64 {want}: {rel:e} relative");
}

/// `Inst::Fallback` on the GPU: the call's result (its polyfill, within its bound) where the
/// condition holds, the value (exactly) elsewhere; the same for a binary call.
#[test]
fn fallback_instruction_computes_the_call_where_the_condition_holds() {
    use fusebox::unstable::kir::Call;
    let Some(g) = backend() else { return };
    for t in [DType::F32, DType::F64]
        .into_iter()
        .filter(|t| supported(g, *t))
    {
        for (call_name, binary) in [("sin", false), ("hypot", true)] {
            let mut b = KernelBuilder::new();
            let x = load(&mut b, t);
            let y = load(&mut b, t);
            let c = b.push(Inst::Const(sem::cast(Const::F64(100.0), t)), t);
            let cond = b.push(
                Inst::Binary {
                    op: BinaryOp::Gt,
                    lhs: x,
                    rhs: c,
                },
                DType::Bool,
            );
            let value = b.push(
                Inst::Binary {
                    op: BinaryOp::Mul,
                    lhs: x,
                    rhs: y,
                },
                t,
            );
            let call = if binary {
                Call::Binary(BinaryOp::Hypot, x, y)
            } else {
                Call::Unary(UnaryOp::Sin, x)
            };
            let f = b.push(Inst::Fallback { cond, value, call }, t);
            let k = b.finish(Output::Store { value: f });
            let xs: Vec<f64> = (0..300)
                .map(|n| (n % 7) as f64 * 40.0 + n as f64 * 0.1)
                .collect();
            let ys: Vec<f64> = (0..300).map(|n| n as f64 * 0.25 - 30.0).collect();
            let out = values(&run(
                g,
                &k,
                &[float_vals(t, &xs), float_vals(t, &ys)],
                &[xs.len()],
            ));
            for i in 0..xs.len() {
                let (xv, yv) = (round_to(t, xs[i]), round_to(t, ys[i]));
                let V::F(got) = out[i] else {
                    panic!("not a float")
                };
                if xv > 100.0 {
                    let want = match call {
                        Call::Unary(op, _) => oracle_unary(op, t, V::F(xv)),
                        Call::Binary(op, _, _) => oracle_binary(op, t, V::F(xv), V::F(yv)),
                    };
                    let V::F(want) = want else { panic!() };
                    let u = ulps(t, got, want);
                    assert!(
                        u <= bound(call_name, t),
                        "{call}: {got} vs {want} ({u} ULP)"
                    );
                } else {
                    let want = round_to(t, xv * yv);
                    assert!(same(V::F(got), V::F(want)), "value lane: {got} vs {want}");
                }
            }
        }
    }
}

/// `f(x < x) * x` is `0 * x`: NaN for an infinite or NaN `x`, -0.0 for -0.0 (found by the
/// random differential suite as `astype((x0 < x0) * x0, bool)` with `x0 = inf`). Two bugs:
/// Mesa rewrites a product with a bool-to-float cast into a select (`b2f(c) * x -> c ? x :
/// 0`), so the cast's result goes through the opaque identity; and that identity was an xor,
/// so the product's own barrier on its right operand cancelled it (`x * 0.0` was folded).
#[test]
fn bool_cast_times_inf_or_nan_is_nan() {
    let Some(g) = backend() else { return };
    let xs = [f64::INFINITY, f64::NEG_INFINITY, f64::NAN, 2.5, -0.0];
    for t in [DType::F32, DType::F64] {
        if !supported(g, t) {
            continue;
        }
        for cmp in [BinaryOp::Lt, BinaryOp::Ne] {
            for cast_left in [true, false] {
                let mut b = KernelBuilder::new();
                let x = load(&mut b, t);
                let c = b.push(
                    Inst::Binary {
                        op: cmp,
                        lhs: x,
                        rhs: x,
                    },
                    DType::Bool,
                );
                let f = b.push(Inst::Cast { arg: c }, t);
                let (lhs, rhs) = if cast_left { (f, x) } else { (x, f) };
                let v = b.push(
                    Inst::Binary {
                        op: BinaryOp::Mul,
                        lhs,
                        rhs,
                    },
                    t,
                );
                let k = b.finish(Output::Store { value: v });

                let out = values(&run(g, &k, &[float_vals(t, &xs)], &[xs.len()]));
                for (i, &x) in xs.iter().enumerate() {
                    let x = round_to(t, x);
                    let c = match cmp {
                        BinaryOp::Lt => x < x,
                        _ => x != x,
                    };
                    let want = V::F(round_to(t, if c { 1.0 } else { 0.0 } * x));
                    assert!(
                        same(out[i], want),
                        "{t} f({x:?} {cmp} {x:?}) * {x:?}: got {:?}, want {want:?}",
                        out[i]
                    );
                }
            }
        }
    }
}

// ---- subgroup operations in the reduction tree ---------------------------------------------

/// A second backend on adapter 0 with subgroup operations off, to compare both tree paths on
/// one adapter (`backend()` uses them where the adapter has `SUBGROUP`).
fn backend_without_subgroups() -> Option<&'static GpuBackend> {
    static B: OnceLock<Option<GpuBackend>> = OnceLock::new();
    backend()?;
    B.get_or_init(|| {
        let b = GpuBackend::new(0).expect("adapter 0 opened once already");
        b.set_subgroups(false);
        Some(b)
    })
    .as_ref()
}

/// Both paths: (backend, name). Only the shared-memory one where the adapter lacks subgroups.
fn tree_paths() -> Vec<(&'static GpuBackend, &'static str)> {
    let mut v = Vec::new();
    if let Some(b) = backend() {
        v.push((
            b,
            if b.subgroups() {
                "subgroups"
            } else {
                "shared memory"
            },
        ));
    }
    if let Some(b) = backend_without_subgroups() {
        if v.first().is_some_and(|(a, _)| a.subgroups()) {
            v.push((b, "shared memory"));
        }
    }
    v
}

#[test]
fn subgroup_path_is_taken_where_the_adapter_has_it() {
    let Some(b) = backend() else { return };
    let required = std::env::var("FUSEBOX_REQUIRE_GPU").is_ok_and(|v| v == "1");
    let env_off = std::env::var("FUSEBOX_GPU_SUBGROUPS").is_ok_and(|v| v.trim() == "0");
    let info = b.info();
    // lavapipe (the CI adapter) has them: a lost feature request would silently fall back.
    if required && info.backend == "Vulkan" && info.name.contains("llvmpipe") {
        assert!(info.subgroups, "lavapipe offers SUBGROUP: {info:?}");
    }
    assert_eq!(b.subgroups(), info.subgroups && !env_off, "{info:?}");
    let off = backend_without_subgroups().unwrap();
    assert!(!off.subgroups());
    for t in DType::ALL.into_iter().filter(|t| supported(b, *t)) {
        for k in [sum_kernel(t), reduce_kernel(t, &ReduceOp::ALL)] {
            let src = b.compile(&k).unwrap().source().to_string();
            assert_eq!(
                src.contains("subgroupShuffleXor"),
                b.subgroups(),
                "{t}: subgroups {} but the shader says otherwise:\n{src}",
                b.subgroups()
            );
            let src = off.compile(&k).unwrap().source().to_string();
            assert!(!src.contains("subgroup"), "{t}: subgroups off:\n{src}");
        }
    }
    // Element-wise kernels never use them.
    let src = b
        .compile(&unary_kernel(UnaryOp::Exp, DType::F32))
        .unwrap()
        .source()
        .to_string();
    assert!(!src.contains("subgroup"));
    // The shaders fall back to the shared-memory tree, per workgroup, where subgroups are not
    // laid out as consecutive full blocks of `local_invocation_index`: check that on this
    // adapter they are, so that the subgroup levels really run.
    if let Some(sizes) = b.probe_subgroup_layout(64).unwrap() {
        let sz = sizes[0];
        assert!(
            sz.is_power_of_two() && (4..=128).contains(&sz),
            "subgroup size {sz}"
        );
        assert!(
            sizes.iter().all(|&s| s == sz),
            "subgroup layout not canonical everywhere: {:?}",
            &sizes[..sizes.len().min(64)]
        );
        println!("subgroup size {sz}, canonical layout in every workgroup");
    } else {
        assert!(!info.subgroups);
    }
}

/// `tie_values` with NaNs of both signs at the first, middle and last thirds (where the size
/// allows) and both zeros around them.
fn nan_values(t: DType, n: usize, seed: u64) -> Vec<V> {
    let mut v = tie_values(t, n, seed);
    if t.is_float() && n > 2 {
        v[n / 2] = V::F(-f64::NAN);
        v[n - 1] = V::F(f64::NAN);
        v[n / 3] = V::F(-0.0);
        v[(n / 3 + 1).min(n - 1)] = V::F(0.0);
        if seed.is_multiple_of(2) {
            v[1] = V::F(f64::NAN);
        }
    }
    v
}

/// Float min/max: bit for bit, NaN included (the first NaN wins, sign and all).
fn check_nan_bits(got: &DynArray, want: &DynArray, what: &str) {
    for (i, (g, w)) in values(got).into_iter().zip(values(want)).enumerate() {
        if let (V::F(g), V::F(w)) = (g, w) {
            assert_eq!(
                g.to_bits(),
                w.to_bits(),
                "{what}: element {i}: GPU {g:?}, interpreter {w:?} (bits)"
            );
        }
    }
}

#[test]
fn reductions_with_and_without_subgroups_match_the_interpreter() {
    let paths = tree_paths();
    if paths.is_empty() {
        return;
    }
    let sizes = [1usize, 7, 8, 9, 255, 256, 257, 100_003];
    for (b, path) in paths {
        for t in DType::ALL.into_iter().filter(|t| supported(b, *t)) {
            let k = reduce_kernel(t, &ReduceOp::ALL);
            let gk = b.compile(&k).unwrap();
            assert_eq!(gk.source().contains("subgroup"), b.subgroups());
            for &n in &sizes {
                // Whole array; rows (reduced axis inner: adjacent lanes share an output);
                // columns (kept axis inner: lanes of a subgroup hold several outputs); both.
                let mut cases: Vec<(Vec<usize>, Vec<usize>)> = vec![
                    (vec![n], vec![0]),
                    (vec![3, n], vec![1]),
                    (vec![n, 3], vec![0]),
                    (vec![n, 3], vec![0, 1]),
                ];
                if n < 1000 {
                    cases.push((vec![n, 3], vec![1]));
                    cases.push((vec![2, n, 5], vec![1]));
                    cases.push((vec![n, 40], vec![0]));
                    cases.push((vec![40, n], vec![1]));
                }
                for (c, (shape, axes)) in cases.iter().enumerate() {
                    let len: usize = shape.iter().product();
                    let seed = (n * 31 + c) as u64;
                    let x = array(t, &nan_values(t, len, seed), shape);
                    let what = format!("{path}: {t} {shape:?} axes {axes:?}");
                    check_against_interp(
                        b,
                        &gk,
                        std::slice::from_ref(&x),
                        shape,
                        axes,
                        false,
                        &what,
                    );
                    if t.is_float() {
                        let views = [x.view()];
                        let want =
                            fusebox::unstable::interp::run_many(&k, &views, shape, axes).unwrap();
                        let got = b.run_many(&gk, &views, shape, axes).unwrap();
                        for (o, out) in k.outputs.iter().enumerate() {
                            if let Output::Reduce {
                                op: ReduceOp::Min | ReduceOp::Max,
                                ..
                            } = out
                            {
                                check_nan_bits(&got[o], &want[o], &format!("{what}, output {o}"));
                            }
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn session_reductions_mean_var_std_keepdims_with_and_without_subgroups() {
    use fusebox::Reduction;
    use fusebox::{Device, Expr, Options, Session};
    if backend().is_none() {
        return;
    }
    let reference = Session::with_options(Options::default().with_device(Device::Reference));
    let mut reductions: Vec<Reduction> = ReduceOp::ALL.into_iter().map(Reduction::Op).collect();
    reductions.extend([
        Reduction::Mean,
        Reduction::Var { ddof: 0 },
        Reduction::Var { ddof: 1 },
        Reduction::Std { ddof: 0 },
        Reduction::Std { ddof: 1 },
    ]);
    for on in [true, false] {
        let gpu = Session::with_options(Options::default().with_device(Device::Gpu(0)));
        gpu.set_gpu_subgroups(0, on).unwrap();
        for t in DType::ALL
            .into_iter()
            .filter(|t| supported(backend().unwrap(), *t))
        {
            for (s, shape) in [vec![257usize], vec![9, 255], vec![100_003, 2]]
                .into_iter()
                .enumerate()
            {
                let len: usize = shape.iter().product();
                let x = Expr::data(
                    array(t, &nan_values(t, len, 7 + s as u64), &shape),
                    Some("x"),
                );
                let axes: [Option<&[isize]>; 4] = [None, Some(&[0]), Some(&[-1]), Some(&[0, 1])];
                for ax in axes {
                    if ax.is_some_and(|a| a.len() > shape.len()) {
                        continue;
                    }
                    for keepdims in [false, true] {
                        for &r in &reductions {
                            let e = x.reduce(r, ax, keepdims);
                            let what = format!("subgroups {on}: {t} {shape:?} {e}");
                            let (w, g) = (reference.compute(&e), gpu.compute(&e));
                            let (w, g) = match (w, g) {
                                (Ok(w), Ok(g)) => (w, g),
                                (Err(_), Err(_)) => continue,
                                (w, g) => panic!("{what}: reference {w:?}, GPU {g:?}"),
                            };
                            let op = match r {
                                Reduction::Op(op) => op,
                                // Built from sums: the sums' tolerance.
                                _ => ReduceOp::Sum,
                            };
                            check_reduced(&g, &w, op, &what);
                        }
                    }
                }
            }
        }
        // They ran on the GPU (a pinned device does not fall back).
        assert!(gpu.stats().gpu_time > std::time::Duration::ZERO);
    }
}

/// The seed's Gaussian, `exp(-(x - mu)^2 / (2 sigma^2)) / (sigma sqrt(2 pi))`, as one kernel.
fn gauss_kernel(t: DType) -> Kernel {
    let mut b = KernelBuilder::new();
    let x = load(&mut b, t);
    let c = |b: &mut KernelBuilder, v: f64| {
        let k = if t == DType::F32 {
            Const::F32(v as f32)
        } else {
            Const::F64(v)
        };
        b.push(Inst::Const(k), t)
    };
    let bin = |b: &mut KernelBuilder, op, lhs, rhs| b.push(Inst::Binary { op, lhs, rhs }, t);
    let mu = c(&mut b, 0.5);
    let d = bin(&mut b, BinaryOp::Sub, x, mu);
    let d2 = bin(&mut b, BinaryOp::Mul, d, d);
    let n = b.push(
        Inst::Unary {
            op: UnaryOp::Neg,
            arg: d2,
        },
        t,
    );
    let s2 = c(&mut b, 2.0 * 1.5 * 1.5);
    let q = bin(&mut b, BinaryOp::Div, n, s2);
    let e = b.push(
        Inst::Unary {
            op: UnaryOp::Exp,
            arg: q,
        },
        t,
    );
    let a = c(&mut b, 1.0 / (1.5 * (2.0 * std::f64::consts::PI).sqrt()));
    let r = bin(&mut b, BinaryOp::Mul, a, e);
    b.finish(Output::Store { value: r })
}

/// Pipeline build time (WGSL generation, naga, the driver's compilation) of a few kernels on a
/// fresh device, and the size of their shaders: `cargo test --test gpu pipeline_compile_times
/// -- --ignored --nocapture`.
#[test]
#[ignore = "timing; prints the figures of the report"]
fn pipeline_compile_times() {
    let Some(b0) = backend() else { return };
    let mut cases: Vec<(String, Kernel)> = vec![];
    for t in [DType::F64, DType::F32] {
        cases.push((format!("gauss {t}"), gauss_kernel(t)));
        for op in [UnaryOp::Exp, UnaryOp::Sin, UnaryOp::Tanh, UnaryOp::Arcsinh] {
            cases.push((format!("{op} {t}"), unary_kernel(op, t)));
        }
        cases.push((format!("pow {t}"), binary_kernel(BinaryOp::Pow, t)));
    }
    for (name, k) in cases {
        // A fresh device each time: nothing cached by the driver either.
        let b = GpuBackend::new(b0.info().index).unwrap();
        let start = std::time::Instant::now();
        let gk = b.compile(&k).unwrap();
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{name:>12}: {:7.1} ms, {:6} bytes of WGSL, {} lines",
            secs * 1e3,
            gk.source().len(),
            gk.source().lines().count()
        );
    }
}
