//! Expanded math in the JIT: rare-lane fallbacks, fused multiply-add, table lookups.
use super::*;

/// `Inst::Fallback`: the scalar call replaces the value exactly in the lanes whose condition
/// holds, in the SIMD loop (vectors with none, some and all lanes needing it) and in the
/// scalar loop, for unary and binary calls, f64 and f32.
#[test]
fn fallback_calls_the_scalar_function_in_the_lanes_that_need_it() {
    use crate::kir::Call;
    let be = backend();
    for dt in [DType::F64, DType::F32] {
        for binary in [false, true] {
            let mut b = KernelBuilder::new();
            let i = b.input(dt);
            let j = b.input(dt);
            let x = b.push(Inst::Load { input: i }, dt);
            let y = b.push(Inst::Load { input: j }, dt);
            let c = b.push(Inst::Const(sem::cast(Const::F64(100.0), dt)), dt);
            let cond = b.push(
                Inst::Binary {
                    op: BinaryOp::Gt,
                    lhs: x,
                    rhs: c,
                },
                DType::Bool,
            );
            let value = b.push(
                Inst::Binary {
                    op: BinaryOp::Mul,
                    lhs: x,
                    rhs: y,
                },
                dt,
            );
            let call = if binary {
                Call::Binary(BinaryOp::Hypot, x, y)
            } else {
                Call::Unary(UnaryOp::Sin, x)
            };
            let f = b.push(Inst::Fallback { cond, value, call }, dt);
            let k = b.finish(Output::Store { value: f });
            k.verify().unwrap();
            // Runs of small and large values, so vectors have no, some and all lanes large.
            let pattern = [
                1.0, 2.0, 300.0, 3.0, 400.0, 500.0, 600.0, 700.0, -4.0, 5.0, 6.0,
            ];
            let xs: Vec<f64> = (0..53).map(|n| pattern[n % 11] + n as f64).collect();
            let ys: Vec<f64> = (0..53).map(|n| 0.25 * n as f64 - 3.0).collect();
            let vx: Vec<V> = xs.iter().map(|v| float_v(*v, dt)).collect();
            let vy: Vec<V> = ys.iter().map(|v| float_v(*v, dt)).collect();
            let expected: Vec<V> = vx
                .iter()
                .zip(&vy)
                .map(|(a, bb)| {
                    if a.as_f64() > 100.0 {
                        match call {
                            Call::Unary(op, _) => eval_unary(op, *a),
                            Call::Binary(op, _, _) => eval_binary(op, *a, *bb),
                        }
                    } else {
                        eval_binary(BinaryOp::Mul, *a, *bb)
                    }
                })
                .collect();
            let compiled = be.compile(&k).unwrap();
            assert!(
                compiled.has_simd(),
                "the fallback compiles in the SIMD loop"
            );
            for layout in LAYOUTS {
                let (sa, sb) = (storage(&vx, dt, layout), storage(&vy, dt, layout));
                let got = be
                    .run(
                        &compiled,
                        &[view_of(&sa, layout), view_of(&sb, layout)],
                        &[xs.len()],
                    )
                    .unwrap();
                let what = format!("fallback {call} {dt} {layout:?}");
                check_same(&what, &got, &expected, &[vx.clone(), vy.clone()]);
                let interp =
                    crate::interp::run(&k, &[view_of(&sa, layout), view_of(&sb, layout)], &[53])
                        .unwrap();
                check_same(
                    &format!("{what} (interp)"),
                    &interp,
                    &expected,
                    std::slice::from_ref(&vx),
                );
            }
        }
    }
}

/// The expanded `sin` with huge arguments (the fallback's lanes) mixed into moderate ones:
/// the huge lanes are libm's results bit for bit, the others within the documented bound.
#[test]
fn expanded_trig_falls_back_to_libm_for_huge_arguments() {
    let be = backend();
    for dt in [DType::F64, DType::F32] {
        for op in [UnaryOp::Sin, UnaryOp::Cos, UnaryOp::Tan] {
            let k = crate::mathlib::expand_all(&unary_kernel(op, dt, dt));
            assert!(k.to_string().contains("fallback"));
            let compiled = be.compile(&k).unwrap();
            assert!(compiled.has_simd());
            let xs: Vec<f64> = (0..41)
                .map(|n| match n % 5 {
                    0 => 1e22 + n as f64,
                    1 => -(n as f64) * 0.37,
                    2 => 3e7 * n as f64,
                    3 => f64::INFINITY,
                    _ => n as f64 * 12.5,
                })
                .collect();
            let vx: Vec<V> = xs.iter().map(|v| float_v(*v, dt)).collect();
            let big = if dt == DType::F64 { 1.6e6 } else { 6.4e3 };
            for layout in LAYOUTS {
                let a = storage(&vx, dt, layout);
                let got = values(&be.run(&compiled, &[view_of(&a, layout)], &[41]).unwrap());
                for (g, x) in got.iter().zip(&vx) {
                    let want = eval_unary(op, *x);
                    let bound = crate::mathlib::ULP_BOUNDS
                        .iter()
                        .find(|b| b.0 == op && b.1 == dt)
                        .map(|b| b.2)
                        .unwrap();
                    let ulp = if x.as_f64().abs() > big { 0 } else { bound };
                    assert!(
                        g.within_ulp(want, ulp),
                        "{op}.{dt} {layout:?}({x:?}) = {g:?}, libm {want:?}"
                    );
                }
            }
        }
    }
}

