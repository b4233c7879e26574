//! The error taxonomy: every kind of bad input a user can give returns its typed [`Error`]
//! (never a panic), with a message that names the problem. One test per kind.
mod common;
use fusebox::{parse, DType, Device, Error, Expr, Options, Session};
use fusebox::{ReduceOp, Reduction};
use ndarray::{arr0, arr1, Array1, Array2};

fn cpu() -> Session {
    Session::with_options(Options::default().with_device(Device::Cpu))
}

/// Every engine a user can pin gives the same error for `e`.
fn every_engine_errs(e: &Expr) -> Vec<Error> {
    engines_err(e, true)
}

/// The engines (the reference evaluator too when `reference`) give an error for `e`, the same
/// with and without the optimizer.
fn engines_err(e: &Expr, reference: bool) -> Vec<Error> {
    let mut devices = vec![Device::Cpu, Device::Auto];
    if reference {
        devices.push(Device::Reference);
    }
    if common::gpu_available() {
        devices.push(Device::Gpu(0));
    }
    devices
        .into_iter()
        .map(|d| {
            let s = Session::with_options(Options::default().with_device(d));
            let o = Session::with_options(Options::default().with_device(d).with_optimize(false));
            let a = s.compute(e).expect_err("compute must fail");
            let b = o.compute(e).expect_err("unoptimized compute must fail");
            assert_eq!(a, b, "{d}: optimized and unoptimized errors differ");
            a
        })
        .collect()
}

#[test]
fn unknown_name_in_a_string_expression() {
    let x = Expr::symbol("x", DType::F64, &[3]);
    let err = parse::parse("x + y", &|n| (n == "x").then(|| x.clone())).unwrap_err();
    assert_eq!(
        err,
        Error::UnknownName {
            name: "y".into(),
            known: vec![]
        }
    );
    assert_eq!(err.to_string(), "unknown name `y`");
}

#[test]
fn unknown_name_in_bindings() {
    let s = cpu();
    let x = s.symbol("x", DType::F64, &[2]);
    let a = arr1(&[1.0, 2.0]);
    let err = s
        .compute_with(&(&x + 1.0), &[("z", (&a).into())])
        .unwrap_err();
    assert_eq!(
        err,
        Error::UnknownName {
            name: "x".into(),
            known: vec!["z".into()]
        }
    );
    assert_eq!(err.to_string(), "unknown name `x`, known names: z");
}

#[test]
fn shape_mismatch_names_both_shapes() {
    let a = Expr::data(Array2::<f64>::zeros((2, 3)), Some("a"));
    let b = Expr::data(Array1::<f64>::zeros(4), Some("b"));
    let e = &a + &b;
    for err in every_engine_errs(&e) {
        assert_eq!(
            err,
            Error::ShapeMismatch {
                lhs: vec![2, 3],
                rhs: vec![4]
            }
        );
        let msg = err.to_string();
        assert!(msg.contains("[2, 3]") && msg.contains("[4]"), "{msg}");
    }
}

#[test]
fn unsupported_dtype_in_a_file() {
    let err =
        fusebox::npy::read_npy(std::path::Path::new("tests/data/c8_unsupported.npy")).unwrap_err();
    assert!(
        matches!(&err, Error::UnsupportedDtype { dtype, .. } if dtype == "<c8"),
        "{err}"
    );
}

/// A dtype the pinned GPU cannot hold is `UnsupportedDtype` naming the dtype; adapters with
/// f64 and i64 (lavapipe) accept everything, so this only asserts where the adapter lacks them.
/// (The capability check itself is tested on a described adapter without f64 in `src/gpu`.)
#[test]
fn unsupported_dtype_on_the_pinned_gpu() {
    if !common::gpu_available() {
        return;
    }
    let info = fusebox::unstable::gpu::GpuBackend::new(0)
        .unwrap()
        .info()
        .clone();
    let s = Session::with_options(Options::default().with_device(Device::Gpu(0)));
    let x = Expr::data(arr1(&[1.0f64, 2.0]), None);
    match s.compute(&(&x + 1.0)) {
        Ok(_) => assert!(info.f64, "f64 computed on an adapter without f64"),
        Err(err) => {
            assert!(!info.f64 || !info.i64, "{err}");
            assert!(
                matches!(&err, Error::UnsupportedDtype { dtype, .. } if dtype == "float64"),
                "{err}"
            );
        }
    }
}

