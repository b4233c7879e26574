//! The cost model and `Device::Auto`: estimate terms against the formula and against
//! `explain`'s bytes, the decision and data residency, pinned devices, measured counters against
//! the estimates for the seed's cases, the calibration cache, and the GPU fallback.
//!
//! Decisions are tested on known machines (device parameters given with
//! `Session::set_device_params`), so they do not depend on timing. GPU tests skip without an
//! adapter and fail instead under `FUSEBOX_REQUIRE_GPU=1`.
use fusebox::unstable::bench::{case_expr, case_inputs};
use fusebox::unstable::gpu::Fault;
use fusebox::unstable::place::{self, CalibrationCache, DeviceParams, Estimate, Residence};
use fusebox::{ArgView, DType, Device, DynArray, Error, Expr, Options, Session};
use std::collections::HashMap;

/// A device with flat bandwidth and no compile or start-up cost.
fn machine(launch_s: f64, bw: f64, arith: f64, transfer: f64, threads: usize) -> DeviceParams {
    DeviceParams {
        key: "test machine".into(),
        threads,
        launch_s,
        thread_start_s: if threads > 1 { 5e-6 } else { 0.0 },
        bandwidth: vec![[1e3, bw], [1e9, bw]],
        arith_per_s: arith,
        transcendental_per_s: arith / 20.0,
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

/// A CPU at 40 GB/s on 2 threads.
fn cpu_machine() -> DeviceParams {
    machine(1e-6, 40e9, 4e9, 0.0, 2)
}

/// A GPU with 1 TB/s of memory behind a 10 GB/s bus.
fn gpu_machine() -> DeviceParams {
    machine(20e-6, 1e12, 1e12, 10e9, 1)
}

fn session(device: Device, cpu: DeviceParams, gpu: DeviceParams) -> Session {
    let s = Session::with_options(Options::default().with_device(device));
    s.set_device_params(Device::Cpu, cpu).unwrap();
    s.set_device_params(Device::Gpu(0), gpu).unwrap();
    s
}

fn has_gpu() -> bool {
    let required = std::env::var("FUSEBOX_REQUIRE_GPU").is_ok_and(|v| v == "1");
    match fusebox::unstable::gpu::GpuBackend::new(0) {
        Ok(_) => true,
        Err(e) if required => panic!("FUSEBOX_REQUIRE_GPU=1 but {e}"),
        Err(e) => {
            println!("skipping: {e}");
            false
        }
    }
}

fn poly(n: usize) -> Expr {
    let x = Expr::symbol("x", DType::F64, &[n]);
    (5.0 * &x + 4.0) * &x + 1.0
}

fn estimate<'a>(es: &'a [fusebox::unstable::place::DeviceEstimate], device: &str) -> &'a Estimate {
    &es.iter()
        .find(|e| e.device == device)
        .unwrap_or_else(|| panic!("no estimate for {device}: {es:?}"))
        .estimate
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * b.abs().max(1e-300)
}

