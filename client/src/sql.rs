//! SQL sessions: statements sent over one `ordo.v1.Sql/Session` stream.
//!
//! A session keeps server-side state (an open `BEGIN` block) for as long as
//! it lives; dropping it ends the stream, which rolls an open block back.

use crate::{Client, ClientError};
use ordo_proto::v1::{
    SqlFailure, SqlRequest, SqlResponse, SqlValue, sql_client::SqlClient, sql_response, sql_value,
};
use tokio::sync::mpsc;
use tonic::Streaming;

/// Requests a session may queue before the client waits.
const REQUEST_QUEUE: usize = 4;

/// One statement's result.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatementResult {
    /// Column names and type names (empty for statements without rows).
    pub columns: Vec<(String, String)>,
    /// Rows.
    pub rows: Vec<Vec<SqlValue>>,
    /// The command tag (`SELECT 2`, `INSERT 0 1`, ...).
    pub tag: String,
    /// Commit or snapshot version (0 when neither applies).
    pub version: u64,
    /// Server-side time, in microseconds.
    pub elapsed_micros: u64,
}

/// What one request produced: the statements that ran, and the failure
/// that stopped the rest, if any.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SqlOutcome {
    /// Results of the statements that completed, in order.
    pub results: Vec<StatementResult>,
    /// The error of the statement that failed.
    pub failure: Option<SqlFailure>,
    /// Whether a `BEGIN` block is open after the request.
    pub in_transaction: bool,
}

/// A SQL session on a node.
pub struct SqlSession {
    requests: mpsc::Sender<SqlRequest>,
    responses: Streaming<SqlResponse>,
}

impl Client {
    /// Opens a SQL session.
    pub async fn sql_session(&self) -> Result<SqlSession, ClientError> {
        let (requests, queued) = mpsc::channel(REQUEST_QUEUE);
        let responses = SqlClient::new(self.channel.clone())
            .session(tokio_stream::wrappers::ReceiverStream::new(queued))
            .await?
            .into_inner();
        Ok(SqlSession {
            requests,
            responses,
        })
    }
}

impl SqlSession {
    /// Runs `sql` (one or more statements) and collects every response.
    pub async fn run(&mut self, sql: &str) -> Result<SqlOutcome, ClientError> {
        self.requests
            .send(SqlRequest {
                sql: sql.to_string(),
            })
            .await
            .map_err(|_| {
                ClientError::Status(tonic::Status::unavailable("the SQL session ended"))
            })?;
        let mut outcome = SqlOutcome::default();
        let mut current = StatementResult::default();
        loop {
            let Some(response) = self.responses.message().await? else {
                return Err(ClientError::Status(tonic::Status::unavailable(
                    "the server ended the SQL session",
                )));
            };
            match response.kind {
                Some(sql_response::Kind::Columns(c)) => {
                    current.columns = c.columns.into_iter().map(|c| (c.name, c.r#type)).collect();
                }
                Some(sql_response::Kind::Rows(r)) => {
                    current
                        .rows
                        .extend(r.rows.into_iter().map(|row| row.values));
                }
                Some(sql_response::Kind::Done(done)) => {
                    current.tag = done.tag;
                    current.version = done.version;
                    current.elapsed_micros = done.elapsed_micros;
                    outcome.results.push(std::mem::take(&mut current));
                }
                Some(sql_response::Kind::Failure(f)) => outcome.failure = Some(f),
                Some(sql_response::Kind::Ready(r)) => {
                    outcome.in_transaction = r.in_transaction;
                    return Ok(outcome);
                }
                None => {}
            }
        }
    }
}

/// A value as text, the way `psql` prints it (NULL as an empty cell is
/// ambiguous, so it prints `NULL`).
pub fn value_text(v: &SqlValue) -> String {
    use sql_value::Kind;
    match &v.kind {
        None | Some(Kind::Null(_)) => "NULL".into(),
        Some(Kind::Int(i)) => i.to_string(),
        Some(Kind::Double(d)) => d.to_string(),
        Some(Kind::Boolean(b)) => if *b { "t" } else { "f" }.into(),
        Some(Kind::Text(s)) => s.clone(),
        Some(Kind::Bytes(b)) => {
            let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
            format!("\\x{hex}")
        }
        Some(Kind::TimestampMicros(t)) => timestamp_text(*t),
    }
}

/// `YYYY-MM-DD HH:MM:SS[.ffffff]` of microseconds since the epoch.
fn timestamp_text(micros: i64) -> String {
    let seconds = micros.div_euclid(1_000_000);
    let fraction = micros.rem_euclid(1_000_000);
    let days = seconds.div_euclid(86_400);
    let of_day = seconds.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let mut out = format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60
    );
    if fraction != 0 {
        out.push('.');
        out.push_str(format!("{fraction:06}").trim_end_matches('0'));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_print_like_the_server() {
        assert_eq!(timestamp_text(0), "1970-01-01 00:00:00");
        assert_eq!(timestamp_text(-1), "1969-12-31 23:59:59.999999");
        assert_eq!(timestamp_text(951_782_400_500_000), "2000-02-29 00:00:00.5");
    }
}