#[test]
fn no_adapter() {
    let s = Session::with_options(Options::default().with_device(Device::Gpu(99)));
    let x = Expr::data(arr1(&[1.0, 2.0]), None);
    let err = s.compute(&(&x + 1.0)).unwrap_err();
    assert!(
        matches!(&err, Error::Device { message } if message.contains("99") || message.contains("no GPU adapter")),
        "{err}"
    );
    // Compiling and explaining say the same; nothing panics.
    assert!(matches!(s.compile(&(&x + 1.0)), Err(Error::Device { .. })));
    assert!(matches!(
        s.to_device(&(&arr1(&[1.0])).into()),
        Err(Error::Device { .. })
    ));
}

#[test]
fn device_names_that_do_not_parse_are_argument_errors() {
    let err = Device::parse("tpu").unwrap_err();
    assert!(
        matches!(&err, Error::Argument { message } if message.contains("tpu")),
        "{err}"
    );
    assert!(Device::parse("gpu:x").is_err());
    assert_eq!(Device::parse("gpu:3").unwrap(), Device::Gpu(3));
}

#[test]
fn expression_too_deep_from_a_string() {
    let src = format!("{}x{}", "(".repeat(100_000), ")".repeat(100_000));
    let x = Expr::symbol("x", DType::F64, &[1]);
    let err = parse::parse(&src, &|_| Some(x.clone())).unwrap_err();
    assert_eq!(
        err,
        Error::TooDeep {
            limit: parse::MAX_DEPTH
        }
    );
    assert!(err.to_string().contains("too deep"));
    // Unary chains and `**` chains too.
    let src = format!("{}x", "-".repeat(100_000));
    assert!(matches!(
        parse::parse(&src, &|_| Some(x.clone())),
        Err(Error::TooDeep { .. })
    ));
    let src = vec!["x"; 100_000].join("**");
    assert!(matches!(
        parse::parse(&src, &|_| Some(x.clone())),
        Err(Error::TooDeep { .. })
    ));
}

/// An expression built in Rust deeper than the planner accepts: `TooDeep` from every compiling
/// engine, not a stack overflow. (The reference evaluator walks with an explicit stack and has
/// no limit, so it may compute the result.)
#[test]
fn expression_too_deep_from_rust() {
    let mut e = Expr::data(arr1(&[1.0, 2.0]), Some("x"));
    for _ in 0..10_000 {
        e = &e * 1.5 + 0.25;
    }
    for err in engines_err(&e, false) {
        assert_eq!(
            err,
            Error::TooDeep {
                limit: fusebox::unstable::opt::lower::MAX_DEPTH
            }
        );
    }
    // Dropping a 20,000-deep expression must not overflow the stack either (done here).
}

/// Broadcasting views that are each valid into a result that needs more bytes than the address
/// space has: `TooLarge`, before anything is allocated.
#[test]
fn array_too_large_for_the_address_space() {
    let one = arr0(1.0f64);
    let col = one.broadcast(ndarray::IxDyn(&[1 << 40, 1])).unwrap();
    let row = one.broadcast(ndarray::IxDyn(&[1 << 40])).unwrap();
    for d in [Device::Cpu, Device::Auto] {
        let s = Session::with_options(Options::default().with_device(d));
        let (c, r) = (
            s.symbol("c", DType::F64, &[1 << 40, 1]),
            s.symbol("r", DType::F64, &[1 << 40]),
        );
        let err = s
            .compute_with(
                &(&c * &r),
                &[("c", col.clone().into()), ("r", row.clone().into())],
            )
            .unwrap_err();
        assert!(
            matches!(&err, Error::TooLarge { shape: Some(s), .. } if s == &[1 << 40, 1 << 40]),
            "{d}: {err}"
        );
    }
}

/// The same on the reference device, which copies every binding first: a broadcast view of
/// 2^40 elements would be an 8 TiB allocation; the copy reserves fallibly and returns
/// `TooLarge` (it used to abort the process).
#[test]
fn array_too_large_on_the_reference_device() {
    let one = arr0(1.0f64);
    let col = one.broadcast(ndarray::IxDyn(&[1 << 40, 1])).unwrap();
    let row = one.broadcast(ndarray::IxDyn(&[1 << 40])).unwrap();
    let s = Session::with_options(Options::default().with_device(Device::Reference));
    let (c, r) = (
        s.symbol("c", DType::F64, &[1 << 40, 1]),
        s.symbol("r", DType::F64, &[1 << 40]),
    );
    let err = s
        .compute_with(&(&c * &r), &[("c", col.into()), ("r", row.into())])
        .unwrap_err();
    assert!(matches!(err, Error::TooLarge { .. }), "{err}");
}

