//! The runtime paths: sums, strided and broadcast inputs, chunking past one binding, the
//! pipeline cache, refused dtypes, device-resident arrays.
use super::*;

pub(super) fn sum_kernel(t: DType) -> Kernel {
    let mut kb = KernelBuilder::new();
    let x = load(&mut kb, t);
    let acc = ReduceOp::Sum.signature(t).unwrap().0;
    let v = if acc == t {
        x
    } else {
        kb.push(Inst::Cast { arg: x }, acc)
    };
    kb.finish(Output::Reduce {
        op: ReduceOp::Sum,
        value: v,
    })
}

#[test]
fn sum_matches_host() {
    let Some(b) = backend() else { return };
    for n in [0usize, 1, 255, 256, 257, 70_000, 1_000_003] {
        // Integers: exact.
        if b.info().i64 {
            let xs: Vec<V> = (0..n)
                .map(|i| V::I((i as i64 * 7919) % 2001 - 1000))
                .collect();
            let want: i64 = xs
                .iter()
                .map(|v| if let V::I(x) = v { *x } else { 0 })
                .sum();
            let got = run(
                b,
                &sum_kernel(DType::I32),
                &[array(DType::I32, &xs, &[n])],
                &[n],
            );
            assert_eq!(got.shape(), &[] as &[usize]);
            assert_eq!(
                got.into_i64().unwrap().into_iter().next(),
                Some(want),
                "sum of {n} i32"
            );
            let bs: Vec<V> = (0..n).map(|i| V::B(i % 3 == 0)).collect();
            let got = run(
                b,
                &sum_kernel(DType::Bool),
                &[array(DType::Bool, &bs, &[n])],
                &[n],
            );
            assert_eq!(
                got.into_i64().unwrap().into_iter().next(),
                Some(n.div_ceil(3) as i64)
            );
        }
        // Floats: against an f64 (or exact-ish) host sum, to the pairwise-sum tolerance.
        for t in [DType::F32, DType::F64]
            .into_iter()
            .filter(|t| supported(b, *t))
        {
            let xs: Vec<V> = (0..n)
                .map(|i| V::F(round_to(t, ((i % 1000) as f64 - 499.5) * 0.37)))
                .collect();
            let want: f64 = xs
                .iter()
                .map(|v| if let V::F(x) = v { *x } else { 0.0 })
                .sum();
            let got = run(b, &sum_kernel(t), &[array(t, &xs, &[n])], &[n])
                .scalar_f64()
                .unwrap();
            let scale: f64 = xs
                .iter()
                .map(|v| if let V::F(x) = v { x.abs() } else { 0.0 })
                .sum::<f64>()
                .max(1.0);
            let eps = if t == DType::F32 { 1e-6 } else { 1e-14 };
            assert!(
                (got - want).abs() <= eps * scale,
                "sum of {n} {t}: GPU {got}, host {want}"
            );
        }
    }
}