#[test]
fn estimate_terms_follow_the_formula_and_explains_bytes() {
    let n = 1_000_000usize;
    let s = session(Device::Auto, cpu_machine(), gpu_machine());
    let ex = s
        .explain_placed(&poly(n), &[("x", &[n], Residence::Host)])
        .unwrap();
    assert_eq!(ex.kernels.len(), 1);
    let k = &ex.kernels[0];
    assert_eq!(
        (k.bytes_read, k.bytes_written),
        (8 * n as u64, 8 * n as u64)
    );
    assert!(
        k.summary.contains("1 load, 4 arith + 0 transcendental"),
        "{}",
        k.summary
    );

    let cpu = estimate(&k.estimates, "cpu");
    assert_eq!(
        (cpu.transfer_s, cpu.bytes_to_device, cpu.bytes_from_device),
        (0.0, 0, 0)
    );
    assert!(close(cpu.memory_s, 16.0 * n as f64 / 40e9));
    // 4 arithmetic instructions per element on 2 threads (n is above the parallel threshold).
    assert!(close(cpu.compute_s, n as f64 * 4.0 / 4e9 / 2.0));
    assert_eq!((cpu.launch_s, cpu.thread_start_s), (1e-6, 5e-6));

    let gpu = estimate(&k.estimates, "gpu:0");
    // The host path: the input goes up, the result comes back: exactly the kernel's bytes.
    assert_eq!(gpu.bytes_to_device, k.bytes_read);
    assert_eq!(gpu.bytes_from_device, k.bytes_written);
    assert!(close(gpu.transfer_s, 16.0 * n as f64 / 10e9));
    assert!(close(gpu.memory_s, 16.0 * n as f64 / 1e12));
    for e in [cpu, gpu] {
        let formula = e.transfer_s
            + e.launch_s
            + e.thread_start_s
            + e.compile_s
            + e.compute_s.max(e.memory_s);
        assert!(close(e.total_s(), formula));
    }
    // The plan's estimates are the sums of its kernels', and the choice is the cheaper one.
    assert_eq!(estimate(&ex.estimates, "cpu"), cpu);
    assert!(cpu.total_s() < gpu.total_s());
    assert_eq!(ex.device, "cpu");

    let json: serde_json::Value = serde_json::from_str(&ex.to_json()).unwrap();
    assert_eq!(json["device"], "cpu");
    assert_eq!(json["bytes_fused"], 16 * n as u64);
    assert_eq!(json["kernels"][0]["device"], "cpu");
    let j = &json["kernels"][0]["estimates"]["gpu:0"];
    assert_eq!(j["bytes_to_device"], 8 * n as u64);
    assert!(close(j["total_s"].as_f64().unwrap(), gpu.total_s()));
    assert!(json["estimates"]["cpu"]["memory_s"].is_number());

    let text = format!("{ex:#}");
    assert!(text.contains("estimate cpu "), "{text}");
    assert!(
        !ex.to_string().contains("estimate"),
        "plain Display is machine-independent"
    );
    assert!(text.contains("placement: cpu"), "{text}");
}

#[test]
fn unfused_plans_pay_for_their_temporaries() {
    let n = 100_000usize;
    let s = Session::with_options(Options::default().with_optimize(false));
    s.set_device_params(Device::Cpu, cpu_machine()).unwrap();
    s.set_device_params(Device::Gpu(0), gpu_machine()).unwrap();
    let ex = s
        .explain_placed(&poly(n), &[("x", &[n], Residence::Host)])
        .unwrap();
    assert_eq!(ex.kernels.len(), 4);
    let gpu = estimate(&ex.estimates, "gpu:0");
    let cpu = estimate(&ex.estimates, "cpu");
    // Every array fits one binding: the plan runs resident on the GPU, x goes up once and
    // the result comes down once.
    assert_eq!(gpu.bytes_to_device + gpu.bytes_from_device, 16 * n as u64);
    // Arrays larger than a binding: the host path, where every kernel uploads its arguments
    // and reads its result back.
    let small = Session::with_options(Options::default().with_optimize(false));
    small.set_device_params(Device::Cpu, cpu_machine()).unwrap();
    let mut g = gpu_machine();
    g.binding_bytes = 4096.0;
    small.set_device_params(Device::Gpu(0), g).unwrap();
    let ex_small = small
        .explain_placed(&poly(n), &[("x", &[n], Residence::Host)])
        .unwrap();
    let host = estimate(&ex_small.estimates, "gpu:0");
    assert_eq!(
        host.bytes_to_device + host.bytes_from_device,
        ex.bytes_unfused
    );
    assert!(close(cpu.memory_s, ex.bytes_unfused as f64 / 40e9));
    assert!(close(cpu.launch_s, 4e-6));
}