/// A 0-stride view of one element broadcast to 2^62 elements is valid to ndarray; `x + 1` on it
/// needs 2^65 bytes and must be `TooLarge` (the session's byte accounting used to overflow
/// first: a panic in debug builds, a wrapped count in release).
#[test]
fn array_too_large_from_a_huge_broadcast_input() {
    let one = arr0(1.0f64);
    let huge = one.broadcast(ndarray::IxDyn(&[1 << 31, 1 << 31])).unwrap();
    let s = cpu();
    let x = s.symbol("x", DType::F64, &[1 << 31, 1 << 31]);
    let err = s
        .compute_with(&(&x + 1.0), &[("x", huge.into())])
        .unwrap_err();
    assert!(matches!(err, Error::TooLarge { .. }), "{err}");
}

/// NaN (and out-of-range values) cast to an integer: NumPy on x86-64 gives the integer's
/// minimum (with a RuntimeWarning); fusebox gives the same value on every engine, no error
/// (`semantics.rs`, `f64_to_i64`/`f64_to_i32`).
#[test]
fn nan_in_an_integer_cast_gives_int_min() {
    let x = Expr::data(arr1(&[f64::NAN, f64::INFINITY, -1e300, 2.5, -2.5]), None);
    let mut devices = vec![Device::Cpu, Device::Reference];
    if common::gpu_available() {
        devices.push(Device::Gpu(0));
    }
    for d in devices {
        let s = Session::with_options(Options::default().with_device(d));
        let i32s = s
            .compute(&x.astype(DType::I32))
            .unwrap()
            .into_i32()
            .unwrap();
        assert_eq!(
            i32s.iter().copied().collect::<Vec<_>>(),
            [i32::MIN, i32::MIN, i32::MIN, 2, -2],
            "{d}"
        );
        let i64s = s
            .compute(&x.astype(DType::I64))
            .unwrap()
            .into_i64()
            .unwrap();
        assert_eq!(
            i64s.iter().copied().collect::<Vec<_>>(),
            [i64::MIN, i64::MIN, i64::MIN, 2, -2],
            "{d}"
        );
    }
}