#[test]
fn strided_broadcast_zero_d_and_empty_inputs() {
    let Some(b) = backend() else { return };
    let t = DType::F32;
    // x * y + x with x strided (every other column, reversed rows) and y broadcast (a row).
    let mut kb = KernelBuilder::new();
    let x = load(&mut kb, t);
    let y = load(&mut kb, t);
    let m = kb.push(
        Inst::Binary {
            op: BinaryOp::Mul,
            lhs: x,
            rhs: y,
        },
        t,
    );
    let a = kb.push(
        Inst::Binary {
            op: BinaryOp::Add,
            lhs: m,
            rhs: x,
        },
        t,
    );
    let k = kb.finish(Output::Store { value: a });
    let gk = b.compile(&k).unwrap();
    let base = ArrayD::<f32>::from_shape_fn(IxDyn(&[5, 8]), |i| (i[0] * 10 + i[1]) as f32);
    let xs = base.slice(ndarray::s![..;-1, ..;2]).into_dyn();
    let row = ArrayD::<f32>::from_shape_fn(IxDyn(&[4]), |i| i[0] as f32 + 0.5);
    let col = ArrayD::<f32>::from_shape_fn(IxDyn(&[5, 1]), |i| i[0] as f32 - 2.0);
    let scalar = ArrayD::<f32>::from_elem(IxDyn(&[]), 3.0);
    for y in [row.view(), col.view(), scalar.view()] {
        let got = b
            .run(
                &gk,
                &[ArgView::from(xs.view()), ArgView::from(y.view())],
                &[5, 4],
            )
            .unwrap()
            .into_f32()
            .unwrap();
        let yb = y.broadcast(IxDyn(&[5, 4])).unwrap();
        let want = ndarray::Zip::from(&xs)
            .and(&yb)
            .map_collect(|&a, &c| a * c + a);
        assert_eq!(got, want, "y of shape {:?}", y.shape());
    }
    // A transposed (column-major) input.
    let tr = base.t();
    let gk1 = b.compile(&unary_kernel(UnaryOp::Neg, t)).unwrap();
    let got = b
        .run(&gk1, &[ArgView::from(tr.view())], &[8, 5])
        .unwrap()
        .into_f32()
        .unwrap();
    assert_eq!(got, tr.mapv(|v| -v));
    // 0-d in, 0-d out.
    let got = b
        .run(&gk1, &[ArgView::from(scalar.view())], &[])
        .unwrap()
        .into_f32()
        .unwrap();
    assert_eq!(got.shape(), &[] as &[usize]);
    assert_eq!(got.into_iter().next(), Some(-3.0));
    // Empty.
    let empty = ArrayD::<f32>::zeros(IxDyn(&[0, 3]));
    let got = b
        .run(&gk1, &[ArgView::from(empty.view())], &[0, 3])
        .unwrap();
    assert_eq!(got.shape(), &[0, 3]);
    let s = b.compile(&sum_kernel(t)).unwrap();
    assert_eq!(
        b.run(&s, &[ArgView::from(empty.view())], &[0, 3])
            .unwrap()
            .scalar_f64(),
        Some(0.0)
    );
    // Shape errors are typed, not panics.
    assert!(b.run(&gk1, &[ArgView::from(row.view())], &[3]).is_err());
}

#[test]
fn chunked_runs_equal_one_pass() {
    // A backend of its own: the small binding limit must not leak into concurrent tests.
    if backend().is_none() {
        return;
    }
    let b = &GpuBackend::new(0).unwrap();
    // Force chunking with a 4 KiB binding limit (1024 f32 per chunk): inputs above it stream,
    // a broadcast input is gathered per chunk; results must equal the one-pass run exactly.
    let mut kb = KernelBuilder::new();
    let x = load(&mut kb, DType::F32);
    let y = load(&mut kb, DType::F32);
    let e = kb.push(
        Inst::Unary {
            op: UnaryOp::Exp,
            arg: x,
        },
        DType::F32,
    );
    let v = kb.push(
        Inst::Binary {
            op: BinaryOp::Sub,
            lhs: e,
            rhs: y,
        },
        DType::F32,
    );
    let store = kb.finish(Output::Store { value: v });
    let sum = Kernel {
        outputs: vec![Output::Reduce {
            op: ReduceOp::Sum,
            value: v,
        }],
        ..store.clone()
    };
    let xs = ArrayD::<f32>::from_shape_fn(IxDyn(&[37, 301]), |i| {
        ((i[0] * 301 + i[1]) % 97) as f32 * 0.01
    });
    let ys_big = ArrayD::<f32>::from_shape_fn(IxDyn(&[37, 1]), |i| i[0] as f32);
    let ys_small = ArrayD::<f32>::from_shape_fn(IxDyn(&[301]), |i| i[0] as f32 * 0.5);
    let ys_wide = ArrayD::<f32>::from_shape_fn(IxDyn(&[1, 301]), |i| i[1] as f32 * 0.25);
    let gs = b.compile(&store).unwrap();
    let gsum = b.compile(&sum).unwrap();
    for y in [ys_big.view(), ys_small.view(), ys_wide.view()] {
        let args = [ArgView::from(xs.view()), ArgView::from(y.view())];
        b.set_binding_limit(None);
        let one = b.run(&gs, &args, &[37, 301]).unwrap();
        let one_sum = b.run(&gsum, &args, &[37, 301]).unwrap();
        let d0 = b.counters().dispatches;
        b.set_binding_limit(Some(4096));
        let chunked = b.run(&gs, &args, &[37, 301]).unwrap();
        assert!(
            b.counters().dispatches - d0 >= 10,
            "the run was not chunked"
        );
        let chunked_sum = b.run(&gsum, &args, &[37, 301]).unwrap();
        b.set_binding_limit(None);
        assert_eq!(one, chunked, "y {:?}", y.shape());
        let (s1, s2) = (
            one_sum.scalar_f64().unwrap(),
            chunked_sum.scalar_f64().unwrap(),
        );
        assert!(
            (s1 - s2).abs() <= 1e-5 * s1.abs().max(1.0),
            "sum {s1} vs chunked {s2}"
        );
    }
}

