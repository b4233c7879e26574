//! Strings to fusebox expressions: the one place that parses. When the core gains
//! `Session::evaluate(src, bindings)`, this module is what it replaces.
use crate::cache::ArgSig;
use fusebox::parse::{parse, CONSTANT_NAMES};
use fusebox::{Expr, Result};
use std::cell::RefCell;

/// The expression `src` with each of `names` bound as `args` says: arrays become symbols of
/// their dtype and (current) shape, weak scalars literals, unbound constant names constants.
pub fn build_expr(
    src: &str,
    names: &[String],
    args: &[ArgSig],
    shapes: &[&[usize]],
) -> Result<Expr> {
    parse(src, &|n: &str| {
        let i = names.iter().position(|x| x == n)?;
        match &args[i] {
            ArgSig::Array(dt, _) => Some(Expr::symbol(n, *dt, shapes[i])),
            ArgSig::Weak(k) => Some(Expr::literal(k.scalar())),
            ArgSig::Constant => None,
        }
    })
}

/// The constant names (`pi`, `e`, `nan`, `inf`) `src` uses as names (it has parsed already);
/// a caller's variable of that name takes precedence over the constant, as in numexpr.
pub fn constant_names(src: &str) -> Vec<String> {
    let seen = RefCell::new(Vec::<String>::new());
    let _ = parse(src, &|n: &str| {
        if !CONSTANT_NAMES.contains(&n) {
            // Any stand-in will do: only the names asked for matter here.
            return Some(Expr::symbol(n, fusebox::DType::F64, &[]));
        }
        if !seen.borrow().iter().any(|s| s == n) {
            seen.borrow_mut().push(n.to_string());
        }
        None
    });
    seen.into_inner()
}
