//! Where portfolios come from. `relance-stdlib` implements [`PortfolioSource`] for CSV, JSON
//! and Excel files; an embedding program implements it for its ERP, database or API.

use crate::model::Portfolio;

/// A source of portfolios (an accounting export, an ERP connection, …).
pub trait PortfolioSource {
    /// The error type of this source.
    type Error: std::error::Error + Send + Sync + 'static;
    /// A short description for messages (`folder examples/portfolio`).
    fn describe(&self) -> String;
    /// Reads the whole portfolio. Must be all or nothing: on error, return no portfolio.
    fn load(&self) -> Result<Portfolio, Self::Error>;
}
