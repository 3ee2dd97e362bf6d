//! relance batteries.
