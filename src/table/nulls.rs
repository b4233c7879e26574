//! Missing values as expressions: each nullable column `c` has a bool validity symbol, and
//! [`nullify`] splits an expression into its values and its validity, both ordinary
//! expressions over the columns and their validity symbols, so the kernels that compute them
//! are the ordinary fused kernels.
//!
//! `is_valid(x)` and `fill_null(x, v)` are `where`s on marker symbols (bool scalars no data
//! binds), kept lazy in the tree so that they compose with reductions and filters; [`nullify`]
//! replaces them by what they mean.
use crate::dtype::{DType, Scalar};
use crate::error::{Error, Result};
use crate::expr::{Expr, ExprKind};
use std::collections::{HashMap, HashSet};

/// Prefix of the names this module gives its symbols (no column name holds it in practice,
/// and none can collide by accident: it is a control character).
const MARK: char = '\u{1}';
/// The condition of the `where` that [`is_valid`] builds.
const IS_VALID: &str = "\u{1}is_valid";
/// The condition of the `where` that [`fill_null`] builds.
const FILL_NULL: &str = "\u{1}fill_null";

/// Whether `name` is a symbol of this module (a marker or a validity symbol).
pub(crate) fn is_marker(name: &str) -> bool {
    name.starts_with(MARK)
}

/// The name of column `col`'s validity symbol.
pub(crate) fn valid_name(col: &str) -> String {
    format!("{MARK}valid:{col}")
}

/// The column whose validity symbol `name` is.
pub(crate) fn valid_of(name: &str) -> Option<&str> {
    name.strip_prefix(MARK)?.strip_prefix("valid:")
}

fn marker(name: &str) -> Expr {
    Expr::symbol(name, DType::Bool, &[])
}

/// `is_valid(x)`: true where `x` is present.
pub(crate) fn is_valid(x: &Expr) -> Expr {
    crate::expr::where_(marker(IS_VALID), x.astype(DType::Bool), false)
}

/// `fill_null(x, v)`: `x`, with `v` where `x` is null.
pub(crate) fn fill_null(x: &Expr, v: Expr) -> Expr {
    crate::expr::where_(marker(FILL_NULL), x.clone(), v)
}

/// The children of a node.
pub(crate) fn children(e: &Expr) -> Vec<&Expr> {
    match e.kind() {
        ExprKind::Symbol(_) | ExprKind::Data { .. } | ExprKind::Literal(_) => vec![],
        ExprKind::Unary(_, x)
        | ExprKind::Cast(_, x)
        | ExprKind::Reduce(_, x, _)
        | ExprKind::View(_, x) => vec![x],
        ExprKind::Binary(_, a, b) => vec![a, b],
        ExprKind::Where(c, a, b) => vec![c, a, b],
    }
}

/// Visit every node of `e` once (shared nodes once), iteratively (trees may be deep).
pub(crate) fn walk(e: &Expr, f: &mut dyn FnMut(&Expr)) {
    let mut seen = HashSet::new();
    let mut stack = vec![e];
    while let Some(n) = stack.pop() {
        if !seen.insert(n.ptr_id()) {
            continue;
        }
        f(n);
        stack.extend(children(n));
    }
}

/// Rebuild node `e` of the same kind over new children `kids` (in [`children`]'s order).
pub(crate) fn rebuild(e: &Expr, kids: Vec<Expr>) -> Expr {
    let mut k = kids.into_iter();
    let mut next = || k.next().expect("one child per child");
    match e.kind() {
        ExprKind::Symbol(_) | ExprKind::Data { .. } | ExprKind::Literal(_) => e.clone(),
        ExprKind::Unary(op, _) => Expr::unary(*op, next()),
        ExprKind::Cast(d, _) => next().astype(*d),
        ExprKind::Reduce(r, _, spec) => next().reduce_with(*r, spec.clone()),
        ExprKind::View(op, _) => next().view(op.clone()),
        ExprKind::Binary(op, _, _) => {
            let a = next();
            Expr::binary(*op, a, next())
        }
        ExprKind::Where(_, _, _) => {
            let c = next();
            let a = next();
            Expr::select(c, a, next())
        }
    }
}

/// `a & b` of two optional validities (`None`: all valid).
pub(crate) fn and(a: Option<Expr>, b: Option<Expr>) -> Option<Expr> {
    match (a, b) {
        (None, v) | (v, None) => v,
        (Some(a), Some(b)) if a.ptr_id() == b.ptr_id() => Some(a),
        (Some(a), Some(b)) => Some(a & b),
    }
}

/// Splits expressions (free of reductions) into values and validity. `nullable(c)`: whether
/// column `c` may hold nulls; `null_scalars`: data nodes (reduction results) that are null.
pub(crate) struct Nullifier<'a> {
    pub nullable: &'a dyn Fn(&str) -> bool,
    pub null_scalars: &'a HashSet<usize>,
    memo: HashMap<usize, (Expr, Option<Expr>)>,
}

