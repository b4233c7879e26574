//! The error contract, field by field: each user-facing [`Error`] variant, triggered through
//! the public API, carries the fields a caller matches on (shapes, names, dtypes, axes,
//! positions, paths), and its message is rendered from them (NumPy's wording where NumPy
//! raises). `tests/errors.rs` checks that every engine reports the same error; this file checks
//! what the error holds.
mod common;
use fusebox::{parse, DType, Device, Error, Expr, InvalidCast, Options, Session};
use fusebox::{ReduceOp, Reduction};
use ndarray::{arr1, Array1, Array2};

fn session(device: Device) -> Session {
    Session::with_options(Options::default().with_device(device))
}

/// The engines every machine has (a GPU when there is one).
fn engines() -> Vec<Device> {
    let mut d = vec![Device::Cpu, Device::Auto, Device::Reference];
    if common::gpu_available() {
        d.push(Device::Gpu(0));
    }
    d
}

#[test]
fn shape_mismatch_holds_both_shapes() {
    let a = Expr::data(Array2::<f64>::zeros((2, 3)), Some("a"));
    let b = Expr::data(Array1::<f64>::zeros(4), Some("b"));
    let err = (&a + &b).meta().unwrap_err();
    let Error::ShapeMismatch { lhs, rhs } = &err else {
        panic!("{err:?}")
    };
    assert_eq!((lhs.as_slice(), rhs.as_slice()), (&[2, 3][..], &[4][..]));
    assert_eq!(
        err.to_string(),
        "shape mismatch: operands could not be broadcast together with shapes [2, 3] and [4]"
    );
}

/// `known` lists the names that were bound where the lookup failed: a `compute_with`'s
/// bindings in order, on the planned engines and the reference evaluator (sorted there),
/// a device session's bindings; a parser's lookup cannot list them.
#[test]
fn unknown_name_lists_the_known_names() {
    let a = arr1(&[1.0, 2.0]);
    for d in [Device::Cpu, Device::Auto, Device::Reference] {
        let s = session(d);
        let x = s.symbol("x", DType::F64, &[2]);
        let err = s
            .compute_with(&(&x + 1.0), &[("w", (&a).into()), ("b", (&a).into())])
            .unwrap_err();
        let Error::UnknownName { name, known } = &err else {
            panic!("{d}: {err:?}")
        };
        assert_eq!(name, "x", "{d}");
        let mut sorted = known.clone();
        sorted.sort();
        assert_eq!(sorted, ["b", "w"], "{d}");
        if d != Device::Reference {
            assert_eq!(known, &["w", "b"], "{d}: in binding order");
            assert_eq!(err.to_string(), "unknown name `x`, known names: w, b");
        }
    }
    // No bindings: nothing known, and the message says only the name.
    let s = session(Device::Cpu);
    let x = s.symbol("x", DType::F64, &[2]);
    let err = s.compute(&x).unwrap_err();
    assert_eq!(
        err,
        Error::UnknownName {
            name: "x".into(),
            known: vec![]
        }
    );
    assert_eq!(err.to_string(), "unknown name `x`");
    let err = parse::parse("q + 1", &|_| None).unwrap_err();
    assert!(
        matches!(&err, Error::UnknownName { name, known } if name == "q" && known.is_empty()),
        "{err:?}"
    );
}

#[test]
fn parse_error_holds_the_column() {
    let x = Expr::symbol("x", DType::F64, &[3]);
    let err = parse::parse("x + * 2", &|n| (n == "x").then(|| x.clone())).unwrap_err();
    let Error::Parse { column, message } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(*column, 5);
    assert_eq!(
        err.to_string(),
        format!("parse error at column 5: {message}")
    );
}

