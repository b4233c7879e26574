//! fusebox (crate docs are written below, once the pipeline is in place).
pub mod array;
pub mod cpu;
pub mod dtype;
pub mod error;
pub mod expr;
pub mod gpu;
pub mod interp;
pub mod kir;
pub mod npy;
pub mod ops;
pub mod opt;
pub mod parse;
pub mod reference;
pub mod semantics;
pub mod session;

pub use array::{ArgView, DynArray, Element};
pub use dtype::{DType, Scalar};
pub use error::{Error, Result};
pub use expr::{functions, where_, Expr};
pub use session::{Compiled, Device, Explain, KernelInfo, Options, Session, Stats};
