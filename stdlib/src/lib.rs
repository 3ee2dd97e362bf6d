//! relance batteries.

pub mod load;
pub mod terms;
