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

mod elementwise;
mod paths;
mod reductions;
mod regressions;
mod subgroups;

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
        DType::Bool | DType::I32 | DType::F32 => true,
        // Not in the WGSL backend yet: refused with a typed error (tests/gpu/regressions.rs).
        _ => false,
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
        _ => unreachable!(
            "the GPU backend runs bool, int32, int64, float32, float64 only (`supported`)"
        ),
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
        _ => unreachable!(
            "the GPU backend runs bool, int32, int64, float32, float64 only (`supported`)"
        ),
    }
}

fn values(a: &DynArray) -> Vec<V> {
    match a {
        DynArray::Bool(a) => a.iter().map(|&x| V::B(x)).collect(),
        DynArray::I32(a) => a.iter().map(|&x| V::I(x as i64)).collect(),
        DynArray::I64(a) => a.iter().map(|&x| V::I(x)).collect(),
        DynArray::F32(a) => a.iter().map(|&x| V::F(x as f64)).collect(),
        DynArray::F64(a) => a.iter().map(|&x| V::F(x)).collect(),
        _ => unreachable!(
            "the GPU backend runs bool, int32, int64, float32, float64 only (`supported`)"
        ),
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
        _ => unreachable!(
            "the GPU backend runs bool, int32, int64, float32, float64 only (`supported`)"
        ),
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
