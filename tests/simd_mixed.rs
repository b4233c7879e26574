//! Kernels that mix element widths or read and write bool arrays (issue 13, item 3): the CPU
//! JIT's SIMD loop takes its lane count from the widest element and widens or narrows the rest
//! (`cpu/codegen`). Each case is checked against the reference evaluator at sizes that cross
//! every vector length and unroll step (0, 1, lanes - 1, lanes + 1, ..., 1003) on contiguous,
//! strided, reversed and broadcast inputs and 2-D row and column broadcasts, fused and
//! unfused; and every kernel of the fused and unfused plans must have the SIMD loop (before,
//! all of them fell back to the scalar loop).
mod common;
use common::*;
use fusebox::unstable::cpu::CpuBackend;
use fusebox::unstable::opt::{self, Partition};
use fusebox::unstable::reference;
use fusebox::{where_, BinaryOp, DType, Device, Expr, ExprKind, Options, Session, UnaryOp};
use std::collections::HashMap;

/// Sizes crossing 2, 4, 8 and 16 lanes and the unroll steps (twice that) on either side.
const SIZES: [usize; 17] = [0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33, 63, 65, 1003];

/// One case: input dtypes, and the expression over inputs of those dtypes.
type Build = fn(&[Expr]) -> Expr;
struct Case {
    name: &'static str,
    dtypes: &'static [DType],
    build: Build,
}

fn and(a: Expr, b: Expr) -> Expr {
    Expr::binary(BinaryOp::And, a, b)
}

const CASES: &[Case] = &[
    Case {
        // The bench case: float32 compared, scaled and widened, plus float64.
        name: "relu_mix",
        dtypes: &[DType::F32, DType::F64],
        build: |x| where_(x[0].gt(0.0), &x[0], 0.01 * &x[0]) + &x[1],
    },
    Case {
        name: "where(bool array) f64",
        dtypes: &[DType::Bool, DType::F64, DType::F64],
        build: |x| where_(&x[0], &x[1], &x[2]),
    },
    Case {
        name: "where(bool array) f32",
        dtypes: &[DType::Bool, DType::F32, DType::F32],
        build: |x| where_(&x[0], &x[1], &x[2]),
    },
    Case {
        name: "where(bool array) int8",
        dtypes: &[DType::Bool, DType::I8, DType::I8],
        build: |x| where_(&x[0], &x[1], &x[2]),
    },
    Case {
        name: "where(x > 0) f64 with a bool mask and",
        dtypes: &[DType::F64, DType::Bool, DType::F64],
        build: |x| where_(and(x[0].gt(0.0), x[1].clone()), &x[0], &x[2]),
    },
    Case {
        name: "float32 times int64",
        dtypes: &[DType::F32, DType::I64],
        build: |x| &x[0] * &x[1],
    },
    Case {
        name: "int8 plus int32",
        dtypes: &[DType::I8, DType::I32],
        build: |x| &x[0] + &x[1],
    },
    Case {
        name: "uint8 plus int64",
        dtypes: &[DType::U8, DType::I64],
        build: |x| &x[0] + &x[1],
    },
    Case {
        name: "int16 times float32",
        dtypes: &[DType::I16, DType::F32],
        build: |x| &x[0] * &x[1],
    },
    Case {
        name: "uint16 plus float64",
        dtypes: &[DType::U16, DType::F64],
        build: |x| &x[0] + &x[1],
    },
    Case {
        name: "int32 plus float64",
        dtypes: &[DType::I32, DType::F64],
        build: |x| &x[0] + &x[1],
    },
    Case {
        name: "uint32 minus float64",
        dtypes: &[DType::U32, DType::F64],
        build: |x| &x[0] - &x[1],
    },
    Case {
        name: "float64 to float32, int8, uint16, bool",
        dtypes: &[DType::F64],
        build: |x| {
            x[0].astype(DType::F32).astype(DType::F64)
                + x[0].astype(DType::I8).astype(DType::F64)
                + x[0].astype(DType::U16).astype(DType::F64)
                + x[0].astype(DType::Bool).astype(DType::F64)
        },
    },
    Case {
        name: "int64 narrowed to int8 and int16",
        dtypes: &[DType::I64],
        build: |x| x[0].astype(DType::I8) + x[0].astype(DType::I16),
    },
    Case {
        name: "comparison of float32 and float64 to bool",
        dtypes: &[DType::F32, DType::F64],
        build: |x| x[0].lt(&x[1]),
    },
    Case {
        name: "bool and bool to bool",
        dtypes: &[DType::Bool, DType::Bool],
        build: |x| and(x[0].clone(), !&x[1]),
    },
    Case {
        name: "bool and comparison to bool",
        dtypes: &[DType::Bool, DType::F64],
        build: |x| and(x[0].clone(), x[1].ge(0.5)),
    },
    Case {
        name: "isnan of float32 to bool",
        dtypes: &[DType::F32],
        build: |x| x[0].isnan(),
    },
    Case {
        name: "bool to float32 and int64",
        dtypes: &[DType::Bool, DType::F32],
        build: |x| x[0].astype(DType::F32) * &x[1] + x[0].astype(DType::I64),
    },
    Case {
        name: "sqrt of int16 (to float32)",
        dtypes: &[DType::I16],
        build: |x| Expr::unary(UnaryOp::Sqrt, x[0].clone()),
    },
    Case {
        name: "sum of a float64 where with a bool mask",
        dtypes: &[DType::Bool, DType::F64],
        build: |x| where_(&x[0], &x[1], 0.0).sum(),
    },
    Case {
        name: "any of float32 > 0 or a bool",
        dtypes: &[DType::F32, DType::Bool],
        build: |x| Expr::binary(BinaryOp::Or, x[0].gt(0.0), x[1].clone()).any(),
    },
    Case {
        name: "all of a bool array",
        dtypes: &[DType::Bool],
        build: |x| x[0].all(),
    },
];

