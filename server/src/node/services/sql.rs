//! `ordo.v1.Sql`: SQL sessions over gRPC.
//!
//! A session is a [`ordo_sql::Session`] that lives as long as its stream.
//! A brief statement (a few point reads: transaction control, a short
//! INSERT, a SELECT by primary key; [`Session::is_brief_here`]) runs on
//! the session's task; any other runs on a blocking thread, as it may scan.
//! Either way the commit is awaited on the task, holding no thread. Results
//! stream back as typed rows in bounded messages.

use crate::node::handles::{Commits, Snapshots};
use crate::node::services::Stopping;
use crate::node::sql::{NodeSqlStore, SqlPrincipal};
use ordo_log::Sequencer;
use ordo_proto::v1::{
    SqlColumn, SqlColumns, SqlDone, SqlFailure, SqlReady, SqlRequest, SqlResponse, SqlRow, SqlRows,
    SqlValue, sql_response, sql_server::Sql, sql_value,
};
use ordo_sql::parse::Parsed;
use ordo_sql::{QueryResult, Session, SqlError, Step, Value};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};

/// Rows per `rows` message: results stream in pieces, never one huge message.
pub const ROWS_PER_MESSAGE: usize = 500;
/// Responses buffered per session before the server waits for the client.
const RESPONSE_QUEUE: usize = 16;

/// Serves SQL sessions.
pub struct SqlService {
    snapshots: Snapshots,
    commits: Commits,
    principal: SqlPrincipal,
    sequencer: Arc<dyn Sequencer>,
    stopping: Stopping,
}

impl SqlService {
    /// SQL over `snapshots`, committing through `commits` as `principal`;
    /// `sequencer`'s tail tells when the replica has caught up enough to
    /// know whether the SQL stream exists.
    pub fn new(
        snapshots: Snapshots,
        commits: Commits,
        principal: SqlPrincipal,
        sequencer: Arc<dyn Sequencer>,
    ) -> Self {
        Self {
            snapshots,
            commits,
            principal,
            sequencer,
            stopping: super::never_stopping(),
        }
    }

    /// Ends open SQL sessions between statements once `stopping` turns
    /// true (a statement running finishes first; an open block rolls
    /// back), with UNAVAILABLE saying why, so that they do not hold the
    /// node's graceful shutdown open until its grace runs out.
    pub fn stopping_with(self, stopping: Stopping) -> Self {
        Self { stopping, ..self }
    }

    async fn ensure_stream(&self) -> Result<(), Status> {
        self.principal
            .ensure_stream(&self.snapshots, &self.commits, &*self.sequencer)
            .await
            .map_err(Status::unavailable)
    }

    fn new_session(&self) -> Session<NodeSqlStore> {
        Session::new(NodeSqlStore::new(
            self.snapshots.clone(),
            self.commits.clone(),
            self.principal.clone(),
            tokio::runtime::Handle::current(),
        ))
    }
}

type ResponseStream = Pin<Box<dyn Stream<Item = Result<SqlResponse, Status>> + Send>>;

fn message(kind: sql_response::Kind) -> Result<SqlResponse, Status> {
    Ok(SqlResponse { kind: Some(kind) })
}

fn wire_value(v: &Value) -> SqlValue {
    use sql_value::Kind;
    SqlValue {
        kind: Some(match v {
            Value::Null => Kind::Null(true),
            Value::Int(i) => Kind::Int(*i),
            Value::Double(d) => Kind::Double(*d),
            Value::Bool(b) => Kind::Boolean(*b),
            Value::Text(s) => Kind::Text(s.clone()),
            Value::Bytes(b) => Kind::Bytes(b.clone()),
            Value::Timestamp(t) => Kind::TimestampMicros(*t),
        }),
    }
}

fn failure(e: &SqlError) -> sql_response::Kind {
    let (line, column) = match e {
        SqlError::Syntax { line, column, .. } => (line.unwrap_or(0), column.unwrap_or(0)),
        _ => (0, 0),
    };
    sql_response::Kind::Failure(SqlFailure {
        sqlstate: e.sqlstate().to_string(),
        message: e.to_string(),
        line,
        column,
    })
}

/// One statement's result as response messages: columns, rows in pieces,
/// done.
fn result_messages(result: QueryResult, elapsed_micros: u64) -> Vec<sql_response::Kind> {
    let mut messages = Vec::with_capacity(2 + result.rows.len().div_ceil(ROWS_PER_MESSAGE));
    if !result.columns.is_empty() {
        messages.push(sql_response::Kind::Columns(SqlColumns {
            columns: result
                .columns
                .iter()
                .map(|c| SqlColumn {
                    name: c.name.clone(),
                    r#type: c.data_type.map_or("", |t| t.name()).to_string(),
                })
                .collect(),
        }));
        for chunk in result.rows.chunks(ROWS_PER_MESSAGE) {
            messages.push(sql_response::Kind::Rows(SqlRows {
                rows: chunk
                    .iter()
                    .map(|row| SqlRow {
                        values: row.iter().map(wire_value).collect(),
                    })
                    .collect(),
            }));
        }
    }
    messages.push(sql_response::Kind::Done(SqlDone {
        tag: result.tag,
        version: result.version.unwrap_or(0),
        elapsed_micros,
    }));
    messages
}

/// The session went away: the client closed its stream, or a statement's
/// thread panicked (already reported to the client).
struct SessionGone;

type Responses = mpsc::Sender<Result<SqlResponse, Status>>;

async fn send(out: &Responses, kind: sql_response::Kind) -> Result<(), SessionGone> {
    out.send(message(kind)).await.map_err(|_| SessionGone)
}