#[test]
fn data_already_on_the_gpu_tips_the_choice() {
    let n = 10_000_000usize;
    let s = session(Device::Auto, cpu_machine(), gpu_machine());
    let e = poly(n);
    let host = s
        .explain_placed(&e, &[("x", &[n], Residence::Host)])
        .unwrap();
    let resident = s
        .explain_placed(&e, &[("x", &[n], Residence::Gpu(0))])
        .unwrap();
    assert_eq!(host.device, "cpu");
    assert!(resident.device.starts_with("gpu:0"), "{}", resident.device);
    let (g_host, g_res) = (
        estimate(&host.estimates, "gpu:0"),
        estimate(&resident.estimates, "gpu:0"),
    );
    let (c_host, c_res) = (
        estimate(&host.estimates, "cpu"),
        estimate(&resident.estimates, "cpu"),
    );
    // Resident: nothing goes up; the result still comes back to the host.
    assert_eq!(
        (g_res.bytes_to_device, g_res.bytes_from_device),
        (0, 8 * n as u64)
    );
    assert_eq!(g_host.bytes_to_device, 8 * n as u64);
    // The CPU must now bring x down first.
    assert_eq!(c_res.bytes_from_device, 8 * n as u64);
    assert_eq!(c_host.bytes_from_device, 0);
    assert!(c_res.total_s() > c_host.total_s());
    assert!(g_res.total_s() < g_host.total_s());
}

#[test]
fn decision_follows_the_size_on_a_known_machine() {
    // Small arrays: the GPU's launch and bus dominate; large ones with lots of arithmetic:
    // the GPU wins even counting the transfers.
    let s = session(Device::Auto, cpu_machine(), gpu_machine());
    let heavy = |n: usize| {
        let x = Expr::symbol("x", DType::F64, &[n]);
        x.sin() * x.cos() + x.tanh()
    };
    let small = s.explain_placed(&heavy(100), &[]).unwrap();
    assert_eq!(small.device, "cpu");
    let large = s.explain_placed(&heavy(10_000_000), &[]).unwrap();
    assert!(large.device.starts_with("gpu:0"), "{large}");
}

#[test]
fn pinned_devices_are_honoured() {
    let n = 200_000usize;
    let x: ndarray::Array1<f64> = ndarray::Array1::linspace(-5.0, 5.0, n);
    let bind = [("x", ArgView::from(&x))];
    // Pinned CPU on a machine where the GPU would be far cheaper.
    let fast_gpu = machine(1e-9, 1e15, 1e15, 1e15, 1);
    let slow_cpu = machine(1e-3, 1e6, 1e6, 0.0, 1);
    let s = session(Device::Cpu, slow_cpu.clone(), fast_gpu.clone());
    assert_eq!(s.explain_with(&poly(n), &bind).unwrap().device, "cpu");
    s.compute_with(&poly(n), &bind).unwrap();
    let st = s.stats();
    assert_eq!((st.bytes_uploaded, st.auto_cpu, st.auto_gpu), (0, 0, 0));
    assert!(st.gpu_time.is_zero());
    if !has_gpu() {
        return;
    }
    // Pinned GPU on a machine where the CPU would be far cheaper.
    let s = session(Device::Gpu(0), fast_gpu.clone(), slow_cpu.clone());
    let ex = s.explain_with(&poly(n), &bind).unwrap();
    assert!(ex.device.starts_with("gpu:0"), "{}", ex.device);
    s.compute_with(&poly(n), &bind).unwrap();
    assert_eq!(s.stats().bytes_uploaded, 8 * n as u64);
    // Auto follows the estimate: the same machine sends it to the GPU.
    let s = session(Device::Auto, slow_cpu, fast_gpu);
    s.compute_with(&poly(n), &bind).unwrap();
    let st = s.stats();
    assert_eq!((st.auto_cpu, st.auto_gpu), (0, 1));
    assert_eq!(st.bytes_uploaded, 8 * n as u64);
}

/// The seed's cases bound to host arrays.
fn seed_case(case: &str, n: usize) -> (Expr, Vec<ndarray::Array1<f64>>) {
    (case_expr(case).unwrap(), case_inputs(case, n))
}

