//! A whole plan on the GPU: `compute()` with the GPU chosen uploads each input once per plan,
//! keeps temporaries and reduction partials on the device, and downloads only the results. The
//! session's counters (`Stats`) prove it; results agree with the reference evaluator.
//! Skips without an adapter, fails instead under `FUSEBOX_REQUIRE_GPU=1`.
mod common;

use fusebox::{DType, Device, DynArray, Expr, Options, Session};
use ndarray::Array1;
use std::process::Command;

use common::{gpu_has_f64 as has_f64, gpu_session};

/// Values with a spread of magnitudes and signs, deterministic.
fn data(n: usize) -> Array1<f64> {
    Array1::from_iter((0..n).map(|i| ((i * 7919) % 1013) as f64 * 0.013 - 6.5))
}

fn floats(a: &DynArray) -> Vec<f64> {
    match a {
        DynArray::F64(v) => v.iter().copied().collect(),
        DynArray::F32(v) => v.iter().map(|&x| x as f64).collect(),
        _ => panic!("a float array expected, got {}", a.dtype()),
    }
}

/// Relative agreement with the reference (reductions are pairwise on the GPU, sequential in
/// the reference, so not bit for bit).
fn close(got: &DynArray, want: &DynArray, tol: f64, what: &str) {
    assert_eq!(got.dtype(), want.dtype(), "{what}");
    assert_eq!(got.shape(), want.shape(), "{what}");
    let (g, w) = (floats(got), floats(want));
    for (i, (x, y)) in g.iter().zip(&w).enumerate() {
        assert!(
            (x - y).abs() <= tol * y.abs().max(1.0),
            "{what}[{i}]: {x} vs {y}"
        );
    }
}

/// A multi-kernel plan on host data: the GPU counters show one upload of `x` and one download
/// of the result; the reference evaluator gives the values.
fn check_plan(e: &Expr, x: &Array1<f64>, dtype: DType, kernels: u64, tol: f64, what: &str) {
    let Some(s) = gpu_session() else { return };
    if dtype == DType::F64 && !has_f64() {
        return;
    }
    let n = x.len() as u64;
    let xa: DynArray = match dtype {
        DType::F32 => x.mapv(|v| v as f32).into_dyn().into(),
        _ => x.clone().into_dyn().into(),
    };
    let binds = [("x", xa.view())];
    let got = s
        .compute_with(e, &binds)
        .unwrap_or_else(|err| panic!("{what}: {err}"));
    let st = s.stats();
    let size = dtype.size() as u64;
    assert_eq!(st.kernels_launched, kernels, "{what}: kernels of the plan");
    assert_eq!(st.bytes_uploaded, size * n, "{what}: x uploaded once");
    assert_eq!(
        st.bytes_downloaded,
        size * n,
        "{what}: only the result downloaded"
    );
    let reference = Session::with_options(Options::default().with_device(Device::Reference));
    let want = reference.compute_with(e, &binds).unwrap();
    close(&got, &want, tol, what);

    // The same plan again: uploads and downloads once more, nothing else.
    s.compute_with(e, &binds).unwrap();
    let st2 = s.stats();
    assert_eq!(st2.bytes_uploaded, 2 * size * n, "{what}: second run");
    assert_eq!(st2.bytes_downloaded, 2 * size * n, "{what}: second run");
}

#[test]
fn standardize_uploads_x_once_and_downloads_once() {
    for (t, tol) in [(DType::F64, 1e-12), (DType::F32, 1e-3)] {
        let x = Expr::symbol("x", t, &[100_003]);
        let e = (&x - x.mean()) / x.std();
        check_plan(&e, &data(100_003), t, 3, tol, &format!("standardize {t}"));
    }
}

#[test]
fn softmax_uploads_x_once_and_downloads_once() {
    for (t, tol) in [(DType::F64, 1e-12), (DType::F32, 1e-3)] {
        let x = Expr::symbol("x", t, &[65_537]);
        let e = (&x - x.max()).exp() / (&x - x.max()).exp().sum();
        check_plan(&e, &data(65_537), t, 3, tol, &format!("softmax {t}"));
    }
}

/// Rows standardized along an axis (reductions along one axis, broadcast back): one upload,
/// one download, values of the reference.
#[test]
fn row_standardize_stays_on_the_device() {
    let Some(s) = gpu_session() else { return };
    if !has_f64() {
        return;
    }
    let (m, n) = (123usize, 517usize);
    let a = ndarray::Array2::from_shape_fn((m, n), |(i, j)| ((i * 31 + j * 17) % 101) as f64);
    let ae = Expr::symbol("a", DType::F64, &[m, n]);
    let mean = ae.reduce(fusebox::Reduction::Mean, Some(&[1]), true);
    let std = ae.reduce(fusebox::Reduction::Std { ddof: 0 }, Some(&[1]), true);
    let e = (&ae - mean) / std;
    let binds = [("a", a.view().into_dyn().into())];
    let got = s.compute_with(&e, &binds).unwrap();
    let st = s.stats();
    let bytes = (8 * m * n) as u64;
    assert_eq!((st.bytes_uploaded, st.bytes_downloaded), (bytes, bytes));
    let reference = Session::with_options(Options::default().with_device(Device::Reference));
    close(
        &got,
        &reference.compute_with(&e, &binds).unwrap(),
        1e-12,
        "rows",
    );
}

