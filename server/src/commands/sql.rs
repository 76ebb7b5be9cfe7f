//! `ordo sql`: an interactive SQL shell, and a script runner.
//!
//! Interactive use reads statements with line editing and history
//! (rustyline); a statement may span lines and ends with `;`. Results print
//! as aligned tables with a row count and the time taken. `-c` and `-f` run
//! statements non-interactively and stop at the first failure with exit
//! status 1, so scripts can rely on it.

use anyhow::Context;
use clap::Args;
use ordo_client::sql::{SqlOutcome, SqlSession, StatementResult, value_text};
use ordo_client::{Client, ClientError};
use ordo_proto::v1::SqlFailure;
use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;

/// Options of `ordo sql`.
#[derive(Debug, Args)]
pub struct SqlArgs {
    /// The node to talk to: `host:port` or `http://host:port`.
    #[arg(long, env = "ORDO_ENDPOINT", default_value = ordo_client::DEFAULT_ENDPOINT)]
    pub endpoint: String,
    /// Run this SQL and exit (may be repeated; runs in order, in one session).
    #[arg(short = 'c', long = "command")]
    pub commands: Vec<String>,
    /// Run the SQL in this file and exit.
    #[arg(short = 'f', long = "file")]
    pub file: Option<PathBuf>,
    /// History file for interactive use [default: ~/.ordo_sql_history].
    #[arg(long, env = "ORDO_SQL_HISTORY")]
    pub history: Option<PathBuf>,
}

const HELP: &str = "\
Statements end with ';' and may span lines. Meta-commands:
  \\dt             list tables
  \\d              list tables
  \\d TABLE        describe a table (columns, types, keys, indexes)
  \\timing         toggle printing of each statement's time
  \\?              this help
  \\q              quit
SQLSTATE 40001 means another transaction won a conflict: run yours again.
Time travel: SELECT ... AS OF VERSION n;";

/// Runs `ordo sql`; returns the process exit status.
pub async fn run(args: SqlArgs) -> anyhow::Result<i32> {
    let client = Client::connect(&args.endpoint).await?;
    let mut session = client
        .sql_session()
        .await
        .with_context(|| format!("opening a SQL session on {}", args.endpoint))?;
    let scripted = !args.commands.is_empty() || args.file.is_some();
    if scripted {
        let mut scripts = args.commands.clone();
        if let Some(path) = &args.file {
            scripts.push(
                std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?,
            );
        }
        return run_scripts(&mut session, &scripts).await;
    }
    if !std::io::stdin().is_terminal() {
        let mut script = String::new();
        std::io::stdin().read_to_string(&mut script)?;
        return run_scripts(&mut session, &[script]).await;
    }
    interactive(session, args.history).await
}

/// Runs scripts in order; the first failure ends the run with status 1.
async fn run_scripts(session: &mut SqlSession, scripts: &[String]) -> anyhow::Result<i32> {
    let mut out = std::io::stdout().lock();
    for script in scripts {
        let script = match script.trim().starts_with('\\') {
            false => script.clone(),
            true => match meta_command(script.trim()) {
                Meta::Sql(sql) => sql,
                Meta::Quit => return Ok(0),
                Meta::Help | Meta::Timing => {
                    writeln!(out, "{HELP}")?;
                    continue;
                }
                Meta::Unknown => {
                    eprintln!("invalid command {}; try \\?", script.trim());
                    return Ok(1);
                }
            },
        };
        let outcome = session.run(&script).await?;
        print_outcome(&mut out, &outcome, false)?;
        if let Some(failure) = &outcome.failure {
            eprint!("{}", failure_text(failure));
            return Ok(1);
        }
    }
    Ok(0)
}

async fn interactive(mut session: SqlSession, history: Option<PathBuf>) -> anyhow::Result<i32> {
    let mut editor = rustyline::DefaultEditor::new()?;
    let history = history.or_else(|| {
        std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".ordo_sql_history"))
    });
    if let Some(path) = &history {
        // A missing history file is normal on first use.
        let _ = editor.load_history(path);
    }
    println!("ordo sql: statements end with ';'. \\? for help, \\q to quit.");
    let mut buffer = String::new();
    let mut timing = true;
    let mut in_transaction = false;
    loop {
        let prompt = match (buffer.is_empty(), in_transaction) {
            (false, _) => "ordo-> ",
            (true, true) => "ordo=*> ",
            (true, false) => "ordo=> ",
        };
        let line = match editor.readline(prompt) {
            Ok(line) => line,
            Err(rustyline::error::ReadlineError::Interrupted) => {
                buffer.clear();
                continue;
            }
            Err(rustyline::error::ReadlineError::Eof) => break,
            Err(e) => return Err(e.into()),
        };
        let trimmed = line.trim();
        if buffer.is_empty() && trimmed.starts_with('\\') {
            let _ = editor.add_history_entry(trimmed);
            match meta_command(trimmed) {
                Meta::Quit => break,
                Meta::Help => println!("{HELP}"),
                Meta::Timing => {
                    timing = !timing;
                    println!("Timing is {}.", if timing { "on" } else { "off" });
                }
                Meta::Sql(sql) => {
                    in_transaction = execute(&mut session, &sql, timing).await?;
                }
                Meta::Unknown => println!("invalid command {trimmed}; try \\?"),
            }
            continue;
        }
        if trimmed.is_empty() && buffer.is_empty() {
            continue;
        }
        buffer.push_str(&line);
        buffer.push('\n');
        if trimmed.ends_with(';') {
            let statement = std::mem::take(&mut buffer);
            let _ = editor.add_history_entry(statement.trim());
            in_transaction = execute(&mut session, &statement, timing).await?;
        }
    }
    if let Some(path) = &history {
        let _ = editor.save_history(path);
    }
    Ok(0)
}