/// Longest SQL text a session parses on its own task. Parsing runs at a
/// few megabytes a second, so a script up to [`ordo_sql::parse::MAX_SQL_BYTES`]
/// would hold a runtime thread for hundreds of milliseconds; a statement
/// of a few hundred bytes costs less than the hand-off to a blocking thread.
pub const INLINE_PARSE_BYTES: usize = 4 * 1024;

/// The statements of `sql`, parsed on the task if the text is short, else
/// on a blocking thread.
async fn parse(sql: String, out: &Responses) -> Result<Vec<Result<Parsed, SqlError>>, SessionGone> {
    if sql.len() <= INLINE_PARSE_BYTES {
        return Ok(ordo_sql::parse::parse_each(&sql));
    }
    on_blocking_thread(out, move || ordo_sql::parse::parse_each(&sql)).await
}

/// Runs `work` on a blocking thread; if it panics, tells the client and
/// ends the session (its state went with the thread).
async fn on_blocking_thread<T: Send + 'static>(
    out: &Responses,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, SessionGone> {
    match tokio::task::spawn_blocking(work).await {
        Ok(done) => Ok(done),
        Err(e) => {
            let status = Status::internal(format!("SQL session failed: {e}"));
            let _ = out.send(Err(status)).await;
            Err(SessionGone)
        }
    }
}

/// Runs one request's SQL on `session`, sending every response; returns
/// the session for the next request.
async fn run_request(
    mut session: Session<NodeSqlStore>,
    sql: String,
    out: &Responses,
) -> Result<Session<NodeSqlStore>, SessionGone> {
    for statement in parse(sql, out).await? {
        let started = Instant::now();
        let (back, result) = run_statement(session, statement, out).await?;
        session = back;
        match result {
            Ok(result) => {
                let elapsed = started.elapsed().as_micros() as u64;
                for kind in result_messages(result, elapsed) {
                    send(out, kind).await?;
                }
            }
            Err(e) => {
                send(out, failure(&e)).await?;
                break;
            }
        }
    }
    send(out, ready(&session)).await?;
    Ok(session)
}

/// Runs one statement: up to its commit on this task if it is brief
/// ([`Session::is_brief_here`]: a few point reads), else on a blocking
/// thread (it may scan); then waits for its commit, if any, on this task.
///
/// Before, every statement ran on a blocking thread that also waited for
/// its commit: four thread hand-offs per single-row insert, which on this
/// class of machine cost more CPU than the statement itself
/// (docs/BENCHMARKS.md, "Fast writes, fourth round").
async fn run_statement(
    mut session: Session<NodeSqlStore>,
    statement: Result<Parsed, SqlError>,
    out: &Responses,
) -> Result<(Session<NodeSqlStore>, Result<QueryResult, SqlError>), SessionGone> {
    let brief = match &statement {
        Ok(parsed) => session.is_brief_here(parsed),
        Err(_) => true,
    };
    let (session, started) = match brief {
        true => {
            let started = session.start_statement(statement);
            (session, started)
        }
        false => {
            let run = move || {
                let started = session.start_statement(statement);
                (session, started)
            };
            on_blocking_thread(out, run).await?
        }
    };
    let result = match started {
        Ok(Step::Done(result)) => Ok(result),
        Ok(Step::Commit(pending)) => {
            let (commit, awaiting) = pending.into_parts();
            let outcome = session.store().commit_async(commit).await;
            outcome.and_then(|outcome| awaiting.finish(outcome))
        }
        Err(e) => Err(e),
    };
    Ok((session, result))
}

fn ready(session: &Session<NodeSqlStore>) -> sql_response::Kind {
    sql_response::Kind::Ready(SqlReady {
        in_transaction: session.in_transaction(),
    })
}

#[tonic::async_trait]
impl Sql for SqlService {
    type SessionStream = ResponseStream;
    type ExecuteStream = ResponseStream;

    async fn session(
        &self,
        request: Request<Streaming<SqlRequest>>,
    ) -> Result<Response<Self::SessionStream>, Status> {
        self.ensure_stream().await?;
        let mut requests = request.into_inner();
        let (out, responses) = mpsc::channel(RESPONSE_QUEUE);
        let mut session = self.new_session();
        let stop = super::stop_signalled(self.stopping.clone());
        tokio::spawn(async move {
            tokio::pin!(stop);
            loop {
                let next = tokio::select! {
                    biased;
                    () = &mut stop => {
                        let stopping = Status::unavailable(
                            "the node is stopping; the session ended (an open transaction block was rolled back)",
                        );
                        let _ = out.send(Err(stopping)).await;
                        return;
                    }
                    next = requests.message() => next,
                };
                let sql = match next {
                    Ok(Some(request)) => request.sql,
                    // The client ended the stream: an open block rolls back
                    // with the session.
                    Ok(None) => return,
                    Err(status) => {
                        let _ = out.send(Err(status)).await;
                        return;
                    }
                };
                session = match run_request(session, sql, &out).await {
                    Ok(session) => session,
                    Err(SessionGone) => return,
                };
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(responses),
        )))
    }

    async fn execute(
        &self,
        request: Request<SqlRequest>,
    ) -> Result<Response<Self::ExecuteStream>, Status> {
        self.ensure_stream().await?;
        let sql = request.into_inner().sql;
        let (out, responses) = mpsc::channel(RESPONSE_QUEUE);
        let session = self.new_session();
        tokio::spawn(async move {
            let _ = run_request(session, sql, &out).await;
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(responses),
        )))
    }
}
