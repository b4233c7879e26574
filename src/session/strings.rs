//! Numexpr strings from code: [`Session::evaluate`], [`Session::evaluate_many`] and
//! [`Session::compile_str`]. Names resolve against the bindings (or declarations) with their
//! dtypes and shapes; `;` separates several expressions, computed as one plan like the CLI's
//! `eval`. A string seen before with bindings of the same names, dtypes and shapes is not parsed
//! again (the parsed expressions are kept), so its plan comes from the session's plan cache.
use super::Session;
use crate::array::{ArgView, DynArray};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::expr::Expr;
use crate::Compiled;
use std::collections::HashMap;
use std::sync::Mutex;

/// Strings a session keeps parsed.
const MAX_PARSED: usize = 256;

/// A string and its names' dtypes and shapes.
type ParseKey = (String, Vec<(String, DType, Vec<usize>)>);

/// Parsed strings, by source and bindings.
#[derive(Default)]
pub(super) struct Parsed(Mutex<HashMap<ParseKey, Vec<Expr>>>);

/// An unknown name, with the names that were bound.
fn with_known(e: Error, known: impl Fn() -> Vec<String>) -> Error {
    match e {
        Error::UnknownName { name, known: k } if k.is_empty() => Error::UnknownName {
            name,
            known: known(),
        },
        e => e,
    }
}

/// Parse `src` (`;`-separated) with each name a symbol of the declared dtype and shape.
fn parse_declared(src: &str, decls: &[(&str, DType, &[usize])]) -> Result<Vec<Expr>> {
    let lookup = |n: &str| {
        decls
            .iter()
            .find(|(m, _, _)| *m == n)
            .map(|(m, d, s)| Expr::symbol(m, *d, s))
    };
    crate::parse::parse_many(src, &lookup)
        .map_err(|e| with_known(e, || decls.iter().map(|d| d.0.to_string()).collect()))
}

impl Session {
    /// Evaluate a numexpr string, its names bound to arrays (any strides, not copied on the
    /// CPU), like `numexpr.evaluate(src, local_dict=...)`:
    ///
    /// ```
    /// use fusebox::Session;
    /// use ndarray::array;
    /// let s = Session::new();
    /// let (a, b) = (array![1.0, 2.0, 3.0], array![4.0, 5.0, 6.0]);
    /// let r = s.evaluate("2*a + sin(b)**2", &[("a", (&a).into()), ("b", (&b).into())])?;
    /// assert_eq!(r.into_f64()?[[0]], 2.0 + 4f64.sin().powi(2));
    /// # Ok::<(), fusebox::Error>(())
    /// ```
    ///
    /// One expression; several separated by `;` are [`Session::evaluate_many`]'s.
    pub fn evaluate(&self, src: &str, bindings: &[(&str, ArgView<'_>)]) -> Result<DynArray> {
        let exprs = self.parse_bound(src, bindings)?;
        if exprs.len() != 1 {
            return Err(Error::Argument {
                message: format!(
                    "`evaluate` gives one result, but the string holds {} expressions separated \
                     by `;`: use `evaluate_many`",
                    exprs.len()
                ),
            });
        }
        let mut out = self.compute_many_with(&exprs, bindings)?;
        Ok(out.swap_remove(0))
    }

    /// Evaluate `;`-separated numexpr strings together, in one plan (`"min(x); max(x);
    /// sum(x*x)"` reads `x` once), one result per expression.
    pub fn evaluate_many(
        &self,
        src: &str,
        bindings: &[(&str, ArgView<'_>)],
    ) -> Result<Vec<DynArray>> {
        let exprs = self.parse_bound(src, bindings)?;
        self.compute_many_with(&exprs, bindings)
    }

    /// Compile a numexpr string (`;`-separated expressions give one result each, see
    /// [`Compiled::call_many`]) into a function of the declared names, in the order declared:
    /// `s.compile_str("a*b + 1", &[("a", DType::F64, &[0]), ("b", DType::F64, &[0])])`.
    /// A length of 0 in a declared shape means any length.
    pub fn compile_str(&self, src: &str, decls: &[(&str, DType, &[usize])]) -> Result<Compiled> {
        let exprs = parse_declared(src, decls)?;
        let params = decls.iter().map(|(n, d, _)| (n.to_string(), *d)).collect();
        self.compile_impl(&exprs, Some(params))
    }

    /// The expressions of `src` with names bound to symbols of the bindings' dtypes and
    /// shapes (parsed once per string and binding signature).
    fn parse_bound(&self, src: &str, bindings: &[(&str, ArgView<'_>)]) -> Result<Vec<Expr>> {
        let key: ParseKey = (
            src.to_string(),
            bindings
                .iter()
                .map(|(n, v)| (n.to_string(), v.dtype(), v.shape().to_vec()))
                .collect(),
        );
        if let Some(e) = self
            .inner
            .parsed
            .0
            .lock()
            .ok()
            .and_then(|m| m.get(&key).cloned())
        {
            return Ok(e);
        }
        let decls: Vec<(&str, DType, &[usize])> = bindings
            .iter()
            .map(|(n, v)| (*n, v.dtype(), v.shape()))
            .collect();
        let exprs = parse_declared(src, &decls)?;
        if let Ok(mut m) = self.inner.parsed.0.lock() {
            if m.len() >= MAX_PARSED {
                m.clear();
            }
            m.insert(key, exprs.clone());
        }
        Ok(exprs)
    }
}
