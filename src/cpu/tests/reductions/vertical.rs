//! Vertical (axis-0) reductions in the SIMD loop: neighbouring kept positions combine as one
//! vector over dense accumulators (`codegen::Gen::vertical_simd`). Every result must have the
//! bits of the scalar vertical loop over slots (the function compiled without SIMD), for any
//! thread count, and agree with the interpreter.
use super::*;
use crate::cpu::codegen;

/// `k` compiled without SIMD loops: the scalar vertical function over slots.
fn scalar_only(be: &CpuBackend, k: &Kernel) -> CpuKernel {
    CpuKernel {
        kernel: k.clone(),
        code: codegen::compile(&be.isa, k, None).unwrap(),
        cost: threads::ElemCost::default(),
    }
}

/// Inexact values (sums depend on the order), a NaN every `nan_every` elements (0: none).
fn wavy(dt: DType, shape: &[usize], nan_every: usize) -> DynArray {
    let n: usize = shape.iter().product();
    let v: Vec<V> = (0..n)
        .map(|i| {
            let x = (i as f64 * 0.37).sin() * [1.0, 1e3, 1e-3, 7.0][i % 4];
            let x = if nan_every > 0 && i % nan_every == nan_every - 1 {
                f64::NAN
            } else {
                x
            };
            match dt {
                DType::Bool => V::B(x > 0.2),
                DType::I32 => V::I32((x * 100.0) as i32),
                DType::I64 => V::I64((x * 1e6) as i64),
                DType::F32 => V::F32(x as f32),
                _ => V::F64(x),
            }
        })
        .collect();
    to_array(&v, dt, shape)
}

fn same(what: &str, a: &[DynArray], b: &[DynArray]) {
    assert_eq!(a.len(), b.len(), "{what}");
    for (o, (x, y)) in a.iter().zip(b).enumerate() {
        assert_eq!(x.shape(), y.shape(), "{what}: output {o}");
        for (i, (p, q)) in values(x).iter().zip(values(y)).enumerate() {
            assert!(p.same_bits(q), "{what}: output {o} [{i}]: {p:?} vs {q:?}");
        }
    }
}

/// Kernels with a SIMD loop: one op each in every width, all value ops together, bools, an
/// element-wise operand (`x * x`), two inputs.
fn kernels() -> Vec<(String, Kernel, DType)> {
    let mut v = Vec::new();
    for dt in [DType::F64, DType::F32] {
        for op in VALUE_OPS {
            v.push((format!("{op} {dt}"), reduce_kernel(&[op], dt), dt));
        }
        v.push((format!("all ops {dt}"), reduce_kernel(&VALUE_OPS, dt), dt));
        let mut b = KernelBuilder::new();
        let i = b.input(dt);
        let x = b.push(Inst::Load { input: i }, dt);
        let sq = b.push(
            Inst::Binary {
                op: BinaryOp::Mul,
                lhs: x,
                rhs: x,
            },
            dt,
        );
        let outs = vec![
            Output::Reduce {
                op: ReduceOp::Sum,
                value: sq,
            },
            Output::Reduce {
                op: ReduceOp::Max,
                value: x,
            },
        ];
        v.push((format!("sum(x*x), max(x) {dt}"), b.finish_many(outs), dt));
    }
    for op in [ReduceOp::Sum, ReduceOp::Prod, ReduceOp::Min, ReduceOp::Max] {
        v.push((
            format!("{op} i64"),
            reduce_kernel(&[op], DType::I64),
            DType::I64,
        ));
    }
    v.push((
        "min i32".to_string(),
        reduce_kernel(&[ReduceOp::Min], DType::I32),
        DType::I32,
    ));
    for op in [ReduceOp::Any, ReduceOp::All] {
        v.push((
            format!("{op} bool"),
            reduce_kernel(&[op], DType::Bool),
            DType::Bool,
        ));
    }
    v
}