/// How an input is laid out for one check.
#[derive(Debug, Clone, Copy)]
enum Shape {
    Flat(Layout),
    /// Shape `[1]`, broadcast to the others' length (stride 0).
    Broadcast,
    /// Shape `[]` (a 0-d array).
    Scalar,
}

fn sessions() -> [(&'static str, Session); 2] {
    let cpu = Options::default().with_device(Device::Cpu);
    [
        ("fused", Session::with_options(cpu.clone())),
        ("unfused", Session::with_options(cpu.with_optimize(false))),
    ]
}

fn check(what: &str, e: &Expr, ss: &[(&str, Session)]) {
    let oracle = reference::evaluate(e, &HashMap::new());
    // Float sums add in another order than the oracle's pairwise sum: compared within the
    // documented sum-order bound of the summed values.
    let summed = match e.kind() {
        ExprKind::Reduce(_, x, _) => Some(reference::evaluate(x, &HashMap::new()).unwrap()),
        _ => None,
    };
    for (name, s) in ss {
        match (s.compute(e), &oracle) {
            (Ok(a), Ok(b)) if summed.is_some() => {
                let summed = summed.as_ref().expect("a reduction");
                if let Err(m) = sum_agree(&a, b, summed) {
                    panic!("{what} [{name}] {e}: {m}");
                }
            }
            (Ok(a), Ok(b)) => assert_agree(&format!("{what} [{name}] {e}"), &a, b, 0),
            (Err(_), Err(_)) => {}
            (a, b) => panic!("{what} [{name}] {e}: ours {a:?}, oracle {b:?}"),
        }
    }
}

#[test]
fn mixed_width_and_bool_kernels_agree_with_the_reference_across_vector_lengths() {
    let ss = sessions();
    let mut checked = 0;
    for (ci, case) in CASES.iter().enumerate() {
        for &n in &SIZES {
            // Every input contiguous; then each input in turn strided, reversed, broadcast
            // from one element, or 0-d, the others contiguous.
            let mut plans = vec![vec![Shape::Flat(Layout::Contiguous); case.dtypes.len()]];
            for j in 0..case.dtypes.len() {
                for s in [
                    Shape::Flat(Layout::Strided),
                    Shape::Flat(Layout::Reversed),
                    Shape::Broadcast,
                    Shape::Scalar,
                ] {
                    let mut p = plans[0].clone();
                    p[j] = s;
                    plans.push(p);
                }
            }
            for plan in plans {
                let xs: Vec<Expr> = case
                    .dtypes
                    .iter()
                    .zip(&plan)
                    .enumerate()
                    .map(|(j, (&dt, s))| {
                        let seed = (ci * 31 + j * 7 + n) as u64;
                        let a = match s {
                            Shape::Flat(l) => array(dt, &[n], *l, seed),
                            Shape::Broadcast => array(dt, &[1], Layout::Contiguous, seed),
                            Shape::Scalar => array(dt, &[], Layout::Contiguous, seed),
                        };
                        Expr::data(a, Some(&format!("x{j}")))
                    })
                    .collect();
                check(
                    &format!("{} n={n} {plan:?}", case.name),
                    &(case.build)(&xs),
                    &ss,
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 1000, "{checked} checks");
}

#[test]
fn mixed_width_kernels_agree_on_2d_row_and_column_broadcasts() {
    let ss = sessions();
    for case in CASES {
        for cols in [1, 3, 17, 250] {
            for (j, _) in case.dtypes.iter().enumerate() {
                for bshape in [[1, cols], [4, 1]] {
                    let xs: Vec<Expr> = case
                        .dtypes
                        .iter()
                        .enumerate()
                        .map(|(i, &dt)| {
                            let shape = if i == j { bshape } else { [4, cols] };
                            let layout = if i == j {
                                Layout::Contiguous
                            } else {
                                Layout::Fortran
                            };
                            Expr::data(array(dt, &shape, layout, (i + cols) as u64), None)
                        })
                        .collect();
                    check(
                        &format!("{} 2-D, input {j} of shape {bshape:?}", case.name),
                        &(case.build)(&xs),
                        &ss,
                    );
                }
            }
        }
    }
}

#[test]
fn every_kernel_of_the_mixed_cases_has_the_simd_loop() {
    // The proof that the vector loop runs, not only that results are right: each kernel of the
    // fused and the unfused plan compiles with a SIMD loop.
    let be = CpuBackend::new(1).unwrap();
    let mut kernels = 0;
    for case in CASES {
        let xs: Vec<Expr> = case
            .dtypes
            .iter()
            .map(|&dt| Expr::data(array(dt, &[64], Layout::Contiguous, 1), None))
            .collect();
        let e = (case.build)(&xs);
        for (optimize, mode) in [(true, Partition::Fused), (false, Partition::Unfused)] {
            let lowered = opt::lower(&e, &|_| None, optimize).unwrap();
            for step in opt::partition(&lowered, mode).steps {
                let k = be.compile(&step.kernel).unwrap();
                assert!(
                    k.has_simd(),
                    "{}: no SIMD loop for the kernel\n{}",
                    case.name,
                    step.kernel
                );
                kernels += 1;
            }
        }
    }
    assert!(kernels >= 2 * CASES.len(), "{kernels} kernels");
}
