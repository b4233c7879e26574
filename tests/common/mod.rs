//! Shared test helpers: edge-value inputs for every dtype, layouts (contiguous, strided,
//! reversed, transposed, broadcast, 0-d, empty), and agreement checks with ULP tolerances.
#![allow(dead_code)]
use fusebox::{DType, DynArray};
use ndarray::{ArcArray, ArrayD, Axis, IxDyn, ShapeBuilder, Slice};

/// Deterministic pseudo-random numbers (SplitMix64), so failures reproduce.
pub struct Rng(u64);
impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E3779B97F4A7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D049BB133111EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

const F64_EDGES: [f64; 14] = [
    0.0,
    -0.0,
    1.0,
    -1.0,
    0.5,
    f64::NAN,
    f64::INFINITY,
    f64::NEG_INFINITY,
    f64::MIN_POSITIVE,
    5e-324,
    1e300,
    -1e300,
    2.5,
    -3.5,
];

/// `n` values of `dtype`: the edge values first, then random values of mixed magnitude.
pub fn values(dtype: DType, n: usize, seed: u64) -> ArrayD<f64> {
    let mut r = Rng::new(seed);
    let v: Vec<f64> = (0..n)
        .map(|i| match dtype {
            DType::F16 | DType::F32 | DType::F64 => {
                if i < F64_EDGES.len() && seed.is_multiple_of(2) {
                    F64_EDGES[i]
                } else {
                    let m = r.unit() * 2.0 - 1.0;
                    let e = [1.0, 10.0, 0.01, 1000.0][i % 4];
                    m * e
                }
            }
            d if d.is_int() => {
                let edges = [0.0, 1.0, -1.0, 2.0, -7.0, 31.0, 64.0];
                if i < edges.len() {
                    edges[i]
                } else {
                    ((r.unit() * 200.0) - 100.0).round()
                }
            }
            _ => (r.next_u64() % 2) as f64,
        })
        .collect();
    ArrayD::from_shape_vec(IxDyn(&[n]), v).unwrap()
}

/// Convert f64 values to a DynArray of `dtype` (integer extremes added for int dtypes).
pub fn typed(dtype: DType, v: &ArrayD<f64>) -> DynArray {
    match dtype {
        DType::Bool => v.mapv(|x| x != 0.0).into(),
        DType::I32 => {
            let mut a = v.mapv(|x| x as i32);
            if let Some(x) = a.iter_mut().nth(7) {
                *x = i32::MIN;
            }
            if let Some(x) = a.iter_mut().nth(8) {
                *x = i32::MAX;
            }
            a.into()
        }
        DType::I64 => {
            let mut a = v.mapv(|x| x as i64);
            if let Some(x) = a.iter_mut().nth(7) {
                *x = i64::MIN;
            }
            if let Some(x) = a.iter_mut().nth(8) {
                *x = i64::MAX;
            }
            a.into()
        }
        DType::F16 => v.mapv(fusebox::unstable::dtype::f16_from_f64).into(),
        DType::F32 => v.mapv(|x| x as f32).into(),
        DType::F64 => v.clone().into(),
        // The other integer types: values wrapped to the type (-1 is the unsigned maximum),
        // then the type's minimum and maximum at positions 7 and 8.
        d => {
            let i64s = typed(DType::I64, &v.mapv(|x| x.clamp(-1e18, 1e18)));
            let (lo, hi) = d.int_range().expect("an integer dtype");
            let c = fusebox::unstable::dtype::Const::wrap_int;
            let mut vals: Vec<i128> = i64s
                .into_i64()
                .unwrap()
                .iter()
                .map(|&x| x as i128)
                .collect();
            if let Some(x) = vals.get_mut(7) {
                *x = lo;
            }
            if let Some(x) = vals.get_mut(8) {
                *x = hi;
            }
            fusebox::with_dtype!(d, T => {
                let t: Vec<T> = vals
                    .iter()
                    .map(|&x| <T as fusebox::Element>::from_const(c(x, d)))
                    .collect();
                ArrayD::from_shape_vec(v.raw_dim(), t).unwrap().into()
            })
        }
    }
}

