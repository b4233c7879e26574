//! Subgroup operations in the reduction tree, and pipeline build times.
use super::paths::sum_kernel;
use super::reductions::{check_against_interp, check_reduced, reduce_kernel, tie_values};
use super::*;

// ---- subgroup operations in the reduction tree ---------------------------------------------

/// A second backend on adapter 0 with subgroup operations off, to compare both tree paths on
/// one adapter (`backend()` uses them where the adapter has `SUBGROUP`).
fn backend_without_subgroups() -> Option<&'static GpuBackend> {
    static B: OnceLock<Option<GpuBackend>> = OnceLock::new();
    backend()?;
    B.get_or_init(|| {
        let b = GpuBackend::new(0).expect("adapter 0 opened once already");
        b.set_subgroups(false);
        Some(b)
    })
    .as_ref()
}

/// Both paths: (backend, name). Only the shared-memory one where the adapter lacks subgroups.
fn tree_paths() -> Vec<(&'static GpuBackend, &'static str)> {
    let mut v = Vec::new();
    if let Some(b) = backend() {
        v.push((
            b,
            if b.subgroups() {
                "subgroups"
            } else {
                "shared memory"
            },
        ));
    }
    if let Some(b) = backend_without_subgroups() {
        if v.first().is_some_and(|(a, _)| a.subgroups()) {
            v.push((b, "shared memory"));
        }
    }
    v
}

#[test]
fn subgroup_path_is_taken_where_the_adapter_has_it() {
    let Some(b) = backend() else { return };
    let required = std::env::var("FUSEBOX_REQUIRE_GPU").is_ok_and(|v| v == "1");
    let env_off = std::env::var("FUSEBOX_GPU_SUBGROUPS").is_ok_and(|v| v.trim() == "0");
    let info = b.info();
    // lavapipe (the CI adapter) has them: a lost feature request would silently fall back.
    if required && info.backend == "Vulkan" && info.name.contains("llvmpipe") {
        assert!(info.subgroups, "lavapipe offers SUBGROUP: {info:?}");
    }
    assert_eq!(b.subgroups(), info.subgroups && !env_off, "{info:?}");
    let off = backend_without_subgroups().unwrap();
    assert!(!off.subgroups());
    for t in DType::ALL.into_iter().filter(|t| supported(b, *t)) {
        for k in [sum_kernel(t), reduce_kernel(t, &ReduceOp::ALL)] {
            let src = b.compile(&k).unwrap().source().to_string();
            assert_eq!(
                src.contains("subgroupShuffleXor"),
                b.subgroups(),
                "{t}: subgroups {} but the shader says otherwise:\n{src}",
                b.subgroups()
            );
            let src = off.compile(&k).unwrap().source().to_string();
            assert!(!src.contains("subgroup"), "{t}: subgroups off:\n{src}");
        }
    }
    // Element-wise kernels never use them.
    let src = b
        .compile(&unary_kernel(UnaryOp::Exp, DType::F32))
        .unwrap()
        .source()
        .to_string();
    assert!(!src.contains("subgroup"));
    // The shaders fall back to the shared-memory tree, per workgroup, where subgroups are not
    // laid out as consecutive full blocks of `local_invocation_index`: check that on this
    // adapter they are, so that the subgroup levels really run.
    if let Some(sizes) = b.probe_subgroup_layout(64).unwrap() {
        let sz = sizes[0];
        assert!(
            sz.is_power_of_two() && (4..=128).contains(&sz),
            "subgroup size {sz}"
        );
        assert!(
            sizes.iter().all(|&s| s == sz),
            "subgroup layout not canonical everywhere: {:?}",
            &sizes[..sizes.len().min(64)]
        );
        println!("subgroup size {sz}, canonical layout in every workgroup");
    } else {
        assert!(!info.subgroups);
    }
}

/// `tie_values` with NaNs of both signs at the first, middle and last thirds (where the size
/// allows) and both zeros around them.
fn nan_values(t: DType, n: usize, seed: u64) -> Vec<V> {
    let mut v = tie_values(t, n, seed);
    if t.is_float() && n > 2 {
        v[n / 2] = V::F(-f64::NAN);
        v[n - 1] = V::F(f64::NAN);
        v[n / 3] = V::F(-0.0);
        v[(n / 3 + 1).min(n - 1)] = V::F(0.0);
        if seed.is_multiple_of(2) {
            v[1] = V::F(f64::NAN);
        }
    }
    v
}