fn check_counters(s: &Session, case: &str, n: usize, gpu: bool) {
    let (e, ins) = seed_case(case, n);
    let names = ["x", "b"];
    let bind: Vec<(&str, ArgView<'_>)> = names
        .iter()
        .copied()
        .zip(ins.iter().map(ArgView::from))
        .collect();
    let ex = s.explain_with(&e, &bind).unwrap();
    let before = s.stats();
    let out = s.compute_with(&e, &bind).unwrap();
    let after = s.stats();
    let read: u64 = ex.kernels.iter().map(|k| k.bytes_read).sum();
    let written: u64 = ex.kernels.iter().map(|k| k.bytes_written).sum();
    assert_eq!(after.bytes_read - before.bytes_read, read, "{case}");
    assert_eq!(
        after.bytes_written - before.bytes_written,
        written,
        "{case}"
    );
    assert_eq!(
        after.kernels_launched - before.kernels_launched,
        ex.kernels.len() as u64,
        "{case}"
    );
    let dev = if gpu { "gpu:0" } else { "cpu" };
    let est = estimate(&ex.estimates, dev);
    assert_eq!(
        after.bytes_uploaded - before.bytes_uploaded,
        est.bytes_to_device,
        "{case}"
    );
    assert_eq!(
        after.bytes_downloaded - before.bytes_downloaded,
        est.bytes_from_device,
        "{case}"
    );
    // And the value is the reference evaluator's.
    let map: HashMap<String, DynArray> = bind
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_dyn_array()))
        .collect();
    let want = fusebox::unstable::reference::evaluate(&e, &map)
        .unwrap()
        .into_f64()
        .unwrap();
    let got = out.into_f64().unwrap();
    assert_eq!(want.shape(), got.shape());
    for (a, b) in got.iter().zip(want.iter()) {
        assert!(
            (a - b).abs() <= 1e-9 * (1.0 + b.abs()),
            "{case}: {a} vs {b}"
        );
    }
}

#[test]
fn counters_equal_the_estimates_for_the_seed_cases() {
    let n = 100_003;
    for optimize in [true, false] {
        let s = Session::with_options(
            Options::default()
                .with_device(Device::Cpu)
                .with_optimize(optimize),
        );
        s.set_device_params(Device::Cpu, cpu_machine()).unwrap();
        for case in ["poly", "gauss", "two", "sumsq"] {
            check_counters(&s, case, n, false);
        }
    }
    if !has_gpu() {
        return;
    }
    for optimize in [true, false] {
        let s = Session::with_options(
            Options::default()
                .with_device(Device::Gpu(0))
                .with_optimize(optimize),
        );
        s.set_device_params(Device::Gpu(0), gpu_machine()).unwrap();
        for case in ["poly", "gauss", "two", "sumsq"] {
            check_counters(&s, case, n, true);
        }
    }
}

#[test]
fn calibration_cache_is_written_read_and_invalidated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub").join("calibration.json");
    // The real CPU probes, on one thread.
    let cache = CalibrationCache::at(Some(path.clone()));
    let measured = place::cpu_params(&cache, 1).unwrap();
    assert_eq!(measured.key, place::cpu_key(1));
    assert_eq!(measured.threads, 1);
    assert!(measured.launch_s > 0.0 && measured.arith_per_s > 0.0);
    assert!(measured.bandwidth.iter().all(|[b, r]| *b > 0.0 && *r > 0.0));
    assert!(measured.bandwidth.windows(2).all(|w| w[0][0] < w[1][0]));
    assert!(path.exists());

    // A second cache on the same file reads it: no measurement.
    let again = CalibrationCache::at(Some(path.clone()));
    let read = again
        .get_or_measure(&place::cpu_key(1), || panic!("must come from the file"))
        .unwrap();
    assert_eq!(read, measured);

    // Another key (say, a new driver) measures and is added beside.
    let mut calls = 0;
    let other = again
        .get_or_measure("gpu imaginary (driver 2)", || {
            calls += 1;
            Ok(gpu_machine())
        })
        .unwrap();
    assert_eq!((calls, other.key.as_str()), (1, "gpu imaginary (driver 2)"));
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("gpu imaginary (driver 2)") && text.contains(&place::cpu_key(1)));

    // Another fusebox version: everything is measured again.
    std::fs::write(&path, text.replace(env!("CARGO_PKG_VERSION"), "0.0.0-old")).unwrap();
    let stale = CalibrationCache::at(Some(path.clone()));
    let mut calls = 0;
    stale
        .get_or_measure(&place::cpu_key(1), || {
            calls += 1;
            Ok(cpu_machine())
        })
        .unwrap();
    assert_eq!(calls, 1);
    // A damaged file is ignored, not an error.
    std::fs::write(&path, "{ not json").unwrap();
    let damaged = CalibrationCache::at(Some(path.clone()));
    let p = damaged.get_or_measure("k", || Ok(cpu_machine())).unwrap();
    assert_eq!(p.key, "k");
}