/// An array of `dtype` and `shape` laid out as `layout` says, with the same logical values
/// whatever the layout.
pub fn array(dtype: DType, shape: &[usize], layout: Layout, seed: u64) -> DynArray {
    let n: usize = shape.iter().product();
    let flat = typed(dtype, &values(dtype, n, seed));
    fusebox::dispatch!(&flat, a => {
        let vals: Vec<_> = a.iter().copied().collect();
        fusebox::Element::wrap(relayout(vals, shape, layout))
    })
}

/// Memory layouts the suite covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    Contiguous,
    /// Every second element of a larger buffer along the last axis.
    Strided,
    /// Negative stride along the last axis.
    Reversed,
    /// Fortran order (transposed strides).
    Fortran,
}

pub const LAYOUTS: [Layout; 4] = [
    Layout::Contiguous,
    Layout::Strided,
    Layout::Reversed,
    Layout::Fortran,
];

/// `vals` (C order) as an array of `shape` stored in `layout`; the logical values are `vals`.
fn relayout<T: fusebox::Element>(
    vals: Vec<T>,
    shape: &[usize],
    layout: Layout,
) -> ArcArray<T, IxDyn> {
    let c = ArrayD::from_shape_vec(IxDyn(shape), vals).unwrap();
    if shape.is_empty() {
        return c.into_shared();
    }
    let k = Axis(shape.len() - 1);
    match layout {
        Layout::Contiguous => c.into_shared(),
        Layout::Fortran => {
            let mut f = ArrayD::from_elem(IxDyn(shape).f(), T::default());
            f.assign(&c);
            f.into_shared()
        }
        Layout::Strided => {
            let mut big_shape = shape.to_vec();
            big_shape[k.0] *= 2;
            let mut big = ArrayD::from_elem(IxDyn(&big_shape), T::default());
            big.slice_axis_mut(k, Slice::new(0, None, 2)).assign(&c);
            let mut s = big.into_shared();
            s.slice_axis_inplace(k, Slice::new(0, None, 2));
            s
        }
        Layout::Reversed => {
            let mut v = c.view();
            v.invert_axis(k);
            let mut r = v.to_owned().into_shared();
            r.invert_axis(k);
            r
        }
    }
}

/// Distance in units in the last place between two floats of the same type (0 when both are
/// NaN or bitwise equal; infinity-aware).
pub fn ulp_f64(a: f64, b: f64) -> u64 {
    if a.is_nan() && b.is_nan() {
        return 0;
    }
    if a.is_nan() || b.is_nan() {
        return u64::MAX;
    }
    if a == b {
        return 0;
    }
    fusebox::unstable::semantics::ulp_distance_f64(a, b)
}

pub fn ulp_f32(a: f32, b: f32) -> u64 {
    if a.is_nan() && b.is_nan() {
        return 0;
    }
    if a.is_nan() || b.is_nan() {
        return u64::MAX;
    }
    if a == b {
        return 0;
    }
    fusebox::unstable::semantics::ulp_distance_f32(a, b)
}

/// [`ulp_f32`] for float16 (in float16 units).
pub fn ulp_f16(a: fusebox::f16, b: fusebox::f16) -> u64 {
    if a.is_nan() && b.is_nan() {
        return 0;
    }
    if a.is_nan() || b.is_nan() {
        return u64::MAX;
    }
    if a == b {
        return 0;
    }
    let key = |x: fusebox::f16| -> i64 {
        let bits = x.to_bits() as i16;
        if bits < 0 {
            i16::MIN as i64 - bits as i64
        } else {
            bits as i64
        }
    };
    (key(a) - key(b)).unsigned_abs()
}

/// Assert that `ours` agrees with `oracle`: same dtype and shape; integers and bools equal;
/// floats within `max_ulp` (0 = bitwise, except that any NaN matches any NaN).
pub fn assert_agree(what: &str, ours: &DynArray, oracle: &DynArray, max_ulp: u64) {
    if let Err(e) = agree(ours, oracle, max_ulp) {
        panic!("{what}: {e}");
    }
}

