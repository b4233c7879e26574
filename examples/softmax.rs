//! Softmax and standardization of 2-D data, the way NumPy users write them
//! (`z - z.max(axis=1, keepdims=True)`), each fused into as few passes as the reductions need.
//!
//! `cargo run --example softmax` (tests/examples.rs runs it).
use fusebox::{functions::exp, Session};
use ndarray::{Array2, Axis};

pub fn main() -> fusebox::Result<()> {
    let s = Session::new();
    let data = Array2::from_shape_fn((4, 5), |(i, j)| (i as f64 - 1.5) * 0.8 + j as f64 * 0.25);
    let z = s.named_data("z", data.clone());

    // softmax(z, axis=1): subtract each row's max (for range), exponentiate, normalize.
    let e = exp(&z - z.max_axis(1).keepdims());
    let softmax: Array2<f64> = s.compute_as(&(&e / e.sum_axis(1).keepdims()))?;

    // Standardize each column: zero mean, unit standard deviation.
    let standard: Array2<f64> =
        s.compute_as(&((&z - z.mean_axis(0).keepdims()) / z.std_axis(0).keepdims()))?;

    // Check against ndarray's own arithmetic.
    for (row, probs) in data.rows().into_iter().zip(softmax.rows()) {
        let m = row.fold(f64::NEG_INFINITY, |a, &b| a.max(b));
        let sum: f64 = row.iter().map(|v| (v - m).exp()).sum();
        for (v, p) in row.iter().zip(probs) {
            assert!(((v - m).exp() / sum - p).abs() < 1e-14);
        }
    }
    let means = standard.mean_axis(Axis(0)).expect("rows");
    assert!(means.iter().all(|m| m.abs() < 1e-12));

    println!("softmax rows:\n{softmax:.4}");
    println!("standardized columns:\n{standard:.4}");
    Ok(())
}