#[test]
fn vertical_simd_has_the_scalar_loops_bits_for_any_thread_count() {
    let backends: Vec<CpuBackend> = [1, 2, 4]
        .iter()
        .map(|&t| CpuBackend::new(t).unwrap())
        .collect();
    // Shapes the driver reduces vertically (`vertical_pays`): at least 4 kept columns, or
    // fewer than 64 rows.
    let shapes: &[&[usize]] = &[
        &[50, 2],
        &[63, 3],
        &[70, 5],
        &[517, 7],
        &[3, 17],
        &[130, 33],
        &[9, 1003],
        &[600, 1100],
        &[40, 3, 41],
    ];
    for (name, k, dt) in kernels() {
        let scalar = scalar_only(&backends[0], &k);
        for be in &backends {
            assert!(be.compile(&k).unwrap().has_simd(), "{name}: no SIMD loop");
        }
        for shape in shapes {
            for nan_every in [0, 29] {
                let a = wavy(dt, shape, nan_every);
                let v = nd_view(&a, NdLayout::Contiguous);
                let v = std::slice::from_ref(&v);
                let what = format!("{name} {shape:?} nan every {nan_every}");
                let want = backends[0].run_many(&scalar, v, shape, &[0]).unwrap();
                for be in &backends {
                    let ck = be.compile(&k).unwrap();
                    let got = be.run_many(&ck, v, shape, &[0]).unwrap();
                    same(&format!("{what}, {} threads", be.threads()), &got, &want);
                }
                // And the leading two axes of the 3-D shape.
                if shape.len() == 3 {
                    let got = backends[1]
                        .run_many(&backends[1].compile(&k).unwrap(), v, shape, &[0, 1])
                        .unwrap();
                    let want = backends[1].run_many(&scalar, v, shape, &[0, 1]).unwrap();
                    same(&format!("{what} axes [0, 1]"), &got, &want);
                }
            }
        }
    }
}

#[test]
fn vertical_simd_agrees_with_the_interpreter_on_every_layout() {
    // Broadcast rows (stride 0 along the reduced axis), transposed (the kept axis strided:
    // the scalar tail), reversed, and kept widths around the vector lengths.
    let be = CpuBackend::new(2).unwrap();
    let shapes: &[&[usize]] = &[&[66, 2], &[66, 3], &[66, 4], &[66, 5], &[66, 9], &[66, 17]];
    for (name, k, dt) in kernels() {
        for shape in shapes {
            for layout in [
                NdLayout::Contiguous,
                NdLayout::Transposed,
                NdLayout::Reversed,
                NdLayout::Broadcast,
            ] {
                let a = nd_storage(dt, shape, layout, 7);
                let v = nd_view(&a, layout);
                let what = format!("{name} {shape:?} {layout:?}");
                diff_run(&be, &what, &k, std::slice::from_ref(&v), shape, &[0]);
            }
        }
    }
}

#[test]
#[ignore = "timing report: cargo test --lib vertical_simd_speed_report -- --ignored --nocapture"]
fn vertical_simd_speed_report() {
    // sum(X, axis=0) of a C-ordered (rows, 1000) array on 2 threads: the vertical SIMD loop
    // against the same kernel compiled without SIMD (the scalar vertical loop over slots),
    // interleaved in one process; median of 9 calls each.
    let be = CpuBackend::new(2).unwrap();
    for dt in [DType::F64, DType::F32] {
        let k = reduce_kernel(&[ReduceOp::Sum], dt);
        let simd = be.compile(&k).unwrap();
        let scalar = scalar_only(&be, &k);
        for rows in [1000, 10_000] {
            let shape = [rows, 1000];
            let a = wavy(dt, &shape, 0);
            let v = nd_view(&a, NdLayout::Contiguous);
            let v = std::slice::from_ref(&v);
            let (mut ts, mut tv) = (Vec::new(), Vec::new());
            for _ in 0..9 {
                let t = Instant::now();
                be.run_many(&scalar, v, &shape, &[0]).unwrap();
                ts.push(t.elapsed().as_secs_f64());
                let t = Instant::now();
                be.run_many(&simd, v, &shape, &[0]).unwrap();
                tv.push(t.elapsed().as_secs_f64());
            }
            ts.sort_by(f64::total_cmp);
            tv.sort_by(f64::total_cmp);
            println!(
                "sum(X, axis=0) {dt} {shape:?}: scalar {:.3} ms, simd {:.3} ms, speed-up {:.2}x",
                ts[4] * 1e3,
                tv[4] * 1e3,
                ts[4] / tv[4]
            );
        }
    }
}