fn float_v(x: f64, dt: DType) -> V {
    if dt == DType::F64 {
        V::F64(x)
    } else {
        V::F32(x as f32)
    }
}

/// Columns of floats as arrays of `dt`.
fn float_array(dt: DType, xs: &[f64]) -> crate::array::DynArray {
    match dt {
        DType::F64 => Array1::from(xs.to_vec()).into(),
        _ => Array1::from(xs.iter().map(|v| *v as f32).collect::<Vec<_>>()).into(),
    }
}

/// The results as f64 bits of the dtype (f32 bits widened).
fn float_bits(a: crate::array::DynArray) -> Vec<u64> {
    match a {
        crate::array::DynArray::F64(a) => a.iter().map(|v| v.to_bits()).collect(),
        crate::array::DynArray::F32(a) => a.iter().map(|v| v.to_bits() as u64).collect(),
        _ => unreachable!(),
    }
}

/// `fma(a, b, c)` is one rounding in the JIT (SIMD loop and scalar tail) and the interpreter:
/// bit for bit `mul_add`, on operands where `a * b + c` rounded twice differs, and on NaN,
/// infinities and signed zeros. Without FMA on the target, compiling it is a typed error.
#[test]
fn fma_is_fused_in_jit_and_interpreter() {
    let be = backend();
    let e = 2f64.powi(-27);
    let cases: Vec<[f64; 3]> = vec![
        [1.0 + e, 1.0 - e, -1.0],
        [1.0 + 2f64.powi(-52), 1.0 + 2f64.powi(-52), -1.0],
        [0.1, 10.0, -1.0],
        [3.0, 1.0 / 3.0, -1.0],
        [f64::NAN, 1.0, 2.0],
        [1.0, 2.0, -f64::NAN],
        [f64::INFINITY, 0.0, 1.0],
        [f64::INFINITY, 2.0, f64::NEG_INFINITY],
        [f64::INFINITY, 2.0, 1.0],
        [-0.0, 0.0, -0.0],
        [0.0, 0.0, -0.0],
        [1e308, 10.0, -1e308],
        [1e-200, 1e-200, 0.0],
        [2f64.powi(-537), 2f64.powi(-537), -0.0],
    ];
    for dt in [DType::F64, DType::F32] {
        let mut b = KernelBuilder::new();
        let ins: Vec<KV> = (0..3)
            .map(|_| {
                let i = b.input(dt);
                b.push(Inst::Load { input: i }, dt)
            })
            .collect();
        let f = b.push(
            Inst::Fma {
                a: ins[0],
                b: ins[1],
                c: ins[2],
            },
            dt,
        );
        let k = b.finish(Output::Store { value: f });
        k.verify().unwrap();
        assert!(k.to_string().contains("fma."), "{k}");
        // Repeated so that the SIMD loop and the scalar tail both see every case.
        let n = cases.len() * 5 + 3;
        let col = |j: usize| -> Vec<f64> {
            let mut v: Vec<f64> = (0..n).map(|i| cases[i % cases.len()][j]).collect();
            if dt == DType::F32 {
                // f32 cases where the unfused result differs.
                let e32 = 2f64.powi(-12);
                let pick = [1.0 + e32, 1.0 - e32, -1.0];
                v[0] = pick[j];
            }
            v
        };
        let cols: Vec<Vec<f64>> = (0..3).map(col).collect();
        let arrays: Vec<_> = cols.iter().map(|c| float_array(dt, c)).collect();
        let views: Vec<_> = arrays.iter().map(|a| a.view()).collect();
        let want: Vec<u64> = (0..n)
            .map(|i| match dt {
                DType::F64 => cols[0][i].mul_add(cols[1][i], cols[2][i]).to_bits(),
                _ => (cols[0][i] as f32)
                    .mul_add(cols[1][i] as f32, cols[2][i] as f32)
                    .to_bits() as u64,
            })
            .collect();
        // The cases are chosen so that fusing matters.
        let unfused_differs = (0..n).any(|i| {
            let u = match dt {
                DType::F64 => (cols[0][i] * cols[1][i] + cols[2][i]).to_bits(),
                _ => {
                    ((cols[0][i] as f32) * (cols[1][i] as f32) + cols[2][i] as f32).to_bits() as u64
                }
            };
            u != want[i]
        });
        assert!(unfused_differs, "{dt}: no case tells fused from unfused");
        let same = |got: &[u64], what: &str| {
            for i in 0..n {
                let nan = |b: u64| match dt {
                    DType::F64 => f64::from_bits(b).is_nan(),
                    _ => f32::from_bits(b as u32).is_nan(),
                };
                assert!(
                    got[i] == want[i] || (nan(got[i]) && nan(want[i])),
                    "{what} {dt} fma{:?}: {:#x}, mul_add {:#x}",
                    [cols[0][i], cols[1][i], cols[2][i]],
                    got[i],
                    want[i]
                );
            }
        };
        let interp = crate::interp::run(&k, &views, &[n]).unwrap();
        same(&float_bits(interp), "interpreter");
        if !crate::cpu::host_has_fma() {
            assert!(matches!(be.compile(&k), Err(Error::Compile { .. })));
            continue;
        }
        let compiled = be.compile(&k).unwrap();
        assert!(compiled.has_simd());
        let got = be.run(&compiled, &views, &[n]).unwrap();
        same(&float_bits(got), "JIT");
    }
}

