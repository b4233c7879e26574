//! float16 poly `(5x + 4)x + 1` written into a caller's float16 array (`call_into`), against
//! copying the same bytes (n float16 read, n written) in the same process, and the float32
//! poly against its own copy, at the length given (default 1e7):
//!
//!     cargo run --example f16_poly -- 100000000
//!
//! Prints the median of 7 runs of each, and the ratios to the copies. The JIT's float16 kernel
//! is Cranelift code whatever the Rust profile; the copy is ndarray's `assign` (a memcpy).
use fusebox::{f16, DType, Device, Expr, Options, Session};
use ndarray::Array1;
use std::time::Instant;

fn median(mut f: impl FnMut()) -> f64 {
    let mut t: Vec<f64> = (0..7)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64()
        })
        .collect();
    t.sort_by(|a, b| a.partial_cmp(b).unwrap());
    t[3]
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse::<f64>().ok())
        .map_or(10_000_000, |v| v as usize);
    let s = Session::with_options(Options::default().with_device(Device::Cpu));
    for dt in [DType::F16, DType::F32] {
        let x = Expr::symbol("x", dt, &[n]);
        let poly = (5.0 * &x + 4.0) * &x + 1.0;
        let c = s.compile(&poly).unwrap();
        let (t_poly, t_copy) = if dt == DType::F16 {
            let a: Array1<f16> =
                Array1::from_shape_fn(n, |i| f16::from_f32((i % 1000) as f32 * 1e-3));
            let mut out = Array1::from_elem(n, f16::ZERO);
            let mut dst = Array1::from_elem(n, f16::ZERO);
            c.call_into(&[a.view().into_dyn().into()], out.view_mut().into_dyn())
                .unwrap();
            (
                median(|| {
                    c.call_into(&[a.view().into_dyn().into()], out.view_mut().into_dyn())
                        .unwrap()
                }),
                median(|| dst.assign(&a)),
            )
        } else {
            let a: Array1<f32> = Array1::from_shape_fn(n, |i| (i % 1000) as f32 * 1e-3);
            let mut out = Array1::from_elem(n, 0f32);
            let mut dst = Array1::from_elem(n, 0f32);
            c.call_into(&[a.view().into_dyn().into()], out.view_mut().into_dyn())
                .unwrap();
            (
                median(|| {
                    c.call_into(&[a.view().into_dyn().into()], out.view_mut().into_dyn())
                        .unwrap()
                }),
                median(|| dst.assign(&a)),
            )
        };
        println!(
            "{dt} n={n}: poly into {:.2} ms, copy {:.2} ms, ratio {:.2}",
            t_poly * 1e3,
            t_copy * 1e3,
            t_poly / t_copy
        );
    }
}