/// Float min/max: bit for bit, NaN included (the first NaN wins, sign and all).
fn check_nan_bits(got: &DynArray, want: &DynArray, what: &str) {
    for (i, (g, w)) in values(got).into_iter().zip(values(want)).enumerate() {
        if let (V::F(g), V::F(w)) = (g, w) {
            assert_eq!(
                g.to_bits(),
                w.to_bits(),
                "{what}: element {i}: GPU {g:?}, interpreter {w:?} (bits)"
            );
        }
    }
}

#[test]
fn reductions_with_and_without_subgroups_match_the_interpreter() {
    let paths = tree_paths();
    if paths.is_empty() {
        return;
    }
    let sizes = [1usize, 7, 8, 9, 255, 256, 257, 100_003];
    for (b, path) in paths {
        for t in DType::ALL.into_iter().filter(|t| supported(b, *t)) {
            let k = reduce_kernel(t, &ReduceOp::ALL);
            let gk = b.compile(&k).unwrap();
            assert_eq!(gk.source().contains("subgroup"), b.subgroups());
            for &n in &sizes {
                // Whole array; rows (reduced axis inner: adjacent lanes share an output);
                // columns (kept axis inner: lanes of a subgroup hold several outputs); both.
                let mut cases: Vec<(Vec<usize>, Vec<usize>)> = vec![
                    (vec![n], vec![0]),
                    (vec![3, n], vec![1]),
                    (vec![n, 3], vec![0]),
                    (vec![n, 3], vec![0, 1]),
                ];
                if n < 1000 {
                    cases.push((vec![n, 3], vec![1]));
                    cases.push((vec![2, n, 5], vec![1]));
                    cases.push((vec![n, 40], vec![0]));
                    cases.push((vec![40, n], vec![1]));
                }
                for (c, (shape, axes)) in cases.iter().enumerate() {
                    let len: usize = shape.iter().product();
                    let seed = (n * 31 + c) as u64;
                    let x = array(t, &nan_values(t, len, seed), shape);
                    let what = format!("{path}: {t} {shape:?} axes {axes:?}");
                    check_against_interp(
                        b,
                        &gk,
                        std::slice::from_ref(&x),
                        shape,
                        axes,
                        false,
                        &what,
                    );
                    if t.is_float() {
                        let views = [x.view()];
                        let want =
                            fusebox::unstable::interp::run_many(&k, &views, shape, axes).unwrap();
                        let got = b.run_many(&gk, &views, shape, axes).unwrap();
                        for (o, out) in k.outputs.iter().enumerate() {
                            if let Output::Reduce {
                                op: ReduceOp::Min | ReduceOp::Max,
                                ..
                            } = out
                            {
                                check_nan_bits(&got[o], &want[o], &format!("{what}, output {o}"));
                            }
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn session_reductions_mean_var_std_keepdims_with_and_without_subgroups() {
    use fusebox::Reduction;
    use fusebox::{Device, Expr, Options, Session};
    if backend().is_none() {
        return;
    }
    let reference = Session::with_options(Options::default().with_device(Device::Reference));
    let mut reductions: Vec<Reduction> = ReduceOp::ALL.into_iter().map(Reduction::Op).collect();
    reductions.extend([
        Reduction::Mean,
        Reduction::Var { ddof: 0 },
        Reduction::Var { ddof: 1 },
        Reduction::Std { ddof: 0 },
        Reduction::Std { ddof: 1 },
    ]);
    for on in [true, false] {
        let gpu = Session::with_options(Options::default().with_device(Device::Gpu(0)));
        gpu.set_gpu_subgroups(0, on).unwrap();
        for t in DType::ALL
            .into_iter()
            .filter(|t| supported(backend().unwrap(), *t))
        {
            for (s, shape) in [vec![257usize], vec![9, 255], vec![100_003, 2]]
                .into_iter()
                .enumerate()
            {
                let len: usize = shape.iter().product();
                let x = Expr::data(
                    array(t, &nan_values(t, len, 7 + s as u64), &shape),
                    Some("x"),
                );
                let axes: [Option<&[isize]>; 4] = [None, Some(&[0]), Some(&[-1]), Some(&[0, 1])];
                for ax in axes {
                    if ax.is_some_and(|a| a.len() > shape.len()) {
                        continue;
                    }
                    for keepdims in [false, true] {
                        for &r in &reductions {
                            let e = x.reduce(r, ax, keepdims);
                            let what = format!("subgroups {on}: {t} {shape:?} {e}");
                            let (w, g) = (reference.compute(&e), gpu.compute(&e));
                            let (w, g) = match (w, g) {
                                (Ok(w), Ok(g)) => (w, g),
                                (Err(_), Err(_)) => continue,
                                (w, g) => panic!("{what}: reference {w:?}, GPU {g:?}"),
                            };
                            let op = match r {
                                Reduction::Op(op) => op,
                                // Built from sums: the sums' tolerance.
                                _ => ReduceOp::Sum,
                            };
                            check_reduced(&g, &w, op, &what);
                        }
                    }
                }
            }
        }
        // They ran on the GPU (a pinned device does not fall back).
        assert!(gpu.stats().gpu_time > std::time::Duration::ZERO);
    }
}

/// The seed's Gaussian, `exp(-(x - mu)^2 / (2 sigma^2)) / (sigma sqrt(2 pi))`, as one kernel.
fn gauss_kernel(t: DType) -> Kernel {
    let mut b = KernelBuilder::new();
    let x = load(&mut b, t);
    let c = |b: &mut KernelBuilder, v: f64| {
        let k = if t == DType::F32 {
            Const::F32(v as f32)
        } else {
            Const::F64(v)
        };
        b.push(Inst::Const(k), t)
    };
    let bin = |b: &mut KernelBuilder, op, lhs, rhs| b.push(Inst::Binary { op, lhs, rhs }, t);
    let mu = c(&mut b, 0.5);
    let d = bin(&mut b, BinaryOp::Sub, x, mu);
    let d2 = bin(&mut b, BinaryOp::Mul, d, d);
    let n = b.push(
        Inst::Unary {
            op: UnaryOp::Neg,
            arg: d2,
        },
        t,
    );
    let s2 = c(&mut b, 2.0 * 1.5 * 1.5);
    let q = bin(&mut b, BinaryOp::Div, n, s2);
    let e = b.push(
        Inst::Unary {
            op: UnaryOp::Exp,
            arg: q,
        },
        t,
    );
    let a = c(&mut b, 1.0 / (1.5 * (2.0 * std::f64::consts::PI).sqrt()));
    let r = bin(&mut b, BinaryOp::Mul, a, e);
    b.finish(Output::Store { value: r })
}

/// Pipeline build time (WGSL generation, naga, the driver's compilation) of a few kernels on a
/// fresh device, and the size of their shaders: `cargo test --test gpu pipeline_compile_times
/// -- --ignored --nocapture`.
#[test]
#[ignore = "timing; prints the figures of the report"]
fn pipeline_compile_times() {
    let Some(b0) = backend() else { return };
    let mut cases: Vec<(String, Kernel)> = vec![];
    for t in [DType::F64, DType::F32] {
        cases.push((format!("gauss {t}"), gauss_kernel(t)));
        for op in [UnaryOp::Exp, UnaryOp::Sin, UnaryOp::Tanh, UnaryOp::Arcsinh] {
            cases.push((format!("{op} {t}"), unary_kernel(op, t)));
        }
        cases.push((format!("pow {t}"), binary_kernel(BinaryOp::Pow, t)));
    }
    for (name, k) in cases {
        // A fresh device each time: nothing cached by the driver either.
        let b = GpuBackend::new(b0.info().index).unwrap();
        let start = std::time::Instant::now();
        let gk = b.compile(&k).unwrap();
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{name:>12}: {:7.1} ms, {:6} bytes of WGSL, {} lines",
            secs * 1e3,
            gk.source().len(),
            gk.source().lines().count()
        );
    }
}