#[test]
fn calibration_file_location() {
    let env = |vars: &'static [(&'static str, &'static str)]| {
        move |k: &str| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    };
    let p = |vars| place::cache_path_from(&env(vars));
    assert_eq!(
        p(&[("FUSEBOX_CALIBRATION", "/tmp/c.json"), ("HOME", "/home/u")]),
        Some("/tmp/c.json".into())
    );
    assert_eq!(
        p(&[("XDG_CACHE_HOME", "/x"), ("HOME", "/home/u")]),
        Some("/x/fusebox/calibration.json".into())
    );
    assert_eq!(
        p(&[("HOME", "/home/u")]),
        Some("/home/u/.cache/fusebox/calibration.json".into())
    );
    assert_eq!(p(&[]), None);
}

#[test]
fn compiled_functions_amortize_compilation() {
    // A GPU that is faster per call but slow to compile for: a one-shot `compute` stays on
    // the CPU, a compiled function (called many times) goes to the GPU.
    let n = 1_000_000usize;
    let mut gpu = machine(1e-9, 1e15, 1e15, 1e15, 1);
    gpu.compile_base_s = 10.0;
    let s = session(Device::Auto, machine(1e-6, 1e9, 1e9, 0.0, 1), gpu);
    let ex = s
        .explain_placed(&poly(n), &[("x", &[n], Residence::Host)])
        .unwrap();
    assert_eq!(ex.device, "cpu");
    if !has_gpu() {
        return;
    }
    let x: ndarray::Array1<f64> = ndarray::Array1::linspace(-5.0, 5.0, n);
    let f = s.compile(&poly(n)).unwrap();
    assert_eq!(f.placement(&[ArgView::from(&x)]).unwrap(), Device::Gpu(0));
}

#[test]
fn auto_falls_back_to_the_cpu_when_the_gpu_fails() {
    if !has_gpu() {
        return;
    }
    let n = 50_000usize;
    let x: ndarray::Array1<f64> = ndarray::Array1::linspace(-5.0, 5.0, n);
    let bind = [("x", ArgView::from(&x))];
    let want = |e: &Expr| {
        let map = HashMap::from([("x".to_string(), DynArray::from(x.clone()))]);
        fusebox::unstable::reference::evaluate(e, &map)
            .unwrap()
            .into_f64()
            .unwrap()
    };
    let fast_gpu = machine(1e-9, 1e15, 1e15, 1e15, 1);
    let slow_cpu = machine(1e-3, 1e6, 1e6, 0.0, 1);
    let auto = session(Device::Auto, slow_cpu.clone(), fast_gpu.clone());
    // A device lost while running.
    auto.inject_gpu_fault(0, Some(Fault::DeviceLost)).unwrap();
    let e = poly(n);
    let got = auto.compute_with(&e, &bind).unwrap().into_f64().unwrap();
    assert_eq!(got, want(&e));
    assert_eq!(auto.stats().gpu_fallbacks, 1);
    // A shader the driver rejects.
    auto.inject_gpu_fault(0, Some(Fault::Compile)).unwrap();
    let e2 = poly(n).exp();
    let got = auto.compute_with(&e2, &bind).unwrap().into_f64().unwrap();
    let w = want(&e2);
    for (a, b) in got.iter().zip(w.iter()) {
        assert!((a - b).abs() <= 4.0 * f64::EPSILON * b.abs(), "{a} {b}");
    }
    assert_eq!(auto.stats().gpu_fallbacks, 2);
    // Healthy again: back on the GPU, no new fallback. (The plan whose compilation failed
    // counts as placed on the CPU, where it was compiled.) `e` was placed on the GPU before,
    // and its plan is reused from the session's plan cache, not placed again.
    auto.inject_gpu_fault(0, None).unwrap();
    let reused = auto.stats().plans_reused;
    auto.compute_with(&e, &bind).unwrap();
    let st = auto.stats();
    assert_eq!((st.gpu_fallbacks, st.auto_gpu, st.auto_cpu), (2, 1, 1));
    assert_eq!(st.plans_reused, reused + 1);

    // A pinned GPU reports the failure.
    let pinned = session(Device::Gpu(0), slow_cpu, fast_gpu);
    pinned
        .inject_gpu_fault(0, Some(Fault::OutOfMemory))
        .unwrap();
    assert!(matches!(
        pinned.compute_with(&e, &bind),
        Err(Error::OutOfMemory { .. })
    ));
    assert_eq!(pinned.stats().gpu_fallbacks, 0);
}

