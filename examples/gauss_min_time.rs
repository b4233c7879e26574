//! The minimum time per element of the bench's `copy` and `gauss` cases through compiled
//! functions on one thread, interleaved: on a loaded machine the minimum of many calls is a
//! steadier compute measure than `fusebox bench`'s medians.
//! `cargo run --release --example gauss_min_time -- [n=1e6] [calls=200]`
use fusebox::unstable::bench;
use fusebox::{Device, Options, Session};
use std::time::Instant;
fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse::<f64>().unwrap() as usize)
        .unwrap_or(1_000_000);
    let reps: usize = std::env::args()
        .nth(2)
        .map(|s| s.parse().unwrap())
        .unwrap_or(200);
    let s = Session::with_options(Options::default().with_device(Device::Cpu).with_threads(1));
    let x = ndarray::Array1::linspace(-5.0, 5.0, n);
    let mut fs = vec![];
    for c in ["copy", "gauss"] {
        fs.push((c, s.compile(&bench::case_expr(c).unwrap()).unwrap()));
    }
    let mut best = vec![f64::INFINITY; fs.len()];
    for _ in 0..reps {
        for (i, (_, f)) in fs.iter().enumerate() {
            let t = Instant::now();
            std::hint::black_box(f.call(&[(&x).into()]).unwrap());
            best[i] = best[i].min(t.elapsed().as_secs_f64());
        }
    }
    for (i, (c, _)) in fs.iter().enumerate() {
        println!(
            "{c}: {:.3} ns/elem ({:.2} x copy)",
            best[i] / n as f64 * 1e9,
            best[i] / best[0]
        );
    }
}