/// Runs SQL typed at the prompt and prints what it returned; returns
/// whether a transaction block is open afterwards.
async fn execute(session: &mut SqlSession, sql: &str, timing: bool) -> anyhow::Result<bool> {
    match session.run(sql).await {
        Ok(outcome) => {
            let mut out = std::io::stdout().lock();
            print_outcome(&mut out, &outcome, timing)?;
            if let Some(failure) = &outcome.failure {
                write!(out, "{}", failure_text(failure))?;
            }
            out.flush()?;
            Ok(outcome.in_transaction)
        }
        Err(ClientError::Status(status)) => {
            anyhow::bail!("the SQL session ended: {}", status.message())
        }
        Err(e) => Err(e.into()),
    }
}

enum Meta {
    Quit,
    Help,
    Timing,
    Sql(String),
    Unknown,
}

fn meta_command(line: &str) -> Meta {
    let mut words = line.split_whitespace();
    match (words.next(), words.next()) {
        (Some("\\q"), _) => Meta::Quit,
        (Some("\\?"), _) => Meta::Help,
        (Some("\\timing"), _) => Meta::Timing,
        (Some("\\dt"), _) | (Some("\\d"), None) => Meta::Sql("SHOW TABLES".into()),
        (Some("\\d"), Some(table)) => Meta::Sql(format!("SHOW COLUMNS FROM {table}")),
        _ => Meta::Unknown,
    }
}

fn print_outcome(out: &mut impl Write, outcome: &SqlOutcome, timing: bool) -> std::io::Result<()> {
    for result in &outcome.results {
        print_result(out, result)?;
        if timing {
            writeln!(out, "Time: {:.3} ms", result.elapsed_micros as f64 / 1000.0)?;
        }
    }
    Ok(())
}

/// How an error prints: the message, SQLSTATE, a position for syntax
/// errors, and a hint for the retryable ones.
pub fn failure_text(failure: &SqlFailure) -> String {
    let mut text = format!(
        "ERROR:  {}\nSQLSTATE: {}\n",
        failure.message, failure.sqlstate
    );
    if failure.line > 0 {
        text.push_str(&format!(
            "LINE {}, COLUMN {}\n",
            failure.line, failure.column
        ));
    }
    if failure.sqlstate == "40001" {
        text.push_str("HINT:  another transaction changed what this one read; run it again.\n");
    }
    text
}

/// Prints a result as `psql` does: an aligned table and a row count, or the
/// command tag for statements without rows.
pub fn print_result(out: &mut impl Write, result: &StatementResult) -> std::io::Result<()> {
    if result.columns.is_empty() {
        return writeln!(out, "{}", result.tag);
    }
    let cells: Vec<Vec<String>> = result
        .rows
        .iter()
        .map(|row| row.iter().map(value_text).collect())
        .collect();
    let numeric: Vec<bool> = result
        .columns
        .iter()
        .map(|(_, t)| matches!(t.as_str(), "BIGINT" | "INT" | "DOUBLE PRECISION"))
        .collect();
    let widths: Vec<usize> = result
        .columns
        .iter()
        .enumerate()
        .map(|(i, (name, _))| {
            cells
                .iter()
                .map(|row| row.get(i).map_or(0, |c| c.chars().count()))
                .chain([name.chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let header: Vec<String> = result
        .columns
        .iter()
        .zip(&widths)
        .map(|((name, _), w)| format!(" {name:^w$} "))
        .collect();
    writeln!(out, "{}", header.join("|").trim_end())?;
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(w + 2)).collect();
    writeln!(out, "{}", rule.join("+"))?;
    for row in &cells {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .zip(&numeric)
            .map(|((cell, w), right)| {
                if *right {
                    format!(" {cell:>w$} ")
                } else {
                    format!(" {cell:<w$} ")
                }
            })
            .collect();
        writeln!(out, "{}", line.join("|").trim_end())?;
    }
    let n = cells.len();
    writeln!(out, "({n} row{})", if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ordo_proto::v1::{SqlValue, sql_value::Kind};

    #[test]
    fn tables_align_and_count_rows() {
        let result = StatementResult {
            columns: vec![
                ("id".into(), "BIGINT".into()),
                ("name".into(), "TEXT".into()),
            ],
            rows: vec![
                vec![
                    SqlValue {
                        kind: Some(Kind::Int(1)),
                    },
                    SqlValue {
                        kind: Some(Kind::Text("ada".into())),
                    },
                ],
                vec![
                    SqlValue {
                        kind: Some(Kind::Int(100)),
                    },
                    SqlValue {
                        kind: Some(Kind::Null(true)),
                    },
                ],
            ],
            tag: "SELECT 2".into(),
            version: 3,
            elapsed_micros: 10,
        };
        let mut out = Vec::new();
        print_result(&mut out, &result).expect("prints");
        let text = String::from_utf8(out).expect("utf-8");
        assert_eq!(
            text,
            " id  | name\n-----+------\n   1 | ada\n 100 | NULL\n(2 rows)\n"
        );
    }

    #[test]
    fn retryable_failures_carry_a_hint() {
        let failure = SqlFailure {
            sqlstate: "40001".into(),
            message: "could not serialize".into(),
            line: 0,
            column: 0,
        };
        assert!(failure_text(&failure).contains("HINT"));
    }
}