/// Under `InvalidCast::Raise` (NumPy's `np.errstate(invalid='raise')` for casts) a cast of
/// NaN, an infinity or a value whose truncation leaves the integer's range is
/// `Error::InvalidCast` naming the cast, on every engine and path: compute (optimized and
/// not), compiled functions, device-resident compute. Values at the edges of the range cast
/// as before; integer -> integer casts wrap without error, as in NumPy.
#[test]
fn nan_in_an_integer_cast_raises_under_invalid_cast_raise() {
    let mut devices = vec![Device::Cpu, Device::Auto, Device::Reference];
    if common::gpu_available() {
        devices.push(Device::Gpu(0));
    }
    let raising = |device, optimize| {
        Session::with_options(
            Options::default()
                .with_device(device)
                .with_optimize(optimize)
                .with_invalid_cast(fusebox::InvalidCast::Raise),
        )
    };
    // In range after truncation toward zero: no error, NumPy's values.
    let edges = Expr::data(arr1(&[-2147483648.9f64, 2147483647.9, -0.0, 7.5]), None);
    let edges32 = Expr::data(arr1(&[-2147483648.0f32, 2147483520.0, 1.5]), None);
    let big = Expr::data(arr1(&[-9.2e18f64, 9.2e18]), None);
    // Just outside, one value each.
    let bad: Vec<(Expr, DType, &str)> = vec![
        (
            Expr::data(arr1(&[1.0, f64::NAN]), None),
            DType::I32,
            "float64 to int32",
        ),
        (
            Expr::data(arr1(&[-2147483649.0f64]), None),
            DType::I32,
            "float64 to int32",
        ),
        (
            Expr::data(arr1(&[2147483648.0f64]), None),
            DType::I32,
            "float64 to int32",
        ),
        (
            Expr::data(arr1(&[2147483648.0f32]), None),
            DType::I32,
            "float32 to int32",
        ),
        (
            Expr::data(arr1(&[f32::NEG_INFINITY]), None),
            DType::I64,
            "float32 to int64",
        ),
        (
            Expr::data(arr1(&[9223372036854775808.0f64]), None),
            DType::I64,
            "float64 to int64",
        ),
    ];
    for d in devices {
        for optimize in [true, false] {
            let s = raising(d, optimize);
            let got = s
                .compute(&edges.astype(DType::I32))
                .unwrap()
                .into_i32()
                .unwrap();
            assert_eq!(got.as_slice().unwrap(), [i32::MIN, i32::MAX, 0, 7], "{d}");
            let got = s
                .compute(&edges32.astype(DType::I32))
                .unwrap()
                .into_i32()
                .unwrap();
            assert_eq!(got.as_slice().unwrap(), [i32::MIN, 2147483520, 1], "{d}");
            let got = s
                .compute(&big.astype(DType::I64))
                .unwrap()
                .into_i64()
                .unwrap();
            assert_eq!(
                got.as_slice().unwrap(),
                [-9_200_000_000_000_000_000, 9_200_000_000_000_000_000]
            );
            // Integer casts wrap silently.
            let wrapped = s
                .compute(&Expr::data(arr1(&[1i64 << 40]), None).astype(DType::I32))
                .unwrap();
            assert_eq!(wrapped.into_i32().unwrap()[[0]], 0, "{d}");
            for (x, to, what) in &bad {
                match s.compute(&(x * 1.0).astype(*to)) {
                    Err(e @ Error::InvalidCast { .. }) => {
                        assert!(
                            matches!(&e, Error::InvalidCast { to: t, .. } if t == to),
                            "{e}"
                        );
                        assert!(e.to_string().contains(what), "{d}: {e}");
                    }
                    other => panic!("{d} {x}: {other:?}"),
                }
            }
            // A lane `where` discards is checked too (NumPy computes both branches).
            let x = Expr::data(arr1(&[f64::NAN, 2.0]), None);
            let e = fusebox::where_(x.ne_(&x), 0i64, x.astype(DType::I64));
            assert!(
                matches!(s.compute(&e), Err(Error::InvalidCast { .. })),
                "{d}"
            );
        }
    }
    // Compiled functions check every call, with the call's data.
    let s = raising(Device::Cpu, true);
    let t = s.symbol("t", DType::F64, &[2]);
    let f = s.compile(&(&t * 2.0).astype(DType::I32)).unwrap();
    let ok = f.call(&[(&arr1(&[1.0, 2.0])).into()]).unwrap();
    assert_eq!(ok.into_i32().unwrap().as_slice().unwrap(), [2, 4]);
    assert!(matches!(
        f.call(&[(&arr1(&[1.0, 2e9])).into()]),
        Err(Error::InvalidCast { .. })
    ));
    // Device-resident compute downloads the check, not the data.
    if common::gpu_available() {
        let s = raising(Device::Gpu(0), true);
        let xd = s.to_device(&(&arr1(&[1.0, f64::INFINITY])).into()).unwrap();
        let x = s.symbol("x", DType::F64, &[2]);
        let r = s.compute_on_device(&x.astype(DType::I64), &[("x", &xd)]);
        assert!(matches!(r, Err(Error::InvalidCast { .. })), "{:?}", r.err());
    }
    // The default keeps NumPy's value.
    let nan = Expr::data(arr1(&[f64::NAN]), None).astype(DType::I32);
    assert_eq!(
        cpu().compute(&nan).unwrap().into_i32().unwrap()[[0]],
        i32::MIN
    );
}

#[test]
fn parse_error_with_column() {
    let x = Expr::symbol("x", DType::F64, &[3]);
    let lookup = |n: &str| (n == "x").then(|| x.clone());
    let err = parse::parse("x + * 2", &lookup).unwrap_err();
    assert!(
        matches!(&err, Error::Parse { column: 5, .. }),
        "{err:?} (the `*` is at column 5)"
    );
    assert!(err.to_string().starts_with("parse error at column 5"));
    let err = parse::parse("(x + 1", &lookup).unwrap_err();
    assert!(matches!(err, Error::Parse { .. }), "{err}");
    let err = parse::parse("x $ 1", &lookup).unwrap_err();
    assert!(matches!(err, Error::Parse { column: 3, .. }), "{err:?}");
}

