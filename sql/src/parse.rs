//! Parsing SQL text into statements.

use sqlparser::ast::Statement;
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::{Parser, ParserError};

/// Largest SQL text accepted in one call. Scripts bigger than this are split
/// by the caller; the parser's work and the AST grow with the input.
pub const MAX_SQL_BYTES: usize = 1024 * 1024;

/// Deepest expression nesting accepted: bounds the parser's recursion.
pub const MAX_NESTING_DEPTH: usize = 64;

/// Why SQL text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SqlError {
    /// The text is larger than [`MAX_SQL_BYTES`].
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
}

fn position(line: Option<u64>, column: Option<u64>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!(" at line {l}, column {c}"),
        _ => String::new(),
    }
}

/// Parses `sql` (one or more statements separated by `;`).
pub fn parse(sql: &str) -> Result<Vec<Statement>, SqlError> {
    if sql.len() > MAX_SQL_BYTES {
        return Err(SqlError::TooLong {
            len: sql.len(),
            max: MAX_SQL_BYTES,
        });
    }
    Parser::new(&PostgreSqlDialect {})
        .with_recursion_limit(MAX_NESTING_DEPTH)
        .try_with_sql(sql)
        .and_then(|mut parser| parser.parse_statements())
        .map_err(syntax_error)
}

/// sqlparser reports the position inside its message (" at Line: 3, Column: 7");
/// lift it out so callers can point at it.
fn syntax_error(error: ParserError) -> SqlError {
    let text = match error {
        ParserError::TokenizerError(m) | ParserError::ParserError(m) => m,
        ParserError::RecursionLimitExceeded => {
            return SqlError::Syntax {
                message: format!("expression nested deeper than {MAX_NESTING_DEPTH} levels"),
                line: None,
                column: None,
            };
        }
    };
    let Some(at) = text.rfind(" at Line: ") else {
        return SqlError::Syntax {
            message: text,
            line: None,
            column: None,
        };
    };
    let (message, place) = text.split_at(at);
    let number_after = |label: &str| {
        place
            .split(label)
            .nth(1)
            .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse().ok())
    };
    SqlError::Syntax {
        message: message.to_string(),
        line: number_after("Line: "),
        column: number_after("Column: "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_several_statements() {
        let statements =
            parse("CREATE TABLE t (id BIGINT PRIMARY KEY, v TEXT); SELECT v FROM t WHERE id = 1;")
                .expect("valid SQL");
        assert_eq!(statements.len(), 2);
        assert!(matches!(statements[0], Statement::CreateTable(_)));
        assert!(matches!(statements[1], Statement::Query(_)));
    }

    #[test]
    fn syntax_errors_carry_line_and_column() {
        let error = parse("SELECT 1;\nSELECT * FORM t;").expect_err("misspelt FROM");
        let SqlError::Syntax { line, column, .. } = &error else {
            panic!("expected a syntax error, got {error:?}")
        };
        assert_eq!(*line, Some(2), "{error}");
        assert!(column.is_some_and(|c| c > 1), "{error}");
        assert!(error.to_string().contains("line 2"), "{error}");
    }

    #[test]
    fn oversized_and_deeply_nested_input_is_refused() {
        let huge = "a".repeat(MAX_SQL_BYTES + 1);
        assert!(matches!(parse(&huge), Err(SqlError::TooLong { .. })));
        let nested = format!("SELECT {}1{}", "(".repeat(500), ")".repeat(500));
        assert!(matches!(parse(&nested), Err(SqlError::Syntax { .. })));
    }
}
