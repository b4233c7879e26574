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