/// `fusebox eval --stats` prints the counters as one JSON object; on the GPU they show the
/// single upload and download of a 3-kernel plan.
#[test]
fn eval_stats_prints_the_counters_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let n = 10_000usize;
    let p = dir.path().join("x.npy");
    ndarray_npy::WriteNpyExt::write_npy(&data(n), std::fs::File::create(&p).unwrap()).unwrap();
    let xarg = format!("x={}", p.display());
    let run = |device: &str| {
        let o = Command::new(env!("CARGO_BIN_EXE_fusebox"))
            .args([
                "eval",
                "--device",
                device,
                "--stats",
                "(x - mean(x)) / std(x)",
                &xarg,
            ])
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(
            o.status.success(),
            "{device}: {out} {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let line = out.lines().last().unwrap_or_default().to_string();
        serde_json::from_str::<serde_json::Value>(&line)
            .unwrap_or_else(|e| panic!("{device}: last line is not JSON ({e}): {out}"))
    };
    let cpu = run("cpu");
    assert_eq!(cpu["bytes_uploaded"], 0);
    assert_eq!(cpu["bytes_downloaded"], 0);
    assert_eq!(cpu["kernels_launched"], 3);
    assert_eq!(cpu["plans"], 1);
    if gpu_session().is_none() || !has_f64() {
        return;
    }
    let gpu = run("gpu");
    assert_eq!(gpu["bytes_uploaded"], 8 * n as u64);
    assert_eq!(gpu["bytes_downloaded"], 8 * n as u64);
    assert_eq!(gpu["kernels_launched"], 3);
}

/// The streamed host path's overlap, as figures (speed lives in benches; nothing asserted on
/// time): a 20M-element float64 polynomial streamed from the host against its upload, compute
/// and download measured alone. `cargo test --release --test gpu_plan streamed_poly -- --ignored
/// --nocapture` (BENCHMARKS.md has the lavapipe figures).
#[test]
#[ignore]
fn streamed_poly_overlaps_its_stages() {
    use fusebox::unstable::gpu::GpuBackend;
    use fusebox::unstable::kir::{Const, Inst, KernelBuilder, Output};
    use fusebox::BinaryOp;
    use std::time::Instant;
    let Ok(g) = GpuBackend::new(0) else {
        println!("skipping: no GPU");
        return;
    };
    let t = DType::F64;
    let mut b = KernelBuilder::new();
    let i = b.input(t);
    let x = b.push(Inst::Load { input: i }, t);
    let c5 = b.push(Inst::Const(Const::F64(5.0)), t);
    let c4 = b.push(Inst::Const(Const::F64(4.0)), t);
    let c1 = b.push(Inst::Const(Const::F64(1.0)), t);
    let bin = |b: &mut KernelBuilder, op, lhs, rhs| b.push(Inst::Binary { op, lhs, rhs }, t);
    let v = bin(&mut b, BinaryOp::Mul, c5, x);
    let v = bin(&mut b, BinaryOp::Add, v, c4);
    let v = bin(&mut b, BinaryOp::Mul, v, x);
    let v = bin(&mut b, BinaryOp::Add, v, c1);
    let k = g.compile(&b.finish(Output::Store { value: v })).unwrap();
    let n = 20_000_000usize;
    let host: DynArray = Array1::from_iter((0..n).map(|i| i as f64 * 1e-7))
        .into_dyn()
        .into();
    let halves: Vec<DynArray> = [0..n / 2, n / 2..n]
        .into_iter()
        .map(|r| {
            let v: Vec<f64> = (r).map(|i| i as f64 * 1e-7).collect();
            Array1::from(v).into_dyn().into()
        })
        .collect();
    let tiny = g
        .upload(&Array1::from(vec![0.0f64]).into_dyn().view().into())
        .unwrap();
    let sync = || drop(g.download(&tiny).unwrap());
    let best = |f: &mut dyn FnMut()| {
        (0..3)
            .map(|_| {
                let s = Instant::now();
                f();
                s.elapsed().as_secs_f64()
            })
            .fold(f64::INFINITY, f64::min)
    };
    // Warm up every path once.
    g.run(&k, &[host.view()], &[n]).unwrap();
    let mut dev = vec![];
    let up = best(&mut || {
        dev = halves
            .iter()
            .map(|h| g.upload(&h.view()).unwrap())
            .collect();
        sync();
    });
    let mut outs = vec![];
    let compute = best(&mut || {
        outs = dev
            .iter()
            .map(|d| g.run_resident(&k, &[d], &[n / 2]).unwrap())
            .collect();
        sync();
    });
    let down = best(&mut || {
        for o in &outs {
            drop(g.download(o).unwrap());
        }
    });
    let mut result = None;
    let streamed = best(&mut || result = Some(g.run(&k, &[host.view()], &[n]).unwrap()));
    let sum = up + compute + down;
    println!(
        "streamed f64 poly, n = {n}: upload {:.1} ms, compute {:.1} ms, download {:.1} ms \
         (sum {:.1} ms, slowest {:.1} ms); streamed {:.1} ms = {:.0}% of the sum",
        up * 1e3,
        compute * 1e3,
        down * 1e3,
        sum * 1e3,
        up.max(compute).max(down) * 1e3,
        streamed * 1e3,
        100.0 * streamed / sum
    );
    // The values, so the figure is of a correct run.
    let r = result.unwrap();
    let DynArray::F64(r) = r else { panic!() };
    let r = r.as_slice().unwrap();
    for j in [0, 1, n / 2, n - 1] {
        let xv = j as f64 * 1e-7;
        assert_eq!(
            r[j].to_bits(),
            ((5.0 * xv + 4.0) * xv + 1.0).to_bits(),
            "{j}"
        );
    }
}
