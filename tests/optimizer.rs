//! Golden tests of the optimizer: the optimized graph and kernel IR for the seed's expressions
//! and for each rewrite rule, and the byte counts `explain` reports. Snapshots update in bulk
//! with `UPDATE_EXPECT=1 cargo test --test optimizer`.
use expect_test::{expect, Expect};
use fusebox::{DType, Expr, Session};

fn x() -> Expr {
    Expr::symbol("x", DType::F64, &[1000])
}

/// Kernels of the fused plan, IR text, one after the other.
fn check_ir(e: &Expr, expected: Expect) {
    let ex = Session::new().explain(e).unwrap();
    let text: Vec<String> = ex.kernels.iter().map(|k| k.ir.clone()).collect();
    expected.assert_eq(&text.join("\n"));
}

#[test]
fn poly_is_one_kernel() {
    let x = x();
    check_ir(
        &((5.0 * &x + 4.0) * &x + 1.0),
        expect![[r#"
            kernel(in0: f64) -> store f64 {
              v0 = const.f64 5.0
              v1 = load.f64 in0
              v2 = mul.f64 v0, v1
              v3 = const.f64 4.0
              v4 = add.f64 v2, v3
              v5 = mul.f64 v4, v1
              v6 = const.f64 1.0
              v7 = add.f64 v5, v6
              store v7
            }"#]],
    );
}

#[test]
fn gaussian_folds_constants_and_squares() {
    let x = x();
    let (mu, sigma) = (-1.33, 1.25);
    let e = 1.0 / (sigma * (2.0 * std::f64::consts::PI).sqrt())
        * (-(&x - mu).pow(2.0) / (2.0 * sigma * sigma)).exp();
    check_ir(
        &e,
        expect![[r#"
            kernel(in0: f64) -> store f64 {
              v0 = const.f64 0.3191538243211462
              v1 = load.f64 in0
              v2 = const.f64 -1.33
              v3 = sub.f64 v1, v2
              v4 = mul.f64 v3, v3
              v5 = neg.f64 v4
              v6 = const.f64 3.125
              v7 = div.f64 v5, v6
              v8 = exp.f64 v7
              v9 = mul.f64 v0, v8
              store v9
            }"#]],
    );
}

#[test]
fn sum_of_squares_fuses_the_producer() {
    let x = x();
    check_ir(
        &(&x * &x).sum(),
        expect![[r#"
            kernel(in0: f64) -> reduce.sum f64 {
              v0 = load.f64 in0
              v1 = mul.f64 v0, v0
              reduce.sum v1
            }"#]],
    );
}

#[test]
fn reduction_feeding_elementwise_makes_two_kernels() {
    let x = x();
    check_ir(
        &(&x - x.sum() / 1000.0),
        expect![[r#"
            kernel(in0: f64) -> reduce.sum f64 {
              v0 = load.f64 in0
              reduce.sum v0
            }
            kernel(in0: f64, in1: f64) -> store f64 {
              v0 = load.f64 in0
              v1 = load.f64 in1
              v2 = const.f64 1000.0
              v3 = div.f64 v1, v2
              v4 = sub.f64 v0, v3
              store v4
            }"#]],
    );
}

#[test]
fn mixed_dtypes_get_explicit_casts() {
    let a = Expr::symbol("a", DType::I32, &[4]);
    let b = Expr::symbol("b", DType::F32, &[4]);
    check_ir(
        &(&a / 2 + &b),
        expect![[r#"
            kernel(in0: i32, in1: f32) -> store f64 {
              v0 = load.i32 in0
              v1 = cast.i32.f64 v0
              v2 = const.f64 0.5
              v3 = mul.f64 v1, v2
              v4 = load.f32 in1
              v5 = cast.f32.f64 v4
              v6 = add.f64 v3, v5
              store v6
            }"#]],
    );
}

#[test]
fn rewrite_rules() {
    let x = x();
    let i = Expr::symbol("i", DType::I64, &[1000]);
    // CSE: one exp, shared.
    check_ir(
        &(x.exp() + x.exp()),
        expect![[r#"
            kernel(in0: f64) -> store f64 {
              v0 = load.f64 in0
              v1 = exp.f64 v0
              v2 = add.f64 v1, v1
              store v2
            }"#]],
    );
    // x * 1 -> x ; -(-x) -> x ; x - 0.0 -> x
    check_ir(
        &(-(-(&x * 1.0)) - 0.0),
        expect![[r#"
            kernel(in0: f64) -> store f64 {
              v0 = load.f64 in0
              store v0
            }"#]],
    );
    // x + 0.0 stays: -0.0 + 0.0 is +0.0.
    check_ir(
        &(&x + 0.0),
        expect![[r#"
            kernel(in0: f64) -> store f64 {
              v0 = load.f64 in0
              v1 = const.f64 0.0
              v2 = add.f64 v0, v1
              store v2
            }"#]],
    );
    // x ** 0.5 -> sqrt ; x ** -1 -> 1 / x ; x ** 3 stays pow for floats
    check_ir(
        &(x.pow(0.5) + x.pow(-1.0) + x.pow(3.0)),
        expect![[r#"
            kernel(in0: f64) -> store f64 {
              v0 = load.f64 in0
              v1 = sqrt.f64 v0
              v2 = const.f64 1.0
              v3 = div.f64 v2, v0
              v4 = add.f64 v1, v3
              v5 = const.f64 3.0
              v6 = pow.f64 v0, v5
              v7 = add.f64 v4, v6
              store v7
            }"#]],
    );
    // integer powers become multiplications by squaring: i ** 5 = (i*i)*(i*i) * i
    check_ir(
        &i.pow(5),
        expect![[r#"
            kernel(in0: i64) -> store i64 {
              v0 = load.i64 in0
              v1 = mul.i64 v0, v0
              v2 = mul.i64 v1, v1
              v3 = mul.i64 v0, v2
              store v3
            }"#]],
    );
    // cast(cast(f32 -> f64) -> f32) -> identity
    let f = Expr::symbol("f", DType::F32, &[3]);
    check_ir(
        &f.astype(DType::F64).astype(DType::F32),
        expect![[r#"
            kernel(in0: f32) -> store f32 {
              v0 = load.f32 in0
              store v0
            }"#]],
    );
}

#[test]
fn explain_counts_bytes_like_the_issue_says() {
    let n = 100_000_000usize;
    let x = Expr::symbol("x", DType::F64, &[n]);
    let ex = Session::new()
        .explain(&((5.0 * &x + 4.0) * &x + 1.0))
        .unwrap();
    assert_eq!(ex.kernels.len(), 1);
    assert_eq!(ex.bytes_fused, 16 * n as u64);
    assert_eq!(ex.bytes_unfused, 72 * n as u64);
    let text = ex.to_string();
    assert!(text.contains("fused 1.6 GB"), "{text}");
    assert!(text.contains("unfused 7.2 GB"), "{text}");
    assert!(text.contains("saved 5.6 GB (78%)"), "{text}");
    // sum(x*x): one kernel reading x (8n) and writing the 8-byte result, against NumPy's
    // x*x temporary (read 8n, write 8n, read 8n).
    let ex = Session::new().explain(&(&x * &x).sum()).unwrap();
    assert_eq!(ex.kernels.len(), 1);
    assert_eq!(
        (ex.bytes_fused, ex.bytes_unfused),
        (8 * n as u64 + 8, 24 * n as u64 + 8)
    );
    let json: serde_json::Value = serde_json::from_str(&ex.to_json()).unwrap();
    assert_eq!(json["bytes_fused"], 8 * n as u64 + 8);
    assert_eq!(json["kernels"][0]["device"], "cpu");
}

/// The whole plan, as `explain` prints it after the graph: kernels, what they read and write,
/// the shared-subexpression decisions and the bytes.
fn check_plan(exprs: &[Expr], expected: Expect) {
    let ex = Session::new().explain_many_with(exprs, &[]).unwrap();
    let text = ex.to_string();
    let plan = text
        .split_once("\nkernels:")
        .map(|(_, p)| format!("kernels:{p}"))
        .unwrap();
    expected.assert_eq(&plan);
}

#[test]
fn standardization_is_three_kernels_sharing_the_mean() {
    let x = x();
    check_plan(
        &[(&x - x.mean()) / x.std()],
        expect![[r#"
        kernels: 3 (fused), device: cpu
        kernel 0 over [1000] reducing axes [0], reads [x], writes [t0], moves 8.0 kB read + 8 B written
          kernel(in0: f64) -> reduce.sum f64 {
            v0 = load.f64 in0
            reduce.sum v0
          }
        kernel 1 over [1000] reducing axes [0], reads [x, t0], writes [t1], moves 8.0 kB read + 8 B written
          kernel(in0: f64, in1: f64) -> reduce.sum f64 {
            v0 = load.f64 in0
            v1 = load.f64 in1
            v2 = const.f64 1000.0
            v3 = div.f64 v1, v2
            v4 = sub.f64 v0, v3
            v5 = mul.f64 v4, v4
            reduce.sum v5
          }
        kernel 2 over [1000], reads [x, t0, t1], writes [t2], moves 8.0 kB read + 8.0 kB written
          kernel(in0: f64, in1: f64, in2: f64) -> store f64 {
            v0 = load.f64 in0
            v1 = load.f64 in1
            v2 = const.f64 1000.0
            v3 = div.f64 v1, v2
            v4 = sub.f64 v0, v3
            v5 = load.f64 in2
            v6 = div.f64 v5, v2
            v7 = sqrt.f64 v6
            v8 = div.f64 v4, v7
            store v8
          }
        bytes moved: fused 32.0 kB (32040 B), unfused 80.1 kB (80104 B), saved 48.1 kB (60%)"#]],
    );
}

#[test]
fn softmax_recomputes_exp_rather_than_writing_it() {
    let x = x();
    let e = (&x - x.max()).exp();
    check_plan(
        &[&e / e.sum()],
        expect![[r#"
        kernels: 3 (fused), device: cpu
        kernel 0 over [1000] reducing axes [0], reads [x], writes [t0], moves 8.0 kB read + 8 B written
          kernel(in0: f64) -> reduce.max f64 {
            v0 = load.f64 in0
            reduce.max v0
          }
        kernel 1 over [1000] reducing axes [0], reads [x, t0], writes [t1], moves 8.0 kB read + 8 B written
          kernel(in0: f64, in1: f64) -> reduce.sum f64 {
            v0 = load.f64 in0
            v1 = load.f64 in1
            v2 = sub.f64 v0, v1
            v3 = exp.f64 v2
            reduce.sum v3
          }
        kernel 2 over [1000], reads [x, t0, t1], writes [t2], moves 8.0 kB read + 8.0 kB written
          kernel(in0: f64, in1: f64, in2: f64) -> store f64 {
            v0 = load.f64 in0
            v1 = load.f64 in1
            v2 = sub.f64 v0, v1
            v3 = exp.f64 v2
            v4 = load.f64 in2
            v5 = div.f64 v3, v4
            store v5
          }
        shared %2 used by 2 kernels: recomputed (its users move 16024 B recomputing it, 32016 B if it is materialized once)
        shared %3 used by 2 kernels: recomputed (its users move 16024 B recomputing it, 32016 B if it is materialized once)
        bytes moved: fused 32.0 kB (32040 B), unfused 64.0 kB (64032 B), saved 32.0 kB (50%)"#]],
    );
}

#[test]
fn min_max_sum_read_x_once() {
    let x = x();
    check_plan(
        &[x.min(), x.max(), x.sum()],
        expect![[r#"
        kernels: 1 (fused), device: cpu
        kernel 0 over [1000] reducing axes [0], reads [x], writes [t0, t1, t2], moves 8.0 kB read + 24 B written
          kernel(in0: f64) -> reduce.min f64, reduce.max f64, reduce.sum f64 {
            v0 = load.f64 in0
            reduce.min v0
            reduce.max v0
            reduce.sum v0
          }
        bytes moved: fused 8.0 kB (8024 B), unfused 24.0 kB (24024 B), saved 16.0 kB (67%)"#]],
    );
    // Within one expression too.
    check_plan(
        &[x.max() - x.min()],
        expect![[r#"
        kernels: 2 (fused), device: cpu
        kernel 0 over [1000] reducing axes [0], reads [x], writes [t0, t1], moves 8.0 kB read + 16 B written
          kernel(in0: f64) -> reduce.max f64, reduce.min f64 {
            v0 = load.f64 in0
            reduce.max v0
            reduce.min v0
          }
        kernel 1 over [], reads [t0, t1], writes [t2], moves 16 B read + 8 B written
          kernel(in0: f64, in1: f64) -> store f64 {
            v0 = load.f64 in0
            v1 = load.f64 in1
            v2 = sub.f64 v0, v1
            store v2
          }
        bytes moved: fused 8.0 kB (8040 B), unfused 16.0 kB (16040 B), saved 8.0 kB (50%)"#]],
    );
}

#[test]
fn axis_reductions_fuse_their_producers() {
    let a = Expr::symbol("a", DType::F64, &[100, 10]);
    let b = Expr::symbol("b", DType::F64, &[100, 10]);
    use fusebox::{ReduceOp, Reduction};
    check_plan(
        &[(&a - &b)
            .abs()
            .reduce(Reduction::Op(ReduceOp::Max), Some(&[1]), false)],
        expect![[r#"
            kernels: 1 (fused), device: cpu
            kernel 0 over [100, 10] reducing axes [1], reads [a, b], writes [t0], moves 16.0 kB read + 800 B written
              kernel(in0: f64, in1: f64) -> reduce.max f64 {
                v0 = load.f64 in0
                v1 = load.f64 in1
                v2 = sub.f64 v0, v1
                v3 = abs.f64 v2
                reduce.max v3
              }
            bytes moved: fused 16.8 kB (16800 B), unfused 48.8 kB (48800 B), saved 32.0 kB (66%)"#]],
    );
    check_plan(
        &[a.reduce(Reduction::Mean, Some(&[0]), false)],
        expect![[r#"
        kernels: 2 (fused), device: cpu
        kernel 0 over [100, 10] reducing axes [0], reads [a], writes [t0], moves 8.0 kB read + 80 B written
          kernel(in0: f64) -> reduce.sum f64 {
            v0 = load.f64 in0
            reduce.sum v0
          }
        kernel 1 over [10], reads [t0], writes [t1], moves 80 B read + 80 B written
          kernel(in0: f64) -> store f64 {
            v0 = load.f64 in0
            v1 = const.f64 100.0
            v2 = div.f64 v0, v1
            store v2
          }
        bytes moved: fused 8.2 kB (8240 B), unfused 8.2 kB (8240 B), saved 0 B (0%)"#]],
    );
    // Integer sums accumulate in int64; var along an axis keeps the mean's axis for broadcasting.
    let i = Expr::symbol("i", DType::I32, &[100, 10]);
    check_plan(
        &[i.reduce(Reduction::Var { ddof: 1 }, Some(&[-1]), true)],
        expect![[r#"
            kernels: 3 (fused), device: cpu
            kernel 0 over [100, 10] reducing axes [1], reads [i], writes [t0], moves 4.0 kB read + 800 B written
              kernel(in0: i32) -> reduce.sum f64 {
                v0 = load.i32 in0
                v1 = cast.i32.f64 v0
                reduce.sum v1
              }
            kernel 1 over [100, 10] reducing axes [1], reads [i, t0], writes [t1], moves 4.8 kB read + 800 B written
              kernel(in0: i32, in1: f64) -> reduce.sum f64 {
                v0 = load.i32 in0
                v1 = cast.i32.f64 v0
                v2 = load.f64 in1
                v3 = const.f64 10.0
                v4 = div.f64 v2, v3
                v5 = sub.f64 v1, v4
                v6 = mul.f64 v5, v5
                reduce.sum v6
              }
            kernel 2 over [100, 1], reads [t1], writes [t2], moves 800 B read + 800 B written
              kernel(in0: f64) -> store f64 {
                v0 = load.f64 in0
                v1 = const.f64 9.0
                v2 = div.f64 v0, v1
                store v2
              }
            shared %1 used by 2 kernels: recomputed (its users move 8800 B recomputing it, 28800 B if it is materialized once)
            row form (cpu): 3 passes per block of 100 of 100 rows, moves 4.0 kB read + 800 B written from memory (4800 B; the kernels above: 12000 B)
            pass 0 over [100, 10] reducing axes [1], reads [i], writes [t0 (block, in cache)]
              kernel(in0: i32) -> reduce.sum f64 {
                v0 = load.i32 in0
                v1 = cast.i32.f64 v0
                reduce.sum v1
              }
            pass 1 over [100, 10] reducing axes [1], reads [i, t0], writes [t1 (block, in cache)]
              kernel(in0: i32, in1: f64) -> reduce.sum f64 {
                v0 = load.i32 in0
                v1 = cast.i32.f64 v0
                v2 = load.f64 in1
                v3 = const.f64 10.0
                v4 = div.f64 v2, v3
                v5 = sub.f64 v1, v4
                v6 = mul.f64 v5, v5
                reduce.sum v6
              }
            pass 2 over [100, 1], reads [t1], writes [t2]
              kernel(in0: f64) -> store f64 {
                v0 = load.f64 in0
                v1 = const.f64 9.0
                v2 = div.f64 v0, v1
                store v2
              }
            bytes moved: fused 12.0 kB (12000 B), unfused 45.6 kB (45600 B), saved 33.6 kB (74%)"#]],
    );
}

#[test]
fn a_wide_shared_subexpression_is_materialized() {
    // `t` reads four arrays; recomputing it in both kernels reads them twice (64n bytes), while
    // writing it once and reading it back moves 56n.
    let v: Vec<Expr> = ["a", "b", "c", "d"]
        .iter()
        .map(|n| Expr::symbol(n, DType::F64, &[1000]))
        .collect();
    let t = &v[0] * &v[1] + &v[2] * &v[3];
    check_plan(
        &[&t / t.sum()],
        expect![[r#"
        kernels: 3 (fused), device: cpu
        kernel 0 over [1000], reads [a, b, c, d], writes [t0], moves 32.0 kB read + 8.0 kB written
          kernel(in0: f64, in1: f64, in2: f64, in3: f64) -> store f64 {
            v0 = load.f64 in0
            v1 = load.f64 in1
            v2 = mul.f64 v0, v1
            v3 = load.f64 in2
            v4 = load.f64 in3
            v5 = mul.f64 v3, v4
            v6 = add.f64 v2, v5
            store v6
          }
        kernel 1 over [1000] reducing axes [0], reads [t0], writes [t1], moves 8.0 kB read + 8 B written
          kernel(in0: f64) -> reduce.sum f64 {
            v0 = load.f64 in0
            reduce.sum v0
          }
        kernel 2 over [1000], reads [t0, t1], writes [t2], moves 8.0 kB read + 8.0 kB written
          kernel(in0: f64, in1: f64) -> store f64 {
            v0 = load.f64 in0
            v1 = load.f64 in1
            v2 = div.f64 v0, v1
            store v2
          }
        shared %6 used by 2 kernels: materialized (its users move 64008 B recomputing it, 56008 B if it is materialized once)
        bytes moved: fused 64.0 kB (64016 B), unfused 96.0 kB (96016 B), saved 32.0 kB (33%)"#]],
    );
}

#[test]
fn division_becomes_a_product_only_by_exact_powers_of_two() {
    // 2^31 - 2^-22 is not a power of two though its log2 rounds to 31.0 (found by the parser
    // fuzzer: `(b + 2) / nextafter(astype(1e308, int32), 2)` was 1 ULP off).
    let x = x();
    let near = -(2f64.powi(31) - 2f64.powi(-22));
    check_ir(
        &(&x / near),
        expect![[r#"
            kernel(in0: f64) -> store f64 {
              v0 = load.f64 in0
              v1 = const.f64 -2147483647.9999998
              v2 = div.f64 v0, v1
              store v2
            }"#]],
    );
    check_ir(
        &(&x / 0.25),
        expect![[r#"
        kernel(in0: f64) -> store f64 {
          v0 = load.f64 in0
          v1 = const.f64 4.0
          v2 = mul.f64 v0, v1
          store v2
        }"#]],
    );
}
