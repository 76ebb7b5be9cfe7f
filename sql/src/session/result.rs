//! What a statement returns.

use crate::exec::Row;
use crate::plan::OutputColumn;

/// What a statement returned.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryResult {
    /// Result columns (empty for statements that return no rows).
    pub columns: Vec<OutputColumn>,
    /// Result rows.
    pub rows: Vec<Row>,
    /// The command tag, as PostgreSQL prints it (`INSERT 0 3`, `SELECT 2`).
    pub tag: String,
    /// For a statement that committed: the commit version. For a read: the
    /// snapshot version it read.
    pub version: Option<u64>,
}

impl QueryResult {
    /// The result of a statement that returns no rows, tagged `tag`.
    pub fn command(tag: impl Into<String>) -> Self {
        Self {
            columns: vec![],
            rows: vec![],
            tag: tag.into(),
            version: None,
        }
    }
}
