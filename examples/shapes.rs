//! Shape operations the way NumPy users write them (`x.T`, `x[::2]`, `x[:, None]`,
//! `x.reshape(...)`), fused into the kernels that use them: a transposed or sliced operand is
//! read through other strides, never copied. Rust numbers of any type work on either side of an
//! operator.
//!
//! `cargo run --example shapes` (tests/examples.rs runs it).
use fusebox::{Session, SliceSpec};
use ndarray::{s, Array1, Array2, Axis};

pub fn main() -> fusebox::Result<()> {
    let s = Session::new();
    let data = Array2::from_shape_fn((3, 4), |(i, j)| (i * 4 + j) as f64);
    let u_data = Array1::from(vec![1.0, 2.0, 4.0]);
    let x = s.named_data("x", data.clone());
    let u = s.named_data("u", u_data.clone());

    // x.T * 2 + 1: one kernel over x's transposed strides.
    let xt: Array2<f64> = s.compute_as(&(x.t() * 2.0 + 1.0))?;
    // x[::2, ::-1]: every other row, columns backwards (Python's slicing rules).
    let rows2_back = [SliceSpec::step(2), SliceSpec::step(-1)];
    let flipped: Array2<f64> = s.compute_as(&x.slice(&rows2_back))?;
    // u[:, None] * x: a new axis broadcasts u along the rows.
    let scaled: Array2<f64> = s.compute_as(&(u.expand_dims(1) * &x))?;
    // x.reshape(2, -1).sum(axis=1): a view of x's C-ordered elements.
    let halves: Array1<f64> = s.compute_as(&x.reshape(&[2, -1]).sum_axis(1))?;
    // Any Rust number, on either side, is a weak scalar (NEP 50).
    let n: usize = 4;
    let mean_rows: Array1<f64> = s.compute_as(&(x.sum_axis(1) / n))?;
    let twice: Array2<f64> = s.compute_as(&(2.0f32 * &x - 3i32))?;

    // Check against ndarray's own operations.
    assert_eq!(xt, data.t().mapv(|v| v * 2.0 + 1.0));
    assert_eq!(flipped, data.slice(s![..;2, ..;-1]));
    assert_eq!(
        scaled,
        Array2::from_shape_fn((3, 4), |(i, j)| u_data[i] * data[[i, j]])
    );
    let flat = data
        .clone()
        .into_shape_with_order((2, 6))
        .expect("contiguous");
    assert_eq!(halves, flat.sum_axis(Axis(1)));
    assert_eq!(mean_rows, data.sum_axis(Axis(1)) / 4.0);
    assert_eq!(twice, data.mapv(|v| 2.0 * v - 3.0));
    println!("x.T * 2 + 1 =\n{xt}\nx[::2, ::-1] =\n{flipped}\nhalves = {halves}");
    Ok(())
}