#[test]
fn larger_than_one_binding_f64() {
    let Some(b) = backend() else { return };
    if !b.info().f64 {
        println!("skipping: adapter has no f64");
        return;
    }
    // 20M f64 = 160 MB > the 128 MiB binding limit of lavapipe: (5x + 4)x + 1, exact.
    let n = 20_000_000usize;
    let xs = ArrayD::<f64>::from_shape_fn(IxDyn(&[n]), |i| (i[0] % 100_003) as f64 * 1e-3 - 50.0);
    let mut kb = KernelBuilder::new();
    let x = load(&mut kb, DType::F64);
    let c5 = kb.push(Inst::Const(Const::F64(5.0)), DType::F64);
    let c4 = kb.push(Inst::Const(Const::F64(4.0)), DType::F64);
    let c1 = kb.push(Inst::Const(Const::F64(1.0)), DType::F64);
    let m = kb.push(
        Inst::Binary {
            op: BinaryOp::Mul,
            lhs: c5,
            rhs: x,
        },
        DType::F64,
    );
    let a = kb.push(
        Inst::Binary {
            op: BinaryOp::Add,
            lhs: m,
            rhs: c4,
        },
        DType::F64,
    );
    let m2 = kb.push(
        Inst::Binary {
            op: BinaryOp::Mul,
            lhs: a,
            rhs: x,
        },
        DType::F64,
    );
    let p = kb.push(
        Inst::Binary {
            op: BinaryOp::Add,
            lhs: m2,
            rhs: c1,
        },
        DType::F64,
    );
    let k = kb.finish(Output::Store { value: p });
    let gk = b.compile(&k).unwrap();
    let d0 = b.counters().dispatches;
    let got = b
        .run(&gk, &[ArgView::from(xs.view())], &[n])
        .unwrap()
        .into_f64()
        .unwrap();
    assert!(
        b.counters().dispatches - d0 >= 2,
        "160 MB must be processed in chunks"
    );
    let want = xs.mapv(|x| (5.0 * x + 4.0) * x + 1.0);
    assert!(got == want, "GPU result differs from the host");
}

#[test]
fn pipeline_cache_and_counters() {
    let Some(b) = backend() else { return };
    let k = unary_kernel(UnaryOp::Floor, DType::F32);
    let c0 = b.counters();
    let k1 = b.compile(&k).unwrap();
    let k2 = b.compile(&k).unwrap();
    let c1 = b.counters();
    assert!(std::sync::Arc::ptr_eq(&k1, &k2));
    assert!(c1.cache_hits > c0.cache_hits);
    let xs = ArrayD::<f32>::from_elem(IxDyn(&[1000]), 2.5);
    let got = b.run(&k1, &[ArgView::from(xs.view())], &[1000]).unwrap();
    let c2 = b.counters();
    assert!(c2.bytes_uploaded - c1.bytes_uploaded >= 4000);
    assert!(c2.bytes_downloaded - c1.bytes_downloaded >= 4000);
    assert_eq!(got.into_f32().unwrap(), xs.mapv(f32::floor));
}

