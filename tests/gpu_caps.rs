//! An adapter without `SHADER_F64` (Metal, most mobile GPUs), simulated on a real adapter
//! with `FUSEBOX_GPU_HIDE=f64`: float64 plans go to the CPU under `Auto`, and are a typed
//! error when the GPU is pinned; float32 plans still run on the GPU, in float32.
//!
//! One test in its own binary: the variable must be set before the adapters are listed (once
//! per process). Skips without an adapter, fails instead under `FUSEBOX_REQUIRE_GPU=1`.
use fusebox::unstable::place::DeviceParams;
use fusebox::{DType, Device, DynArray, Error, Expr, Options, Session};
use ndarray::Array1;

/// A device with flat rates and no one-time costs.
fn machine(bw: f64, transfer: f64, threads: usize) -> DeviceParams {
    DeviceParams {
        key: "test machine".into(),
        threads,
        launch_s: 1e-6,
        thread_start_s: 0.0,
        bandwidth: vec![[1e3, bw], [1e9, bw]],
        arith_per_s: bw,
        transcendental_per_s: bw / 20.0,
        h2d_per_s: transfer,
        d2h_per_s: transfer,
        arith_f32_per_s: 0.0,
        sync_s: 0.0,
        binding_bytes: 0.0,
        compile_base_s: 0.0,
        compile_per_inst_s: 0.0,
        startup_s: 0.0,
        probe_s: 0.0,
    }
}

#[test]
fn float64_without_shader_f64_goes_to_the_cpu_or_is_refused() {
    std::env::set_var("FUSEBOX_GPU_HIDE", "f64");
    let required = std::env::var("FUSEBOX_REQUIRE_GPU").is_ok_and(|v| v == "1");
    let list = fusebox::unstable::gpu::adapters();
    if list.is_empty() {
        assert!(!required, "FUSEBOX_REQUIRE_GPU=1 but no GPU adapter");
        println!("skipping: no GPU adapter");
        return;
    }
    assert!(!list[0].f64, "FUSEBOX_GPU_HIDE=f64 hides SHADER_F64");
    let n = 100_000;
    let poly = |t: DType| {
        let x = Expr::symbol("x", t, &[n]);
        (5.0 * &x + 4.0) * &x + 1.0
    };
    let x64: DynArray = Array1::from_iter((0..n).map(|i| i as f64 * 1e-3 - 7.0))
        .into_dyn()
        .into();
    let x32: DynArray = Array1::from_iter((0..n).map(|i| i as f32 * 1e-3 - 7.0))
        .into_dyn()
        .into();
    let reference = Session::with_options(Options::default().with_device(Device::Reference));

    // Pinned: a typed error naming the missing feature.
    let gpu = Session::with_options(Options::default().with_device(Device::Gpu(0)));
    match gpu.compute_with(&poly(DType::F64), &[("x", x64.view())]) {
        Err(Error::UnsupportedDtype { dtype, context }) => {
            assert_eq!(dtype, "float64");
            assert!(context.contains("SHADER_F64"), "{context}");
        }
        other => panic!("expected UnsupportedDtype, got {other:?}"),
    }
    // float32 still runs there, bit for bit as the reference (a polynomial: exact ops).
    let got = gpu
        .compute_with(&poly(DType::F32), &[("x", x32.view())])
        .unwrap();
    let want = reference
        .compute_with(&poly(DType::F32), &[("x", x32.view())])
        .unwrap();
    assert!(got == want, "f32 poly on the GPU");

    // Auto, on a made-up machine where the GPU wins by far: float32 goes there, float64 cannot.
    let auto = Session::new();
    auto.set_device_params(Device::Cpu, machine(1e9, 0.0, 1))
        .unwrap();
    auto.set_device_params(Device::Gpu(0), machine(1e13, 1e13, 1))
        .unwrap();
    let got = auto
        .compute_with(&poly(DType::F32), &[("x", x32.view())])
        .unwrap();
    assert!(got == want);
    assert_eq!((auto.stats().auto_gpu, auto.stats().auto_cpu), (1, 0));
    let got = auto
        .compute_with(&poly(DType::F64), &[("x", x64.view())])
        .unwrap();
    let want = reference
        .compute_with(&poly(DType::F64), &[("x", x64.view())])
        .unwrap();
    assert!(got == want);
    assert_eq!((auto.stats().auto_gpu, auto.stats().auto_cpu), (1, 1));
}
