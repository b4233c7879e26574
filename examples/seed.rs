//! The seed's examples (the "Blaze + Numba" post), each one or two plain lines: the polynomial,
//! the Gaussian, a sum, an unfused evaluation, and a compiled function.
//!
//! `cargo run --example seed` (tests/examples.rs runs it, with the numbers checked).
use fusebox::{DType, Options, Session};
use ndarray::{arr1, Array1};

pub fn main() -> fusebox::Result<()> {
    let s = Session::new();
    let n = 1_000_000;

    // poly: one kernel that reads x once and writes the result once; the result is a typed
    // Array1<f64> that owns the kernel's output buffer (nothing is copied).
    let xs = Array1::linspace(0.0, 1.0, n);
    let last = xs[n - 1];
    let x = s.named_data("x", xs);
    let poly: Array1<f64> = s.compute_as(&((5.0 * &x + 4.0) * &x + 1.0))?;
    assert_eq!(poly[n - 1], (5.0 * last + 4.0) * last + 1.0);

    // The Gaussian: constants fold at plan time, `(x - mu)**2` becomes a product.
    let (mu, sigma) = (-1.33, 1.25);
    let g = s.named_data("g", Array1::linspace(-5.0, 5.0, n));
    let gauss = 1.0 / (sigma * (2.0 * std::f64::consts::PI).sqrt())
        * (-(&g - mu).pow(2) / (2.0 * sigma * sigma)).exp();
    let z: Array1<f64> = s.compute_as(&gauss)?;

    // data.a.sum(): a scalar as a Result, usable with `?`.
    let a = s.named_data("a", arr1(&[1i64, 2, 3]));
    let total = s.compute(&a.sum())?.scalar::<i64>()?;
    assert_eq!(total, 6);

    // Blaze's compute(expr, optimize=False): one kernel per operator, same values.
    let unfused = Session::with_options(Options::default().with_optimize(false));
    let z2: Array1<f64> = unfused.compute_as(&gauss)?;
    let worst = z
        .iter()
        .zip(&z2)
        .map(|(p, q)| (p - q).abs() / q.abs().max(f64::MIN_POSITIVE))
        .fold(0.0, f64::max);
    assert!(worst < 1e-12, "fused and unfused differ by {worst}");

    // numba.vectorize: compile once, call on arrays of any length.
    let t = s.symbol("t", DType::F64, &[n]);
    let f = s.compile(&((5.0 * &t + 4.0) * &t + 1.0))?;
    let small: Array1<f64> = f.call_as(&[(&arr1(&[0.0, 1.0, 2.0])).into()])?;
    assert_eq!(small, arr1(&[1.0, 10.0, 29.0]));

    println!(
        "poly[-1] = {}, peak of the Gaussian = {:.6}",
        poly[n - 1],
        z.fold(0.0, |m: f64, v| m.max(*v))
    );
    println!("sum(a) = {total}; compiled poly on [0, 1, 2] = {small}");
    Ok(())
}