/// The lanes of `exp` that its FMA expansion leaves to libm (|x| beyond 708 / 86: overflow,
/// subnormal and zero results, infinities, NaN) are libm's results bit for bit, mixed into
/// ordinary lanes in the same vectors, in the JIT and the interpreter; the ordinary lanes
/// are within 1 ULP of libm.
#[test]
fn exp_fallback_lanes_are_libm() {
    let be = backend();
    for dt in [DType::F64, DType::F32] {
        let rare: Vec<f64> = if dt == DType::F64 {
            vec![
                708.0000001,
                709.0,
                709.782712893384,
                709.7827128933841,
                710.0,
                1e300,
                f64::INFINITY,
                -708.0000001,
                -708.4,
                -720.0,
                -744.0,
                -745.1332191019411,
                -745.1332191019412,
                -745.2,
                -1e300,
                f64::NEG_INFINITY,
                f64::NAN,
                -f64::NAN,
                f64::from_bits(0x7ff0_0000_0000_0001),
                f64::MAX,
                f64::MIN,
            ]
        } else {
            vec![
                86.00001,
                88.0,
                88.72283,
                88.72284,
                89.0,
                1e30,
                f64::INFINITY,
                -86.00001,
                -87.5,
                -95.0,
                -103.0,
                -103.97207,
                -103.97208,
                -110.0,
                f64::NEG_INFINITY,
                f64::NAN,
                -f64::NAN,
            ]
        };
        let ordinary = [0.0, -0.0, 1.0, -1.0, 0.5, 1e-310, -3.7, 700.0, -700.0, 85.0];
        let mut xs = vec![];
        for (i, r) in rare.iter().enumerate() {
            xs.push(*r);
            xs.push(ordinary[i % ordinary.len()]);
            if i % 3 == 0 {
                xs.push(ordinary[(i + 3) % ordinary.len()]);
                xs.push(ordinary[(i + 5) % ordinary.len()]);
            }
        }
        let mut b = KernelBuilder::new();
        let i = b.input(dt);
        let x = b.push(Inst::Load { input: i }, dt);
        let y = b.push(
            Inst::Unary {
                op: UnaryOp::Exp,
                arg: x,
            },
            dt,
        );
        let raw = b.finish(Output::Store { value: y });
        let k = crate::mathlib::expand_for(
            &raw,
            crate::mathlib::Target {
                fma: true,
                tables: true,
                fallback: true,
            },
        );
        assert!(k.to_string().contains("fallback"), "{k}");
        let arr = float_array(dt, &xs);
        let want: Vec<u64> = xs
            .iter()
            .map(|x| match dt {
                DType::F64 => x.exp().to_bits(),
                _ => (*x as f32).exp().to_bits() as u64,
            })
            .collect();
        let f32 = dt == DType::F32;
        let check = |got: Vec<u64>, what: &str| {
            for (j, x) in xs.iter().enumerate() {
                let (g, w) = if f32 {
                    (
                        f32::from_bits(got[j] as u32) as f64,
                        f32::from_bits(want[j] as u32) as f64,
                    )
                } else {
                    (f64::from_bits(got[j]), f64::from_bits(want[j]))
                };
                let is_rare = if f32 {
                    (*x as f32).is_nan() || (*x as f32).abs() > 86.0
                } else {
                    x.is_nan() || x.abs() > 708.0
                };
                if is_rare {
                    assert!(
                        got[j] == want[j],
                        "{what} exp.{dt}({x:e}) = {g:e} ({:#x}), libm {w:e} ({:#x})",
                        got[j],
                        want[j]
                    );
                } else {
                    let u = if f32 {
                        sem::ulp_distance_f32(g as f32, w as f32)
                    } else {
                        sem::ulp_distance_f64(g, w)
                    };
                    assert!(
                        u <= 1,
                        "{what} exp.{dt}({x:e}) = {g:e}, libm {w:e}: {u} ULP"
                    );
                }
            }
        };
        check(
            float_bits(crate::interp::run(&k, &[arr.view()], &[xs.len()]).unwrap()),
            "interpreter",
        );
        if crate::cpu::host_has_fma() {
            let compiled = be.compile(&raw).unwrap();
            assert!(compiled.has_simd());
            check(
                float_bits(be.run(&compiled, &[arr.view()], &[xs.len()]).unwrap()),
                "JIT",
            );
        }
    }
}