#[test]
fn the_issue_s_poly_at_1e8() {
    let n = 100_000_000usize;
    let ex = Session::new().explain(&poly(n)).unwrap();
    let text = ex.to_string();
    assert!(text.contains("fused 1.6 GB"), "{text}");
    assert!(text.contains("unfused 7.2 GB"), "{text}");
    assert!(text.contains("saved 5.6 GB (78%)"), "{text}");
    // Every candidate has an estimate with finite, non-negative terms.
    assert!(!ex.estimates.is_empty());
    for d in &ex.estimates {
        let e = &d.estimate;
        for t in [
            e.transfer_s,
            e.launch_s,
            e.thread_start_s,
            e.compute_s,
            e.memory_s,
            e.compile_s,
        ] {
            assert!(t.is_finite() && t >= 0.0, "{d:?}");
        }
        assert!(e.total_s() > 0.0);
    }
}

#[test]
fn resident_plans_count_what_they_read_and_write() {
    if !has_gpu() {
        return;
    }
    let n = 10_000usize;
    let s = Session::with_options(Options::default().with_device(Device::Gpu(0)));
    s.set_device_params(Device::Gpu(0), gpu_machine()).unwrap();
    let x: ndarray::Array1<f64> = ndarray::Array1::linspace(-5.0, 5.0, n);
    let d = s.to_device(&ArgView::from(&x)).unwrap();
    let ex = s
        .explain_placed(&poly(n), &[("x", &[n], Residence::Gpu(0))])
        .unwrap();
    let before = s.stats();
    let out = s.compute_on_device(&poly(n), &[("x", &d)]).unwrap();
    let after = s.stats();
    assert_eq!(
        after.bytes_read - before.bytes_read,
        ex.kernels[0].bytes_read
    );
    assert_eq!(
        after.bytes_written - before.bytes_written,
        ex.kernels[0].bytes_written
    );
    // Nothing went up; the estimate's one download is the result, which `to_host` pays.
    let est = estimate(&ex.estimates, "gpu:0");
    assert_eq!(
        (
            after.bytes_uploaded - before.bytes_uploaded,
            est.bytes_to_device
        ),
        (0, 0)
    );
    s.to_host(&out).unwrap();
    assert_eq!(
        s.stats().bytes_downloaded - before.bytes_downloaded,
        est.bytes_from_device
    );
}