/// An operator applied to a dtype it refuses: the operator's name, the dtype, and why, on
/// arrays, on literals folded at build time, and from the string parser.
#[test]
fn operand_type_holds_the_operator_and_the_dtype() {
    let f = Expr::data(arr1(&[1.0, 2.0]), None);
    let b = Expr::data(arr1(&[true, false]), None);
    let i = Expr::data(arr1(&[1i32, 2]), None);
    let check = |e: Expr, op: &str, dtype: DType| {
        let err = e.meta().unwrap_err();
        match &err {
            Error::OperandType {
                op: o,
                dtype: d,
                reason,
            } => {
                assert_eq!((o.as_str(), *d), (op, dtype), "{err}");
                assert_eq!(
                    err.to_string(),
                    format!("type error: `{op}` of {dtype}: {reason}")
                );
            }
            other => panic!("{op}: {other:?}"),
        }
    };
    check(!&f, "not", DType::F64);
    check(&b - &b, "sub", DType::Bool);
    check(b.sign(), "sign", DType::Bool);
    // (`sqrt` of bool is float16, as in NumPy.)
    assert_eq!(b.sqrt().meta().unwrap().dtype, DType::F16);
    check(&f & &i, "and", DType::F64);
    check(&i.astype(DType::F32) << &i, "shl", DType::F64);
    // Two literals fold when the expression is built; `~1.5` is refused there.
    check(!&Expr::from(1.5), "not", DType::F64);
    check(Expr::from(1.5) & Expr::from(2i64), "and", DType::F64);
    let err = (!&f).meta().unwrap_err();
    assert_eq!(
        err.to_string(),
        "type error: `not` of float64: `~` needs bool or integer operands"
    );
    let bb = b.clone();
    let err = parse::parse("+b", &|n| (n == "b").then(|| bb.clone())).unwrap_err();
    assert!(
        matches!(&err, Error::OperandType { op, dtype: DType::Bool, .. } if op == "positive"),
        "{err:?}"
    );
}

/// Data of another dtype than declared: bound to a symbol (every engine), passed to a compiled
/// function, read back with the wrong typed accessor.
#[test]
fn dtype_mismatch_holds_the_name_and_both_dtypes() {
    let ints = arr1(&[1i32, 2, 3]);
    for d in engines() {
        let s = session(d);
        let x = s.symbol("x", DType::F64, &[3]);
        let err = s
            .compute_with(&(&x * 2.0), &[("x", (&ints).into())])
            .unwrap_err();
        assert_eq!(
            err,
            Error::DtypeMismatch {
                name: "x".into(),
                expected: DType::F64,
                found: DType::I32
            },
            "{d}"
        );
        assert_eq!(
            err.to_string(),
            "type error: `x` is declared float64 but bound to int32 data"
        );
    }
    let s = session(Device::Cpu);
    let (t, u) = (
        s.symbol("t", DType::F64, &[3]),
        s.symbol("u", DType::F32, &[3]),
    );
    let f = s.compile(&(&t * &u)).unwrap();
    let a = arr1(&[1.0, 2.0, 3.0]);
    let err = f.call(&[(&a).into(), (&a).into()]).unwrap_err();
    assert_eq!(
        err,
        Error::DtypeMismatch {
            name: "u".into(),
            expected: DType::F32,
            found: DType::F64
        }
    );
    let err = fusebox::DynArray::from(a).into_i32().unwrap_err();
    assert!(
        matches!(&err, Error::DtypeMismatch { name, expected: DType::I32, found: DType::F64 } if name.is_empty()),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "type error: expected int32 data, got float64"
    );
}

#[test]
fn axis_errors_hold_the_axis() {
    let m = Expr::data(Array2::<f64>::zeros((2, 3)), Some("m"));
    let sum = Reduction::Op(ReduceOp::Sum);
    let err = m.reduce(sum, Some(&[-3]), false).meta().unwrap_err();
    assert_eq!(err, Error::AxisOutOfBounds { axis: -3, ndim: 2 });
    assert_eq!(
        err.to_string(),
        "axis error: axis -3 is out of bounds for array of dimension 2"
    );
    // `1` and `-1` are the same axis of a 2-d array: the duplicate is axis 1.
    let err = m.reduce(sum, Some(&[1, -1]), false).meta().unwrap_err();
    assert_eq!(err, Error::DuplicateAxis { axis: 1 });
    assert_eq!(err.to_string(), "axis error: duplicate value in 'axis'");
    let err = m
        .reduce(Reduction::Op(ReduceOp::ArgMax), Some(&[0, 1]), false)
        .meta()
        .unwrap_err();
    assert!(
        matches!(&err, Error::Axis { message } if message.contains("single axis")),
        "{err:?}"
    );
}