impl<'a> Nullifier<'a> {
    pub fn new(nullable: &'a dyn Fn(&str) -> bool, null_scalars: &'a HashSet<usize>) -> Self {
        Nullifier {
            nullable,
            null_scalars,
            memo: HashMap::new(),
        }
    }

    /// `(values, validity)` of `e`; validity `None` means never null.
    pub fn split(&mut self, e: &Expr) -> Result<(Expr, Option<Expr>)> {
        // Post-order without recursion: a node is split once its children are.
        let mut stack = vec![(e, false)];
        while let Some((n, expanded)) = stack.pop() {
            if self.memo.contains_key(&n.ptr_id()) {
                continue;
            }
            if !expanded {
                stack.push((n, true));
                for k in children(n) {
                    stack.push((k, false));
                }
                continue;
            }
            let r = self.split_node(n)?;
            self.memo.insert(n.ptr_id(), r);
        }
        Ok(self.memo[&e.ptr_id()].clone())
    }

    fn get(&self, e: &Expr) -> (Expr, Option<Expr>) {
        self.memo[&e.ptr_id()].clone()
    }

    fn split_node(&mut self, n: &Expr) -> Result<(Expr, Option<Expr>)> {
        Ok(match n.kind() {
            // The condition of an is_valid/fill_null `where`, read by `split_where`.
            ExprKind::Symbol(name) if is_marker(name) => (n.clone(), None),
            ExprKind::Symbol(name) => {
                let shape = n.shape()?;
                let v = (self.nullable)(name)
                    .then(|| Expr::symbol(&valid_name(name), DType::Bool, &shape));
                (n.clone(), v)
            }
            ExprKind::Data { .. } => {
                let null = self.null_scalars.contains(&n.ptr_id());
                (n.clone(), null.then(|| Expr::literal(Scalar::Bool(false))))
            }
            ExprKind::Literal(_) => (n.clone(), None),
            ExprKind::Reduce(..) => {
                return Err(Error::Argument {
                    message: "a reduction left in a row expression (internal)".into(),
                })
            }
            ExprKind::View(op, _) => {
                // A table streams its rows in chunks: a shape operation would mix chunks.
                return Err(Error::Argument {
                    message: format!("{} applies to arrays, not to table columns", op.name()),
                });
            }
            ExprKind::Where(c, a, b) => self.split_where(n, c, a, b)?,
            _ => {
                let kids: Vec<(Expr, Option<Expr>)> =
                    children(n).into_iter().map(|k| self.get(k)).collect();
                let mut valid = None;
                let mut values = vec![];
                for (v, m) in kids {
                    values.push(v);
                    valid = and(valid, m);
                }
                (rebuild(n, values), valid)
            }
        })
    }

    fn split_where(
        &mut self,
        n: &Expr,
        c: &Expr,
        a: &Expr,
        b: &Expr,
    ) -> Result<(Expr, Option<Expr>)> {
        let marker = match c.kind() {
            ExprKind::Symbol(s) if s == IS_VALID || s == FILL_NULL => Some(s.as_str()),
            _ => None,
        };
        match marker {
            Some(IS_VALID) => {
                // where(IS_VALID, astype(x, bool), false): the validity of x, never null.
                let x = match a.kind() {
                    ExprKind::Cast(_, x) => x,
                    _ => a,
                };
                let (xv, xm) = self.get(x);
                let shape_of_x = xv.astype(DType::Bool).ne_(xv.astype(DType::Bool));
                // `x != x | true` is a bool of x's shape that is all true: the validity of a
                // never-null x, shaped like x.
                let all_valid = shape_of_x | true;
                Ok((xm.unwrap_or(all_valid), None))
            }
            Some(_) => {
                // where(FILL_NULL, x, v): x where valid, else v; null only where both are.
                let ((xv, xm), (vv, vm)) = (self.get(a), self.get(b));
                let Some(xm) = xm else {
                    return Ok((rebuild_where(n, a, &xv, &vv), None));
                };
                let values = crate::expr::where_(&xm, &xv, &vv);
                let valid = vm.map(|vm| xm.clone() | vm);
                Ok((values, valid))
            }
            None => {
                // SQL's CASE: the branch taken decides, and a null condition gives null.
                let ((cv, cm), (av, am), (bv, bm)) = (self.get(c), self.get(a), self.get(b));
                let values = crate::expr::where_(&cv, &av, &bv);
                let branch = match (am, bm) {
                    (None, None) => None,
                    (am, bm) => Some(crate::expr::where_(
                        &cv,
                        am.unwrap_or_else(|| Expr::from(true)),
                        bm.unwrap_or_else(|| Expr::from(true)),
                    )),
                };
                Ok((values, and(cm, branch)))
            }
        }
    }
}

/// `where(FILL_NULL, x, v)` of a never-null `x`: just `x` (in the dtype the `where` gives).
fn rebuild_where(n: &Expr, _a: &Expr, xv: &Expr, _vv: &Expr) -> Expr {
    match n.dtype() {
        Ok(d) if xv.dtype().ok() != Some(d) => xv.astype(d),
        _ => xv.clone(),
    }
}