#[test]
fn axis_errors_name_the_axis() {
    let x = Expr::data(Array2::<f64>::zeros((2, 3)), Some("x"));
    let sum = Reduction::Op(ReduceOp::Sum);
    let e = x.reduce(sum, Some(&[2]), false);
    let err = e.meta().unwrap_err();
    assert!(
        matches!(&err, Error::AxisOutOfBounds { axis: 2, ndim: 2 }),
        "{err}"
    );
    // The reference evaluator answers "does not compute sum with axes yet" (a type error)
    // instead of the expression's axis error: see `random_diff.rs`,
    // `reference_reports_a_later_value_error_before_a_type_error` (same cause).
    for got in engines_err(&e, false) {
        assert_eq!(got, err);
    }
    let err = x.reduce(sum, Some(&[0, -2]), false).meta().unwrap_err();
    assert!(matches!(&err, Error::DuplicateAxis { axis: 0 }), "{err}");
}

#[test]
fn argument_errors_from_compiled_functions() {
    let s = cpu();
    let t = s.symbol("t", DType::F64, &[3]);
    let f = s.compile(&(&t * 2.0)).unwrap();
    let a = arr1(&[1.0, 2.0, 3.0]);
    // Too many arguments.
    let err = f.call(&[(&a).into(), (&a).into()]).unwrap_err();
    assert!(
        matches!(&err, Error::ArgumentCount { expected: 1, found: 2, params } if params == &["t"]),
        "{err}"
    );
    // Too few.
    assert!(matches!(
        f.call(&[]),
        Err(Error::ArgumentCount {
            expected: 1,
            found: 0,
            ..
        })
    ));
    // The wrong dtype.
    let i = arr1(&[1i32, 2, 3]);
    let err = f.call(&[(&i).into()]).unwrap_err();
    assert!(
        matches!(&err, Error::DtypeMismatch { name, expected: DType::F64, found: DType::I32 } if name == "t"),
        "{err}"
    );
}

#[test]
fn npy_errors_name_the_file_and_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.npy");
    let err = fusebox::npy::read_npy(&missing).unwrap_err();
    assert!(
        matches!(&err, Error::Npy { path: Some(p), .. } if p == &missing),
        "{err}"
    );
    let garbage = dir.path().join("garbage.npy");
    std::fs::write(&garbage, b"not numpy at all").unwrap();
    let err = fusebox::npy::read_npy(&garbage).unwrap_err();
    assert!(
        matches!(&err, Error::Npy { path: Some(p), message } if p == &garbage && message.contains("bad magic")),
        "{err}"
    );
}

#[test]
fn type_errors_name_the_operator_and_dtype() {
    let x = Expr::data(arr1(&[1.0, 2.0]), None);
    let err = (!&x).meta().unwrap_err();
    assert!(
        matches!(&err, Error::OperandType { op, dtype: DType::F64, .. } if op == "not"),
        "{err}"
    );
    for got in every_engine_errs(&!&x) {
        assert_eq!(got, err);
    }
}

#[test]
fn integer_literal_out_of_bounds() {
    let x = Expr::data(arr1(&[1i32, 2]), None);
    let e = &x + (1i64 << 40);
    let err = e.meta().unwrap_err();
    assert!(
        matches!(&err, Error::IntegerOverflow { value, dtype: DType::I32 } if *value == 1 << 40),
        "{err}"
    );
    for got in every_engine_errs(&e) {
        assert_eq!(got, err);
    }
}

#[test]
fn integer_to_a_negative_integer_power_is_a_value_error() {
    let x = Expr::data(arr1(&[2i64, 3]), None);
    let e = x.pow(-1i64);
    let errs = every_engine_errs(&e);
    for got in errs {
        assert!(
            matches!(&got, Error::NegativeIntegerPower { exponent: -1 }),
            "{got}"
        );
    }
}

