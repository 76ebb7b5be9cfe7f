//! Every way a SQL statement can fail, each with its SQLSTATE.
//!
//! The SQLSTATE codes are PostgreSQL's, so tools and people who know them
//! can branch on them: `40001` means "retry the transaction".

/// Why a statement failed. Nothing a failed statement wrote is kept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SqlError {
    /// The text is larger than [`crate::parse::MAX_SQL_BYTES`].
    #[error("SQL text of {len} bytes exceeds the limit of {max} bytes")]
    TooLong {
        /// Length of the text.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The text is not valid SQL; `line` and `column` are 1-based when known.
    #[error("syntax error{}: {message}", position(*.line, *.column))]
    Syntax {
        /// What the parser expected or found.
        message: String,
        /// Line of the error.
        line: Option<u64>,
        /// Column of the error.
        column: Option<u64>,
    },
    /// Valid SQL that ordo does not implement.
    #[error("not supported: {0}")]
    NotSupported(String),
    /// No table of that name.
    #[error("table \"{0}\" does not exist")]
    UnknownTable(String),
    /// No column of that name in scope.
    #[error("column \"{0}\" does not exist")]
    UnknownColumn(String),
    /// A column name matches more than one table in scope.
    #[error("column reference \"{0}\" is ambiguous")]
    AmbiguousColumn(String),
    /// No index of that name.
    #[error("index \"{0}\" does not exist")]
    UnknownIndex(String),
    /// A table, index or column of that name already exists.
    #[error("{kind} \"{name}\" already exists")]
    AlreadyExists {
        /// "table", "index" or "column".
        kind: &'static str,
        /// The name.
        name: String,
    },
    /// A definition that cannot work (no primary key, bad default, ...).
    #[error("invalid definition: {0}")]
    InvalidDefinition(String),
    /// Values or operands of types that do not fit together.
    #[error("type mismatch: {message}")]
    TypeMismatch {
        /// What did not fit.
        message: String,
    },
    /// A number outside its type's range, or an overflowing operation.
    #[error("out of range: {message}")]
    OutOfRange {
        /// Which value.
        message: String,
    },
    /// Division (or modulo) by zero.
    #[error("division by zero")]
    DivisionByZero,
    /// NULL written into a NOT NULL column.
    #[error("null value in column \"{column}\" of table \"{table}\" violates not-null constraint")]
    NotNull {
        /// The table.
        table: String,
        /// The column.
        column: String,
    },
    /// A second row with the same primary key or unique index key.
    #[error("duplicate key value violates unique constraint \"{constraint}\": {detail}")]
    DuplicateKey {
        /// The primary key (`<table>_pkey`) or the unique index.
        constraint: String,
        /// The key, as `(col)=(value)`.
        detail: String,
    },
    /// An aggregate or grouping rule was broken.
    #[error("grouping error: {0}")]
    Grouping(String),
    /// Another transaction changed what this one read; retry it.
    #[error("could not serialize access due to a concurrent update: {0}")]
    SerializationFailure(String),
    /// The transaction failed earlier; only ROLLBACK (or COMMIT, which rolls
    /// back) is accepted until it ends.
    #[error("current transaction is aborted, commands ignored until end of transaction block")]
    InFailedTransaction,
    /// A statement that is not allowed where it was used.
    #[error("{0}")]
    InvalidTransactionState(String),
    /// A named limit was exceeded.
    #[error("limit exceeded: {0}")]
    LimitExceeded(String),
    /// The store refused the transaction for lack of permission.
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// `AS OF VERSION` (or a transaction's snapshot) below the log's
    /// retention horizon: that history is no longer kept.
    #[error(
        "snapshot too old: version {asked} is compacted; history is kept from version {oldest} on"
    )]
    SnapshotTooOld {
        /// The version asked for.
        asked: u64,
        /// The oldest version still read.
        oldest: u64,
    },
    /// The store underneath failed, or holds data this crate cannot read.
    #[error("storage error: {0}")]
    Store(String),
}

fn position(line: Option<u64>, column: Option<u64>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!(" at line {l}, column {c}"),
        _ => String::new(),
    }
}

impl SqlError {
    /// A feature of SQL that ordo does not have, named by `what`.
    pub fn unsupported(what: impl std::fmt::Display) -> Self {
        SqlError::NotSupported(what.to_string())
    }

    /// The five-character SQLSTATE code of the error (PostgreSQL's codes).
    pub fn sqlstate(&self) -> &'static str {
        match self {
            SqlError::TooLong { .. } | SqlError::LimitExceeded(_) => "54000",
            SqlError::Syntax { .. } => "42601",
            SqlError::NotSupported(_) => "0A000",
            SqlError::UnknownTable(_) => "42P01",
            SqlError::UnknownColumn(_) => "42703",
            SqlError::AmbiguousColumn(_) => "42702",
            SqlError::UnknownIndex(_) => "42704",
            SqlError::AlreadyExists { kind, .. } => match *kind {
                "column" => "42701",
                _ => "42P07",
            },
            SqlError::InvalidDefinition(_) => "42P16",
            SqlError::TypeMismatch { .. } => "42804",
            SqlError::OutOfRange { .. } => "22003",
            SqlError::DivisionByZero => "22012",
            SqlError::NotNull { .. } => "23502",
            SqlError::DuplicateKey { .. } => "23505",
            SqlError::Grouping(_) => "42803",
            SqlError::SerializationFailure(_) => "40001",
            SqlError::InFailedTransaction => "25P02",
            SqlError::InvalidTransactionState(_) => "25000",
            SqlError::PermissionDenied(_) => "42501",
            SqlError::SnapshotTooOld { .. } => "72000",
            SqlError::Store(_) => "58000",
        }
    }

    /// Whether running the same transaction again may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, SqlError::SerializationFailure(_))
    }
}