/// A table lookup on the JIT, scalar and SIMD loops, reads entry `index & 127` for any int64
/// index (negative and huge ones included), as the interpreter does.
#[test]
fn table_lookups_mask_every_index() {
    use crate::kir::Table;
    let be = backend();
    for table in [Table::Exp2Hi, Table::Exp2Lo] {
        let mut b = KernelBuilder::new();
        let i = b.input(DType::I64);
        let v = b.push(Inst::Load { input: i }, DType::I64);
        let t = b.push(Inst::Lookup { table, index: v }, DType::F64);
        let k = b.finish(Output::Store { value: t });
        let ck = be.compile(&k).unwrap();
        assert!(ck.code.simd, "the lookup runs in the SIMD loop");
        let idx: Vec<i64> = (-300..300)
            .chain([i64::MIN, i64::MAX, i64::MIN + 1, 1 << 40, -(1 << 40)])
            .collect();
        let x = Array1::from(idx.clone()).into_dyn();
        let strided = Array1::from_iter(idx.iter().flat_map(|v| [*v, 0]));
        let want: Vec<u64> = idx
            .iter()
            .map(|j| table.entries()[(*j as usize) & 127])
            .collect();
        let bits = |a: DynArray| -> Vec<u64> {
            a.into_f64().unwrap().iter().map(|v| v.to_bits()).collect()
        };
        let n = idx.len();
        assert_eq!(bits(be.run(&ck, &[(&x).into()], &[n]).unwrap()), want);
        let sv = strided.slice(s![..;2]).into_dyn();
        assert_eq!(bits(be.run(&ck, &[sv.into()], &[n]).unwrap()), want);
        let interp = crate::interp::run(&k, &[(&x).into()], &[n]).unwrap();
        assert_eq!(bits(interp), want);
    }
}

/// `cargo test --release --lib exp_algorithms_speed -- --ignored --nocapture`: float64 `exp`
/// on the JIT by each algorithm the targets select (table, FMA polynomial, rational), one
/// thread, 10^4 elements in cache, best of many calls.
#[test]
#[ignore = "timing; run in release at normal priority"]
fn exp_algorithms_speed() {
    use crate::mathlib::{expand_for, Target};
    use std::time::Instant;
    let be = backend();
    let raw = unary_kernel(UnaryOp::Exp, DType::F64, DType::F64);
    let x = Array1::linspace(-20.0, 20.0, 10_000).into_dyn();
    let targets = [
        (
            "table",
            Target {
                fma: true,
                tables: true,
                fallback: true,
            },
        ),
        (
            "fma",
            Target {
                fma: true,
                tables: false,
                fallback: true,
            },
        ),
        (
            "rational",
            Target {
                fma: false,
                tables: false,
                fallback: true,
            },
        ),
    ];
    let ks: Vec<_> = targets
        .iter()
        .map(|(_, t)| be.compile_lowered(&raw, expand_for(&raw, *t)).unwrap())
        .collect();
    let mut best = vec![f64::INFINITY; ks.len()];
    for _ in 0..2000 {
        for (k, b) in ks.iter().zip(&mut best) {
            let t = Instant::now();
            std::hint::black_box(be.run(k, &[(&x).into()], &[10_000]).unwrap());
            *b = b.min(t.elapsed().as_secs_f64() / 10_000.0);
        }
    }
    for ((name, _), b) in targets.iter().zip(&best) {
        eprintln!("exp f64 {name:8}: {:.3} ns/elem", b * 1e9);
    }
}