/// The CLI: `eval --explain --json` and `bench --placement --json`.
fn fusebox(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_fusebox"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn cli_explain_json_has_estimates_per_device() {
    let o = fusebox(&["eval", "sum(x * x)", "x=2.5", "--explain", "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let ex = &v["explain"];
    assert_eq!(ex["device"], "cpu");
    // A 0-d input: the sum reads nothing from memory but writes its one float64 result.
    assert_eq!(
        (ex["bytes_fused"].as_u64(), ex["bytes_unfused"].as_u64()),
        (Some(8), Some(8))
    );
    let k = &ex["kernels"][0];
    assert_eq!(k["device"], "cpu");
    assert!(
        k["estimates"]["cpu"]["total_s"].as_f64().unwrap() > 0.0,
        "{k}"
    );
    assert!(ex["estimates"]["cpu"]["launch_s"].is_number());
}

#[test]
fn cli_bench_placement_records() {
    if !has_gpu() {
        return;
    }
    let o = fusebox(&[
        "bench",
        "--placement",
        "--case",
        "poly,sumsq",
        "--sizes",
        "1000,20000",
        "--budget-ms",
        "20",
        "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let recs = v.as_array().unwrap();
    assert_eq!(recs.len(), 2 * 2 * 3);
    for r in recs {
        for key in [
            "case", "n", "impl", "device", "threads", "median_s", "bytes", "gbps",
        ] {
            assert!(!r[key].is_null(), "{key} missing in {r}");
        }
        let dev = r["device"].as_str().unwrap();
        assert!(["cpu", "gpu", "auto"].contains(&dev), "{r}");
        let chosen = r["chosen"].as_str();
        if dev == "auto" {
            assert!(matches!(chosen, Some("cpu") | Some("gpu:0")), "{r}");
        } else {
            assert_eq!(chosen, None);
        }
    }
    let o = fusebox(&[
        "bench",
        "--placement",
        "--case",
        "add1",
        "--sizes",
        "1000",
        "--budget-ms",
        "5",
    ]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("regret") && text.contains("add1"), "{text}");
}

/// The integer dtypes the WGSL backend lacks (int8, int16, uint8, uint16, uint32, uint64): a
/// pinned GPU refuses them with a typed error naming the dtype; `Auto` never places them there,
/// even on a machine where the GPU would win, and computes them on the CPU.
#[test]
fn integer_dtypes_without_wgsl_code_stay_on_the_cpu() {
    if !has_gpu() {
        return;
    }
    let n = 1 << 20;
    let a = ndarray::Array1::from_iter((0..n).map(|i| (i % 251) as u8));
    let b = ndarray::Array1::from_iter((0..n).map(|i| (i % 13) as u8 * 19));
    let e = Expr::data(a.clone(), Some("a")) + Expr::data(b.clone(), Some("b"));
    let fast_gpu = machine(1e-9, 1e13, 1e13, 1e12, 1);
    let slow_cpu = machine(1e-6, 1e9, 1e9, 0.0, 1);
    let auto = session(Device::Auto, slow_cpu.clone(), fast_gpu.clone());
    let got: ndarray::Array1<u8> = auto.compute(&e).unwrap().into_array().unwrap();
    let want: Vec<u8> = a.iter().zip(&b).map(|(x, y)| x.wrapping_add(*y)).collect();
    assert_eq!(got.to_vec(), want);
    let st = auto.stats();
    assert_eq!((st.auto_gpu, st.auto_cpu), (0, 1));
    // The same machine places a float64 sum of that size on the GPU (the parameters do favour it).
    let f = Expr::data(a.mapv(f64::from), Some("f")) * 2.0;
    auto.compute(&f).unwrap();
    assert_eq!(auto.stats().auto_gpu, 1);

    let pinned = session(Device::Gpu(0), slow_cpu, fast_gpu);
    for t in [
        DType::I8,
        DType::I16,
        DType::U8,
        DType::U16,
        DType::U32,
        DType::U64,
        DType::F16,
    ] {
        let cast = Expr::data(a.clone(), None).astype(t);
        let xt = fusebox::unstable::reference::evaluate(&cast, &HashMap::new()).unwrap();
        let x = Expr::data(xt, None);
        match pinned.compute(&(&x + &x)) {
            Err(Error::UnsupportedDtype { dtype, context }) => {
                assert_eq!(dtype, t.name());
                assert!(context.contains("GPU"), "{context}");
            }
            other => panic!("{t}: {other:?}"),
        }
    }
}
