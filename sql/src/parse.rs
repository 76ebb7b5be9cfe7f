//! Parsing SQL text into statements.
//!
//! The script is tokenized once; tokens keep their line and column, so an
//! error in the fifth statement of a script points into the script, not into
//! the statement. Each statement may end in ordo's time-travel clause,
//! `AS OF VERSION n`, which is lifted out before sqlparser sees the tokens
//! (PostgreSQL has no such clause for sqlparser to parse).

pub use crate::error::SqlError;
use sqlparser::ast::Statement;
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer};

/// Largest SQL text accepted in one call. Scripts bigger than this are split
/// by the caller; the parser's work and the AST grow with the input.
pub const MAX_SQL_BYTES: usize = 1024 * 1024;

/// Deepest expression nesting accepted: bounds the parser's recursion.
pub const MAX_NESTING_DEPTH: usize = 64;

/// One parsed statement.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    /// The statement.
    pub statement: Statement,
    /// The version given by a trailing `AS OF VERSION n`, if any.
    pub as_of: Option<u64>,
}

/// Parses `sql` (one or more statements separated by `;`); fails if any
/// statement fails to parse.
pub fn parse(sql: &str) -> Result<Vec<Parsed>, SqlError> {
    parse_each(sql).into_iter().collect()
}

/// Parses each statement of `sql` on its own, so a script can run the
/// statements before the first one that does not parse (as `psql` does).
/// Text that cannot be split into statements at all (too long, an
/// unterminated string) gives a single error.
pub fn parse_each(sql: &str) -> Vec<Result<Parsed, SqlError>> {
    match tokenize(sql) {
        Err(e) => vec![Err(e)],
        Ok(tokens) => {
            let dialect = PostgreSqlDialect {};
            split_statements(tokens)
                .into_iter()
                .filter(|tokens| tokens.iter().any(|t| !is_blank(&t.token)))
                .map(|tokens| parse_one(&dialect, tokens))
                .collect()
        }
    }
}

fn tokenize(sql: &str) -> Result<Vec<TokenWithSpan>, SqlError> {
    if sql.len() > MAX_SQL_BYTES {
        return Err(SqlError::TooLong {
            len: sql.len(),
            max: MAX_SQL_BYTES,
        });
    }
    Tokenizer::new(&PostgreSqlDialect {}, sql)
        .tokenize_with_location()
        .map_err(|e| SqlError::Syntax {
            message: e.message,
            line: Some(e.location.line),
            column: Some(e.location.column),
        })
}

/// Splits a script's tokens at each `;` (string literals and comments are
/// single tokens, so a `;` inside them does not split).
fn split_statements(tokens: Vec<TokenWithSpan>) -> Vec<Vec<TokenWithSpan>> {
    let mut statements = vec![Vec::new()];
    for token in tokens {
        if token.token == Token::SemiColon {
            statements.push(Vec::new());
        } else if let Some(current) = statements.last_mut() {
            current.push(token);
        }
    }
    statements
}

fn is_blank(token: &Token) -> bool {
    matches!(token, Token::Whitespace(_) | Token::EOF)
}

fn parse_one(
    dialect: &PostgreSqlDialect,
    mut tokens: Vec<TokenWithSpan>,
) -> Result<Parsed, SqlError> {
    let as_of = take_as_of(&mut tokens)?;
    let end = tokens
        .iter()
        .rev()
        .find(|t| !is_blank(&t.token))
        .map(|t| t.span.end);
    let mut parser = Parser::new(dialect)
        .with_recursion_limit(MAX_NESTING_DEPTH)
        .with_tokens_with_locations(tokens);
    let statement = parser
        .parse_statement()
        .map_err(|e| match syntax_error(e) {
            // Errors at the end of input carry no position: point past the last token.
            SqlError::Syntax {
                message,
                line: None,
                column: None,
            } if !message.contains("nested deeper") => SqlError::Syntax {
                message,
                line: end.map(|l| l.line),
                column: end.map(|l| l.column),
            },
            other => other,
        })?;
    let next = parser.peek_token();
    if next.token != Token::EOF {
        return Err(SqlError::Syntax {
            message: format!("unexpected {} after the end of the statement", next.token),
            line: Some(next.span.start.line),
            column: Some(next.span.start.column),
        });
    }
    Ok(Parsed { statement, as_of })
}

/// Removes a trailing `AS OF VERSION <integer>` and returns the integer.
fn take_as_of(tokens: &mut Vec<TokenWithSpan>) -> Result<Option<u64>, SqlError> {
    let solid: Vec<usize> = tokens
        .iter()
        .enumerate()
        .filter(|(_, t)| !is_blank(&t.token))
        .map(|(i, _)| i)
        .rev()
        .take(4)
        .collect();
    let [number, version, of, as_] = solid[..] else {
        return Ok(None);
    };
    let word = |i: usize, text: &str| matches!(&tokens[i].token, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(text));
    if !(word(as_, "as") && word(of, "of") && word(version, "version")) {
        return Ok(None);
    }
    let at = &tokens[number];
    let Token::Number(digits, _) = &at.token else {
        return Err(SqlError::Syntax {
            message: "AS OF VERSION takes a non-negative integer".into(),
            line: Some(at.span.start.line),
            column: Some(at.span.start.column),
        });
    };
    let version = digits.parse().map_err(|_| SqlError::Syntax {
        message: format!("AS OF VERSION {digits}: not a version number"),
        line: Some(at.span.start.line),
        column: Some(at.span.start.column),
    })?;
    tokens.truncate(as_);
    Ok(Some(version))
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
            parse("CREATE TABLE t (id BIGINT PRIMARY KEY, v TEXT); SELECT v FROM t WHERE id = 1;;")
                .expect("valid SQL");
        assert_eq!(statements.len(), 2);
        assert!(matches!(statements[0].statement, Statement::CreateTable(_)));
        assert!(matches!(statements[1].statement, Statement::Query(_)));
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
    fn as_of_version_is_lifted_out() {
        let parsed =
            parse("SELECT * FROM t WHERE id > 3 AS OF VERSION 17; SELECT 'as of version 2'")
                .expect("valid SQL");
        assert_eq!(parsed[0].as_of, Some(17));
        assert_eq!(parsed[1].as_of, None);
        assert!(parse("SELECT 1 AS OF VERSION x").is_err());
    }

    #[test]
    fn oversized_and_deeply_nested_input_is_refused() {
        let huge = "a".repeat(MAX_SQL_BYTES + 1);
        assert!(matches!(parse(&huge), Err(SqlError::TooLong { .. })));
        let nested = format!("SELECT {}1{}", "(".repeat(500), ")".repeat(500));
        assert!(matches!(parse(&nested), Err(SqlError::Syntax { .. })));
    }
}