/// The same dtype and shape, values unchecked.
pub fn agree_shape(ours: &DynArray, oracle: &DynArray) -> Result<(), String> {
    if ours.dtype() != oracle.dtype() {
        return Err(format!(
            "dtype: ours {} oracle {}",
            ours.dtype(),
            oracle.dtype()
        ));
    }
    if ours.shape() != oracle.shape() {
        return Err(format!(
            "shape: ours {:?} oracle {:?}",
            ours.shape(),
            oracle.shape()
        ));
    }
    Ok(())
}

/// [`assert_agree`] as a value: `Err` describes the first mismatches.
pub fn agree(ours: &DynArray, oracle: &DynArray, max_ulp: u64) -> Result<(), String> {
    agree_shape(ours, oracle)?;
    let mut bad = vec![];
    match (ours, oracle) {
        (DynArray::F64(a), DynArray::F64(b)) => {
            for (i, (x, y)) in a.iter().zip(b.iter()).enumerate() {
                if ulp_f64(*x, *y) > max_ulp {
                    bad.push(format!("[{i}] ours {x:e} oracle {y:e}"));
                }
            }
        }
        (DynArray::F32(a), DynArray::F32(b)) => {
            for (i, (x, y)) in a.iter().zip(b.iter()).enumerate() {
                if ulp_f32(*x, *y) > max_ulp {
                    bad.push(format!("[{i}] ours {x:e} oracle {y:e}"));
                }
            }
        }
        (DynArray::F16(a), DynArray::F16(b)) => {
            for (i, (x, y)) in a.iter().zip(b.iter()).enumerate() {
                if ulp_f16(*x, *y) > max_ulp {
                    bad.push(format!("[{i}] ours {x} oracle {y}"));
                }
            }
        }
        _ => {
            if ours != oracle {
                bad.push(format!("ours {ours:?}\noracle {oracle:?}"));
            }
        }
    }
    if bad.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} mismatches:\n{}",
            bad.len(),
            bad.iter().take(10).cloned().collect::<Vec<_>>().join("\n")
        ))
    }
}

/// Documented bound for transcendental functions (exp, log, sin, pow, arctan2, hypot) on the
/// CPU vs the oracle (the value `tests/differential.rs` asserts).
pub const TRANSCENDENTAL_ULP: u64 = 2;

/// Whether the operator's result is allowed [`TRANSCENDENTAL_ULP`] (sqrt is exact).
pub fn unary_is_approx(op: fusebox::UnaryOp) -> bool {
    op.is_transcendental() && op != fusebox::UnaryOp::Sqrt
}
pub fn binary_is_approx(op: fusebox::BinaryOp) -> bool {
    use fusebox::BinaryOp::*;
    matches!(op, Pow | Arctan2 | Hypot)
}

/// The GPU's documented bound (`gpu::wgsl::ULP_BOUNDS`) for the worst transcendental in `e`
/// (as in `tests/differential.rs`).
pub fn gpu_ulp(e: &fusebox::Expr) -> u64 {
    use fusebox::ExprKind;
    let bound = |name: &str, dt: DType| {
        fusebox::unstable::gpu::wgsl::ULP_BOUNDS
            .iter()
            .find(|b| b.0 == name)
            .map_or(0, |b| if dt == DType::F32 { b.2 } else { b.1 })
    };
    let dt = e.dtype().unwrap_or(DType::F64);
    match e.kind() {
        ExprKind::Unary(op, x) => bound(op.name(), dt).max(gpu_ulp(x)),
        ExprKind::Binary(op, a, b) => bound(op.name(), dt).max(gpu_ulp(a)).max(gpu_ulp(b)),
        ExprKind::Where(c, a, b) => gpu_ulp(c).max(gpu_ulp(a)).max(gpu_ulp(b)),
        ExprKind::Cast(_, x) | ExprKind::Reduce(_, x, _) => gpu_ulp(x),
        _ => 0,
    }
}

