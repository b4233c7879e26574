//! Data kept on a GPU between expressions: uploaded once, computed on twice, downloaded once;
//! the session's counters show every byte that moved. Without a GPU adapter it says so and
//! exits successfully.
//!
//! `cargo run --example gpu_residency` (tests/examples.rs runs it).
use fusebox::{DType, Device, Options, Session};
use ndarray::Array1;

pub fn main() -> fusebox::Result<()> {
    let s = Session::with_options(Options::default().with_device(Device::Gpu(0)));
    let n = 4096;
    let x = Array1::linspace(-1.0f32, 1.0, n);
    let xd = match s.to_device(&(&x).into()) {
        Ok(d) => d, // uploaded once
        Err(e) => {
            println!("no GPU to keep data on ({e}); nothing to show");
            return Ok(());
        }
    };
    let t = s.symbol("x", DType::F32, &[n]);
    let yd = s.compute_on_device(&((5.0 * &t + 4.0) * &t + 1.0), &[("x", &xd)])?; // stays there
    let u = s.symbol("y", DType::F32, &[n]);
    let zd = s.compute_on_device(&(&u - u.sum() / n), &[("y", &yd)])?; // on the GPU too
    let z: Array1<f32> = s.to_host(&zd)?.into_array()?; // one download
    let st = s.stats();
    assert_eq!(st.bytes_uploaded, 4 * n as u64, "x went up once");
    assert!(st.bytes_downloaded >= 4 * n as u64, "z came down");
    let mean = z.sum() / n as f32;
    assert!(mean.abs() < 1e-3, "centered: mean {mean}");
    println!(
        "uploaded {} B, downloaded {} B, mean after centering {mean:e}",
        st.bytes_uploaded, st.bytes_downloaded
    );
    Ok(())
}
