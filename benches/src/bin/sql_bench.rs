//! `ordo-sql-bench`: point selects and single-row inserts over SQL, on ordo
//! and on PostgreSQL, with the same schema, data and client counts.
//!
//! Both targets get the same SQL text, sent unprepared (ordo has no
//! prepared statements, so PostgreSQL uses its simple query protocol and
//! parses each statement too). Every client is its own connection.
//! `scripts/bench-sql-vs-postgres.sh` starts both servers and runs this.

use anyhow::Context;
use clap::Parser;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

/// Command-line options.
#[derive(Debug, Parser)]
struct Args {
    /// ordo's gRPC endpoint; omit to skip ordo.
    #[arg(long)]
    ordo: Option<String>,
    /// A tokio-postgres connection string; omit to skip PostgreSQL.
    #[arg(long)]
    postgres: Option<String>,
    /// Rows loaded before measuring.
    #[arg(long, default_value_t = 100_000)]
    rows: u64,
    /// Client counts, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    clients: Vec<usize>,
    /// Seconds each (target, workload, clients) cell runs.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
}

/// Rows per INSERT while loading.
const LOAD_BATCH: u64 = 1000;

/// Ids of inserted rows: one counter for every client and cell, starting
/// far above the loaded rows, so inserts never collide.
static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1 << 40);

/// One connection to a target.
enum Conn {
    Ordo(ordo_client::sql::SqlSession),
    Postgres(tokio_postgres::Client),
}

impl Conn {
    async fn run(&mut self, sql: &str) -> anyhow::Result<()> {
        match self {
            Conn::Ordo(session) => {
                let outcome = session.run(sql).await?;
                if let Some(failure) = outcome.failure {
                    anyhow::bail!("ordo: {} ({})", failure.message, failure.sqlstate);
                }
            }
            Conn::Postgres(client) => {
                client.simple_query(sql).await?;
            }
        }
        Ok(())
    }
}

#[derive(Clone, Copy, Debug)]
enum Target {
    Ordo,
    Postgres,
}

async fn connect(args: &Args, target: Target) -> anyhow::Result<Conn> {
    Ok(match target {
        Target::Ordo => {
            let endpoint = args.ordo.as_deref().context("no ordo endpoint")?;
            let client = ordo_client::Client::connect(endpoint).await?;
            Conn::Ordo(client.sql_session().await?)
        }
        Target::Postgres => {
            let config = args
                .postgres
                .as_deref()
                .context("no postgres connection string")?;
            let (client, connection) =
                tokio_postgres::connect(config, tokio_postgres::NoTls).await?;
            tokio::spawn(connection);
            Conn::Postgres(client)
        }
    })
}

async fn load(conn: &mut Conn, rows: u64) -> anyhow::Result<()> {
    conn.run("DROP TABLE IF EXISTS bench").await?;
    conn.run("CREATE TABLE bench (id BIGINT PRIMARY KEY, name TEXT NOT NULL, score INT)")
        .await?;
    let mut start = 0;
    while start < rows {
        let end = (start + LOAD_BATCH).min(rows);
        let mut sql = String::from("INSERT INTO bench VALUES ");
        for id in start..end {
            let sep = if id == start { "" } else { ", " };
            let _ = write!(sql, "{sep}({id}, 'user-{id}', {})", id % 1000);
        }
        conn.run(&sql).await?;
        start = end;
    }
    Ok(())
}

#[derive(Clone, Copy, Debug)]
enum Workload {
    PointSelect,
    InsertOne,
}

/// What one cell measured.
struct Cell {
    ops: u64,
    elapsed: Duration,
    latencies: Vec<u32>,
}

impl Cell {
    fn per_second(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64()
    }
    fn percentile(&self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return 0.0;
        }
        let i = ((self.latencies.len() - 1) as f64 * p).round() as usize;
        f64::from(self.latencies[i]) / 1000.0
    }
}

async fn client_loop(
    mut conn: Conn,
    workload: Workload,
    client: usize,
    rows: u64,
    until: Instant,
) -> anyhow::Result<Vec<u32>> {
    let mut latencies = Vec::new();
    let mut rng = ordo_txn::testkit::XorShift::new(0x9E37_79B9_7F4A_7C15u64 ^ (client as u64 + 1));
    while Instant::now() < until {
        let sql = match workload {
            Workload::PointSelect => {
                format!(
                    "SELECT name, score FROM bench WHERE id = {}",
                    rng.below(rows)
                )
            }
            Workload::InsertOne => {
                let id = NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                format!("INSERT INTO bench VALUES ({id}, 'new-{id}', 1)")
            }
        };
        let started = Instant::now();
        conn.run(&sql).await?;
        latencies.push(started.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
    }
    Ok(latencies)
}

async fn measure(
    args: &Args,
    target: Target,
    workload: Workload,
    clients: usize,
) -> anyhow::Result<Cell> {
    let mut conns = Vec::with_capacity(clients);
    for _ in 0..clients {
        conns.push(connect(args, target).await?);
    }
    let started = Instant::now();
    let until = started + Duration::from_secs(args.seconds);
    let tasks: Vec<_> = conns
        .into_iter()
        .enumerate()
        .map(|(client, conn)| tokio::spawn(client_loop(conn, workload, client, args.rows, until)))
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    Ok(Cell {
        ops: latencies.len() as u64,
        elapsed,
        latencies,
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut targets = Vec::new();
    if args.ordo.is_some() {
        targets.push(Target::Ordo);
    }
    if args.postgres.is_some() {
        targets.push(Target::Postgres);
    }
    anyhow::ensure!(!targets.is_empty(), "give --ordo and/or --postgres");
    println!("| target | workload | clients | ops/s | p50 ms | p99 ms | max ms |");
    println!("|---|---|---|---|---|---|---|");
    for &target in &targets {
        let mut conn = connect(&args, target).await?;
        let loading = Instant::now();
        load(&mut conn, args.rows).await?;
        eprintln!(
            "{target:?}: loaded {} rows in {:.1} s",
            args.rows,
            loading.elapsed().as_secs_f64()
        );
        for workload in [Workload::PointSelect, Workload::InsertOne] {
            for &clients in &args.clients {
                let cell = measure(&args, target, workload, clients).await?;
                println!(
                    "| {target:?} | {workload:?} | {clients} | {:.0} | {:.2} | {:.2} | {:.2} |",
                    cell.per_second(),
                    cell.percentile(0.5),
                    cell.percentile(0.99),
                    cell.percentile(1.0),
                );
            }
        }
    }
    Ok(())
}