/// The documented sum-order tolerance (`tests/differential.rs`, `sum_every_dtype_and_layout`):
/// float sums may differ from NumPy's pairwise order by `1e-13 * sum(|v|)` (f64) or
/// `1e-5 * sum(|v|)` (f32), where `v` are the summed values; integer sums are exact
/// (wrap-around). When the sum of `|v|` over the finite values overflows, the result depends on
/// the order (it may be +-inf, NaN or a number: `MAX + MAX - inf` is NaN pairwise and -inf
/// left to right), so any result is accepted unless a NaN or both infinities are summed (NaN
/// in every order).
pub fn sum_agree(ours: &DynArray, oracle: &DynArray, summed: &DynArray) -> Result<(), String> {
    if ours.dtype() != oracle.dtype() || ours.shape() != oracle.shape() {
        return agree(ours, oracle, 0);
    }
    let (Some(x), Some(y)) = (ours.scalar_f64(), oracle.scalar_f64()) else {
        return agree(ours, oracle, 0);
    };
    let vals: Vec<f64> = match summed {
        DynArray::F64(a) => a.iter().copied().collect(),
        DynArray::F32(a) => a.iter().map(|&v| v as f64).collect(),
        DynArray::F16(a) => a.iter().map(|&v| v.to_f64()).collect(),
        _ => return agree(ours, oracle, 0),
    };
    // Sum of |v| over the finite values; NaN and infinities decide the result on their own
    // unless finite partial sums can overflow.
    let abs_sum: f64 = vals.iter().filter(|v| v.is_finite()).map(|v| v.abs()).sum();
    let nan_for_sure = vals.iter().any(|v| v.is_nan())
        || (vals.contains(&f64::INFINITY) && vals.contains(&f64::NEG_INFINITY));
    // float16: NumPy rounds to float16 after each inner run, the JIT once (a few float16
    // roundings, 2^-11 each, relative to the partial sums).
    let tol = match ours.dtype() {
        DType::F64 => 1e-13 * abs_sum,
        DType::F16 => 4e-3 * abs_sum,
        _ => 1e-5 * abs_sum,
    };
    // f32 (f16) sums overflow at f32::MAX (65504) although the f64 sum of |v| does not.
    let overflow = !abs_sum.is_finite()
        || (ours.dtype() == DType::F32 && abs_sum > f32::MAX as f64)
        || (ours.dtype() == DType::F16 && abs_sum > 65504.0);
    if (x.is_nan() && y.is_nan()) || x == y || (x - y).abs() <= tol || (overflow && !nan_for_sure) {
        Ok(())
    } else {
        Err(format!("sum: ours {x:e} oracle {y:e} (tolerance {tol:e})"))
    }
}

/// Whether GPU adapter 0 can be used. Without one the GPU engine is skipped with a printed
/// reason, unless `FUSEBOX_REQUIRE_GPU=1` (CI, on lavapipe), which turns that into a failure.
pub fn gpu_available() -> bool {
    static AVAILABLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        let required = std::env::var("FUSEBOX_REQUIRE_GPU").is_ok_and(|v| v == "1");
        match fusebox::unstable::gpu::GpuBackend::new(0) {
            Ok(_) => true,
            Err(e) if required => panic!("FUSEBOX_REQUIRE_GPU=1 but no usable GPU adapter: {e}"),
            Err(e) => {
                println!("skipping the GPU engine: {e}");
                false
            }
        }
    })
}

/// A session pinned to GPU adapter 0, or `None` (with the reason printed) where
/// [`gpu_available`] says there is none.
pub fn gpu_session() -> Option<fusebox::Session> {
    gpu_available().then(|| {
        fusebox::Session::with_options(
            fusebox::Options::default().with_device(fusebox::Device::Gpu(0)),
        )
    })
}

/// Whether adapter 0 runs float64 and int64 (not on GL, Metal, most mobile GPUs).
pub fn gpu_has_f64() -> bool {
    fusebox::unstable::gpu::adapters()
        .first()
        .is_some_and(|a| a.f64 && a.i64)
}
