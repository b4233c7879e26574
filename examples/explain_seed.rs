//! Print the plans for the seed's expressions (poly, Gaussian, sum of squares).
use fusebox::{DType, Session};

fn main() -> fusebox::Result<()> {
    let s = Session::new();
    let n = 1000;
    let x = s.symbol("x", DType::F64, &[n]);
    let poly = (5.0 * &x + 4.0) * &x + 1.0;
    println!("{}\n", s.explain(&poly)?);
    let (mu, sigma) = (-1.33, 1.25);
    let gauss = 1.0 / (sigma * (2.0 * std::f64::consts::PI).sqrt())
        * (-(&x - mu).pow(2.0) / (2.0 * sigma * sigma)).exp();
    println!("{}\n", s.explain(&gauss)?);
    println!("{}", s.explain(&(&x * &x).sum())?);
    Ok(())
}
