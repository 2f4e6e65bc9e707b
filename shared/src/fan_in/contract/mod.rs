//! The ledger's contract suites: the primitives every [`super::LedgerStore`] must honour and
//! the fan-in protocol over them ([`super::Ledger`]), including a crash between any two
//! writes. The in-memory double runs them in unit tests; the DynamoDB adapter against the
//! local servers (`tests/tests/contracts.rs`).

pub mod crash;
mod fan_in;
pub mod ledger;
