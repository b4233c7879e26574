//! TEMPORARY stub (the reference evaluator is being written on its own branch).
use crate::array::DynArray;
use crate::error::{Error, Result};
use crate::expr::Expr;
use std::collections::HashMap;
pub fn evaluate(_expr: &Expr, _bindings: &HashMap<String, DynArray>) -> Result<DynArray> {
    Err(Error::Device("reference evaluator not merged yet".into()))
}
