//! Scaling-law fitting (`syllabus fit`): read a loss table (our sweep's `results.csv` or a
//! published ColPret table), apply the Hitchhiker's-guide protocol, and fit
//!
//! * the **Chinchilla form** L(N, D) = E + A/N^α + B/D^β ([`chinchilla`]), by a
//!   Hoffmann-style Huber fit on log residuals from a 1,024-start L-BFGS grid and by
//!   curve_fit-style least squares from p0 (as ColPret, arXiv 2410.11840), or
//! * **loss vs compute** L = β·C^α per group, with the crossover compute of two groups
//!   ([`compute`]; Languini Kitchen, arXiv 2309.11197).
//!
//! Folders and files by concern: [`input`] (CSV layouts and the column mapping),
//! [`protocol`] (filters, early-checkpoint cuts, holdout, ARE), [`bootstrap`] (resampling and
//! percentile intervals), [`fit`] (one run end to end, serialisable report), `report`
//! (terminal rendering).

mod error;
mod report;

pub mod bootstrap;
pub mod chinchilla;
pub mod compute;
pub mod fit;
pub mod input;
pub mod protocol;

pub use bootstrap::UnitChoice;
pub use error::ScalingError;
pub use fit::{fit_dataset, fit_file, FitOptions, FitReport, FitResult, Form, Method};
pub use input::{read_table, Dataset, Format, Observation};
pub use protocol::{Cut, Filter};