#[test]
fn unsupported_dtypes_are_refused_cleanly() {
    let Some(b) = backend() else { return };
    let k = unary_kernel(UnaryOp::Exp, DType::F64);
    match b.compile(&k) {
        Ok(_) => assert!(b.info().f64),
        Err(e) => {
            assert!(!b.info().f64);
            assert!(matches!(e, fusebox::Error::UnsupportedDtype { .. }), "{e}");
        }
    }
}

#[test]
fn resident_arrays_are_not_re_uploaded() {
    // A backend of its own: its counters must not see the concurrent tests' transfers.
    if backend().is_none() {
        return;
    }
    let b = &GpuBackend::new(0).unwrap();
    // y = x * 2 + 1 on the device, then sum(y) and y - x, without touching the host in between.
    let t = DType::F32;
    let mut kb = KernelBuilder::new();
    let x = load(&mut kb, t);
    let c2 = kb.push(Inst::Const(Const::F32(2.0)), t);
    let c1 = kb.push(Inst::Const(Const::F32(1.0)), t);
    let m = kb.push(
        Inst::Binary {
            op: BinaryOp::Mul,
            lhs: x,
            rhs: c2,
        },
        t,
    );
    let y = kb.push(
        Inst::Binary {
            op: BinaryOp::Add,
            lhs: m,
            rhs: c1,
        },
        t,
    );
    let affine = b.compile(&kb.finish(Output::Store { value: y })).unwrap();
    let sub = b.compile(&binary_kernel(BinaryOp::Sub, t)).unwrap();
    let sum = b.compile(&sum_kernel(t)).unwrap();
    let xs = ArrayD::<f32>::from_shape_fn(IxDyn(&[64, 50]), |i| (i[0] * 50 + i[1]) as f32 * 0.25);
    let row = ArrayD::<f32>::from_shape_fn(IxDyn(&[50]), |i| i[0] as f32);

    let c0 = b.counters();
    let dx = b.upload(&ArgView::from(xs.view())).unwrap();
    let drow = b.upload(&ArgView::from(row.view())).unwrap();
    let c1 = b.counters();
    assert_eq!(c1.bytes_uploaded - c0.bytes_uploaded, (64 * 50 + 50) * 4);
    let dy = b.run_resident(&affine, &[&dx], &[64, 50]).unwrap();
    let dd = b.run_resident(&sub, &[&dy, &drow], &[64, 50]).unwrap();
    let ds = b.run_resident(&sum, &[&dy], &[64, 50]).unwrap();
    let c2 = b.counters();
    assert_eq!(
        c2.bytes_uploaded, c1.bytes_uploaded,
        "data already on the device was re-uploaded"
    );
    assert_eq!(
        c2.bytes_downloaded, c1.bytes_downloaded,
        "a resident run read data back"
    );
    assert_eq!((dy.shape(), ds.shape()), (&[64usize, 50][..], &[][..]));

    let want_y = xs.mapv(|v| v * 2.0 + 1.0);
    assert_eq!(b.download(&dy).unwrap().into_f32().unwrap(), want_y);
    let want_d = &want_y - &row;
    assert_eq!(b.download(&dd).unwrap().into_f32().unwrap(), want_d);
    let s = b.download(&ds).unwrap().scalar_f64().unwrap();
    let host: f64 = want_y.iter().map(|&v| v as f64).sum();
    assert!(
        (s - host).abs() <= 1e-6 * host.abs(),
        "resident sum {s} vs host {host}"
    );
    assert!(b.counters().bytes_downloaded > c2.bytes_downloaded);
    // bool round trip through the u32 device layout.
    let flags = ArrayD::from_shape_vec(IxDyn(&[3]), vec![true, false, true]).unwrap();
    let df = b.upload(&ArgView::from(flags.view())).unwrap();
    assert_eq!(b.download(&df).unwrap().into_bool().unwrap(), flags);
}
