//! The relance engine: compile scenarios, evaluate a portfolio as of a date, emit a plan.
#![allow(missing_docs)]

pub mod calendar;
pub mod history;
pub mod law;
pub mod model;
pub mod money;
pub mod plan;
pub mod script;