#[test]
fn argument_count_holds_the_parameters() {
    let s = session(Device::Cpu);
    let (t, u) = (
        s.symbol("t", DType::F64, &[3]),
        s.symbol("u", DType::F64, &[3]),
    );
    let f = s.compile(&(&t + &u)).unwrap();
    let a = arr1(&[1.0, 2.0, 3.0]);
    let err = f.call(&[(&a).into()]).unwrap_err();
    assert_eq!(
        err,
        Error::ArgumentCount {
            expected: 2,
            found: 1,
            params: vec!["t".into(), "u".into()]
        }
    );
    assert_eq!(
        err.to_string(),
        "argument error: expected 2 arguments (t, u), got 1"
    );
}

#[test]
fn integer_overflow_holds_the_value_and_the_dtype() {
    let i = Expr::data(arr1(&[1i32, 2]), None);
    let err = (&i + 5_000_000_000i64).meta().unwrap_err();
    assert_eq!(
        err,
        Error::IntegerOverflow {
            value: 5_000_000_000,
            dtype: DType::I32
        }
    );
    assert_eq!(
        err.to_string(),
        "integer literal 5000000000 out of bounds for int32"
    );
}

#[test]
fn negative_integer_power_holds_the_exponent() {
    let i = Expr::data(arr1(&[2i64, 3]), None);
    let err = i.pow(-2i64).meta().unwrap_err();
    assert_eq!(err, Error::NegativeIntegerPower { exponent: -2 });
    assert_eq!(
        err.to_string(),
        "value error: Integers to negative integer powers are not allowed."
    );
}

/// `min`/`max`/`argmin`/`argmax` of nothing: the reduction's name, NumPy's messages, on every
/// engine, also when the emptiness is only known from the bound data.
#[test]
fn empty_reduction_holds_the_reduction_and_says_what_numpy_says() {
    let empty = Array1::<f64>::zeros(0);
    let cases = [
        (
            ReduceOp::Max,
            "value error: zero-size array to reduction operation maximum which has no identity",
        ),
        (
            ReduceOp::Min,
            "value error: zero-size array to reduction operation minimum which has no identity",
        ),
        (
            ReduceOp::ArgMax,
            "value error: attempt to get argmax of an empty sequence",
        ),
        (
            ReduceOp::ArgMin,
            "value error: attempt to get argmin of an empty sequence",
        ),
    ];
    for (op, text) in cases {
        let r = Reduction::Op(op);
        let err = Expr::data(empty.clone(), None)
            .reduce(r, None, false)
            .meta()
            .unwrap_err();
        assert_eq!(
            err,
            Error::EmptyReduction {
                op: op.name().into()
            }
        );
        assert_eq!(err.to_string(), text);
        for d in engines() {
            let s = session(d);
            let x = s.symbol("x", DType::F64, &[3]);
            let e = x.reduce(r, None, false);
            // compute_with binds data of the declared shape only.
            let got = s.compute_with(&e, &[("x", (&empty).into())]).unwrap_err();
            let bound = Error::BoundShape {
                name: "x".into(),
                declared: vec![3],
                found: vec![0],
            };
            assert_eq!(got, bound, "{d}");
            // A compiled function is generic over shapes: declared with 3 elements, called
            // with none, the error is found when the plan sees the data.
            if d != Device::Reference {
                let got = s.compile(&e).unwrap().call(&[(&empty).into()]).unwrap_err();
                assert_eq!(got, err, "{d}");
            }
        }
    }
}

#[test]
fn too_deep_holds_the_limit() {
    let src = format!("{}x{}", "(".repeat(1000), ")".repeat(1000));
    let x = Expr::symbol("x", DType::F64, &[1]);
    let err = parse::parse(&src, &|_| Some(x.clone())).unwrap_err();
    assert_eq!(
        err,
        Error::TooDeep {
            limit: parse::MAX_DEPTH
        }
    );
    assert_eq!(
        err.to_string(),
        format!(
            "expression too deep: nesting exceeds {} levels",
            parse::MAX_DEPTH
        )
    );
}

