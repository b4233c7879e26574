//! The optimizer: `Expr` -> typed hash-consed graph -> simplified graph -> fused kernels.
//!
//! Stages, in order: [`mod@lower`] (type checking against the actual input shapes, explicit casts,
//! CSE by hash-consing), [`rewrite`] (constant folding and the algebraic rule table, applied as
//! nodes are built), dead-node removal ([`graph::Graph::compact`]), and [`fuse`] (partition
//! into kernels and emission of their IR).
//!
//! Architecture invariant: `opt` never imports a backend; it hands the session a list of
//! [`fuse::Step`]s whose kernels are verified kernel IR.
pub mod epilogue;
pub mod fuse;
pub mod graph;
pub mod lower;
pub mod rewrite;

pub use epilogue::RowPlan;
pub use fuse::{partition, ArgViews, Buf, Partition, Plan, SharedChoice, Step};
pub use graph::{AxisMask, Graph, Node, NodeId};
pub use lower::{lower, lower_many, Lowered, PlanInput};
