//! Device-resident arrays through the session: data uploaded once stays on the GPU, results
//! feed the next expression, and nothing is uploaded again (the session's counters show it).
//! Skips without an adapter, fails instead under `FUSEBOX_REQUIRE_GPU=1`.
use fusebox::{DType, Device, Error, Expr, Options, Session};
use ndarray::Array1;

fn gpu_session() -> Option<Session> {
    let required = std::env::var("FUSEBOX_REQUIRE_GPU").is_ok_and(|v| v == "1");
    match fusebox::gpu::GpuBackend::new(0) {
        Ok(_) => Some(Session::with_options(Options {
            device: Device::Gpu(0),
            ..Options::default()
        })),
        Err(e) if required => panic!("FUSEBOX_REQUIRE_GPU=1 but no usable GPU adapter: {e}"),
        Err(e) => {
            println!("skipping: {e}");
            None
        }
    }
}

#[test]
fn results_stay_on_the_device_and_feed_the_next_expression() {
    let Some(s) = gpu_session() else { return };
    let n = 100_003;
    let x = Array1::from_iter((0..n).map(|i| i as f64 * 0.25 - 1000.0));
    let xd = s.to_device(&x.view().into()).unwrap();
    let uploaded = s.stats().bytes_uploaded;
    assert_eq!(uploaded, 8 * n as u64, "the upload itself");

    let xs = Expr::symbol("x", DType::F64, &[n]);
    let y = s
        .compute_on_device(&((5.0 * &xs + 4.0) * &xs + 1.0), &[("x", &xd)])
        .unwrap();
    let ys = Expr::symbol("y", DType::F64, &[n]);
    // A two-kernel plan (a sum feeding an element-wise map) runs on the device as well.
    let z = s
        .compute_on_device(
            &(&ys * 2.0 + &xs - ys.sum() * 0.0),
            &[("y", &y), ("x", &xd)],
        )
        .unwrap();
    let st = s.stats();
    assert_eq!(st.bytes_uploaded, uploaded, "nothing re-uploaded");
    assert_eq!(st.bytes_downloaded, 0, "nothing brought back yet");
    assert_eq!(st.kernels_launched, 3);

    let host = s.to_host(&z).unwrap().into_f64().unwrap();
    assert_eq!(s.stats().bytes_downloaded, 8 * n as u64);
    let want: Vec<f64> = x
        .iter()
        .map(|t| ((5.0 * t + 4.0) * t + 1.0) * 2.0 + t)
        .collect();
    assert_eq!(host.iter().copied().collect::<Vec<_>>(), want);
}

#[test]
fn device_api_errors_are_typed() {
    let cpu = Session::new();
    let a = Array1::<f64>::zeros(3);
    assert!(matches!(
        cpu.to_device(&a.view().into()),
        Err(Error::Device(_))
    ));
    let Some(s) = gpu_session() else { return };
    let d = s.to_device(&a.view().into()).unwrap();
    let i = Expr::symbol("i", DType::I32, &[3]);
    assert!(matches!(
        s.compute_on_device(&(&i + 1), &[("i", &d)]),
        Err(Error::Type(_))
    ));
    assert!(matches!(
        s.compute_on_device(&(&i + 1), &[]),
        Err(Error::UnknownName(_))
    ));
}