/// Out of device memory, a lost device and a rejected shader, injected into a GPU backend
/// (`GpuBackend::inject_fault`): typed errors (`OutOfMemory`, `DeviceLost`, `Compile`) with
/// messages naming the problem; the backend works again once the fault is cleared.
#[test]
fn injected_gpu_faults_are_typed_errors() {
    use fusebox::unstable::gpu::{Fault, GpuBackend};
    use fusebox::unstable::kir::{Inst, KernelBuilder, Output};
    if !common::gpu_available() {
        return;
    }
    let be = GpuBackend::new(0).unwrap();
    let mut b = KernelBuilder::new();
    let i = b.input(DType::F32);
    let x = b.push(Inst::Load { input: i }, DType::F32);
    let k = b.finish(Output::Store { value: x });
    let data = ndarray::Array1::from(vec![1.0f32, 2.0, 3.0]);
    type Case = (Fault, fn(&Error) -> bool, &'static str);
    let cases: [Case; 3] = [
        (
            Fault::OutOfMemory,
            |e| matches!(e, Error::OutOfMemory { .. }),
            "out of device memory",
        ),
        (
            Fault::DeviceLost,
            |e| matches!(e, Error::DeviceLost { .. }),
            "device lost",
        ),
        (
            Fault::Compile,
            |e| matches!(e, Error::Compile { .. }),
            "compile error",
        ),
    ];
    for (fault, kind, text) in cases {
        be.inject_fault(Some(fault));
        // A rejected shader fails `compile`; a lost device or full memory fails the run.
        let err = match be.compile(&k) {
            Err(e) => e,
            Ok(compiled) => be
                .run_many(&compiled, &[(&data).into()], &[3], &[])
                .unwrap_err(),
        };
        assert!(kind(&err), "{fault:?}: {err:?}");
        assert!(err.to_string().starts_with(text), "{err}");
        be.inject_fault(None);
        let compiled = be.compile(&k).expect("works again once cleared");
        let out = be
            .run_many(&compiled, &[(&data).into()], &[3], &[])
            .unwrap();
        assert_eq!(
            out[0]
                .clone()
                .into_f32()
                .unwrap()
                .into_raw_vec_and_offset()
                .0,
            data.to_vec()
        );
    }
}

/// `InvalidCast::Raise` for the integer dtypes of issue 17: a float whose truncation leaves
/// int8..uint64's range (or NaN) is `Error::InvalidCast`; the edges of each range cast to
/// NumPy's values; the default mode gives NumPy's x86-64 values (semantics::float_to_int).
#[test]
fn float_to_small_and_unsigned_integer_casts_under_invalid_cast_raise() {
    let cases: [(DType, f64, f64, f64, f64); 6] = [
        // (to, lowest ok, highest ok, just below, just above)
        (DType::I8, -128.9, 127.9, -129.0, 128.0),
        (DType::I16, -32768.5, 32767.5, -32769.0, 32768.0),
        (DType::U8, -0.9, 255.9, -1.0, 256.0),
        (DType::U16, -0.5, 65535.5, -1.0, 65536.0),
        (DType::U32, -0.99, 4294967295.5, -1.0, 4294967296.0),
        (
            DType::U64,
            -0.5,
            18446744073709549568.0,
            -1.0,
            18446744073709551616.0,
        ),
    ];
    for device in [Device::Cpu, Device::Auto, Device::Reference] {
        for optimize in [true, false] {
            let s = Session::with_options(
                Options::default()
                    .with_device(device)
                    .with_optimize(optimize)
                    .with_invalid_cast(fusebox::InvalidCast::Raise),
            );
            for (to, lo, hi, below, above) in cases {
                let ok = Expr::data(arr1(&[lo, hi]), None).astype(to);
                let got = s.compute(&ok).unwrap();
                let want =
                    fusebox::unstable::reference::evaluate(&ok, &Default::default()).unwrap();
                assert_eq!(got, want, "{device} {to}");
                for bad in [below, above, f64::NAN] {
                    let e = Expr::data(arr1(&[0.0, bad]), None).astype(to);
                    assert!(
                        matches!(s.compute(&e), Err(Error::InvalidCast { to: t, .. }) if t == to),
                        "{device} {to} {bad}"
                    );
                }
            }
        }
    }
    // The default mode: NumPy's values (np.array([300.0, -1.0, nan]).astype(...) on x86-64).
    let s = Session::new();
    let x = Expr::data(arr1(&[300.0, -1.0, f64::NAN, 1e10]), None);
    let u8s: ndarray::Array1<u8> = s
        .compute(&x.astype(DType::U8))
        .unwrap()
        .into_array()
        .unwrap();
    assert_eq!(u8s.to_vec(), [44, 255, 0, 0]);
    let u32s: ndarray::Array1<u32> = s
        .compute(&x.astype(DType::U32))
        .unwrap()
        .into_array()
        .unwrap();
    assert_eq!(u32s.to_vec(), [300, 4294967295, 2147483648, 0]);
    let u64s: ndarray::Array1<u64> = s
        .compute(&x.astype(DType::U64))
        .unwrap()
        .into_array()
        .unwrap();
    assert_eq!(u64s.to_vec(), [300, u64::MAX, 1 << 63, 10_000_000_000]);
}