/// Under `InvalidCast::Raise`: both dtypes and the cast expression, on every engine.
#[test]
fn invalid_cast_holds_both_dtypes_and_the_expression() {
    let x = Expr::data(arr1(&[1.0f32, f32::NAN]), Some("x"));
    let e = (&x * 2.0).astype(DType::I64);
    for d in engines() {
        let s = Session::with_options(
            Options::default()
                .with_device(d)
                .with_invalid_cast(InvalidCast::Raise),
        );
        let err = s.compute(&e).unwrap_err();
        assert_eq!(
            err,
            Error::InvalidCast {
                from: DType::F32,
                to: DType::I64,
                expr: e.to_string()
            },
            "{d}"
        );
        assert_eq!(
            err.to_string(),
            format!(
                "invalid value in cast: NaN, infinity or out-of-range value cast from float32 to \
                 int64 in `{e}`"
            )
        );
    }
}

/// `.npy` errors hold the path (none for bytes in memory) and the reason; a descr fusebox does
/// not read is `UnsupportedDtype` naming it.
#[test]
fn npy_errors_hold_the_path() {
    use fusebox::npy::{read_npy, read_npy_bytes, write_npy};
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.npy");
    let err = read_npy(&missing).unwrap_err();
    let Error::Npy { path, message } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(path.as_deref(), Some(missing.as_path()));
    assert_eq!(
        err.to_string(),
        format!("npy error: {}: {message}", missing.display())
    );
    let garbage = dir.path().join("garbage.npy");
    std::fs::write(&garbage, b"not numpy at all").unwrap();
    assert!(matches!(
        read_npy(&garbage),
        Err(Error::Npy { path: Some(p), message }) if p == garbage && message.contains("bad magic")
    ));
    let err = read_npy_bytes(b"not numpy at all").unwrap_err();
    assert!(
        matches!(&err, Error::Npy { path: None, message } if message.contains("bad magic")),
        "{err:?}"
    );
    assert!(
        err.to_string().starts_with("npy error: <memory>: "),
        "{err}"
    );
    let nowhere = dir.path().join("no/such/dir/out.npy");
    let err = write_npy(&nowhere, &arr1(&[1.0]).into()).unwrap_err();
    assert!(
        matches!(&err, Error::Npy { path: Some(p), .. } if p == &nowhere),
        "{err:?}"
    );
    let err = read_npy(std::path::Path::new("tests/data/c8_unsupported.npy")).unwrap_err();
    assert!(
        matches!(&err, Error::UnsupportedDtype { dtype, context } if dtype == "<c8" && context.contains("c8_unsupported.npy")),
        "{err:?}"
    );
    assert!(
        err.to_string().starts_with("unsupported dtype `<c8`: "),
        "{err}"
    );
}

#[test]
fn unknown_dtype_names_are_unsupported_dtypes() {
    assert_eq!(DType::parse("float16").unwrap(), DType::F16);
    let err = DType::parse("complex64").unwrap_err();
    assert!(
        matches!(&err, Error::UnsupportedDtype { dtype, .. } if dtype == "complex64"),
        "{err:?}"
    );
}

/// Which errors send `Device::Auto` back to the CPU: the device's failures, never the user's.
#[test]
fn device_errors_are_told_from_user_errors() {
    let device = [
        Error::Device {
            message: "m".into(),
        },
        Error::DeviceLost {
            message: "m".into(),
        },
        Error::OutOfMemory {
            message: "m".into(),
        },
        Error::Compile {
            message: "m".into(),
        },
        Error::UnsupportedDtype {
            dtype: "float64".into(),
            context: "m".into(),
        },
        Error::TooLarge {
            shape: None,
            reason: "m".into(),
        },
    ];
    assert!(device.iter().all(Error::is_device_error));
    let user = [
        Error::ShapeMismatch {
            lhs: vec![2],
            rhs: vec![3],
        },
        Error::OperandType {
            op: "not".into(),
            dtype: DType::F64,
            reason: "m".into(),
        },
        Error::DtypeMismatch {
            name: "x".into(),
            expected: DType::F64,
            found: DType::I32,
        },
        Error::EmptyReduction { op: "max".into() },
        Error::InvalidCast {
            from: DType::F64,
            to: DType::I32,
            expr: "x".into(),
        },
    ];
    assert!(!user.iter().any(Error::is_device_error));
    // `From<std::io::Error>`: no path, the system's message.
    let io: Error = std::io::Error::new(std::io::ErrorKind::NotFound, "gone").into();
    assert_eq!(
        io,
        Error::Io {
            path: None,
            message: "gone".into()
        }
    );
    assert_eq!(io.to_string(), "I/O error: gone");
}
