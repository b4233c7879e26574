//! numexpr strings from Rust: `Session::evaluate` binds names to arrays (borrowed, any
//! strides), `;` computes several results in one plan, and `compile_str` makes a function of
//! declared names.
//!
//! `cargo run --example numexpr_string` (tests/examples.rs runs it).
use fusebox::{ArgView, DType, Session};
use ndarray::{s, Array1};

pub fn main() -> fusebox::Result<()> {
    let s = Session::new();
    let a = Array1::linspace(0.0, 1.0, 1001);
    let b = Array1::linspace(-1.0, 1.0, 2002);
    let b = b.slice(s![..;2]); // a strided view, not copied

    // One expression, like numexpr.evaluate("2*a + 3*b**2", local_dict=...).
    let r = s.evaluate("2*a + 3*b**2", &[("a", (&a).into()), ("b", b.into())])?;
    let r = r.into_f64()?;
    assert_eq!(r[[0]], 2.0 * 0.0 + 3.0 * 1.0);

    // Several, separated by `;`: one plan, and min, max and the sum of squares read `a` once.
    let bind = [("a", ArgView::from(&a))];
    let stats = s.evaluate_many("min(a); max(a); sum(a*a)", &bind)?;
    let (lo, hi) = (stats[0].scalar::<f64>()?, stats[1].scalar::<f64>()?);
    assert_eq!((lo, hi), (0.0, 1.0));

    // A compiled function of declared names, called in the order declared.
    let f = s.compile_str("where(x > 0, log(x), 0)", &[("x", DType::F64, &[1001])])?;
    let logs: Array1<f64> = f.call_as(&[(&a).into()])?;
    assert_eq!(logs[1000], 0.0);
    assert_eq!(logs[0], 0.0);

    println!("2*a + 3*b**2: {} values, first {}", r.len(), r[[0]]);
    println!(
        "min {lo}, max {hi}, sum of squares {}",
        stats[2].scalar::<f64>()?
    );
    Ok(())
}
