//! The comparison report: per workload and client count, every
//! contender's throughput and latency, each ordo figure as a ratio to etcd
//! and as a fraction of the null ceiling of the same path; the goals
//! checked against it; and an SVG chart.

use crate::load::{Contender, Measured, Workload};
use std::fmt::Write as _;

/// One cell of the matrix: a workload at a client count, on every
/// contender that measures it.
#[derive(Debug, Clone)]
pub struct Row {
    /// The workload.
    pub workload: Workload,
    /// Concurrent clients.
    pub clients: usize,
    /// What each contender measured.
    pub results: Vec<(Contender, Measured)>,
}

impl Row {
    /// What `contender` measured in this cell, if it ran.
    pub fn of(&self, contender: Contender) -> Option<&Measured> {
        self.results
            .iter()
            .find(|(c, _)| *c == contender)
            .map(|(_, m)| m)
    }

    /// `contender`'s throughput over `other`'s, if both ran.
    pub fn ratio(&self, contender: Contender, other: Contender) -> Option<f64> {
        let (a, b) = (self.of(contender)?, self.of(other)?);
        Some(ratio(a.throughput(), b.throughput()))
    }
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { f64::INFINITY }
}

fn latencies(m: &Measured) -> String {
    format!(
        "{:.2} / {:.2} / {:.2} / {:.2}",
        m.latency_ms(0.5),
        m.latency_ms(0.99),
        m.latency_ms(0.999),
        m.latency_ms(1.0)
    )
}

fn shown(x: Option<f64>, suffix: &str) -> String {
    x.map_or_else(|| "".into(), |x| format!("{x:.2}{suffix}"))
}

/// The Markdown report; `cluster` picks the goals of a comparison of
/// clusters.
pub fn markdown(rows: &[Row], header: &str, cluster: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# ordo vs etcd\n\n{header}\n");
    let _ = writeln!(
        out,
        "| workload | clients | contender | ops/s | vs etcd | of null ceiling | p50 / p99 / p99.9 / max ms | aborts / retries |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|");
    for r in rows {
        for (contender, m) in &r.results {
            let vs_etcd = match contender {
                Contender::Etcd | Contender::Null | Contender::NullSigned => None,
                c => r.ratio(*c, Contender::Etcd),
            };
            let of_null = contender.ceiling().and_then(|n| r.ratio(*contender, n));
            let _ = writeln!(
                out,
                "| {} | {} | {} | {:.0} | {} | {} | {} | {} / {} |",
                r.workload.name(),
                r.clients,
                contender.name(),
                m.throughput(),
                shown(vs_etcd, "x"),
                shown(of_null.map(|x| 100.0 * x), "%"),
                latencies(m),
                m.aborts,
                m.retries,
            );
        }
    }
    let _ = writeln!(out, "\n## Goals\n");
    let lines = match cluster {
        true => cluster_goals(rows),
        false => goals(rows),
    };
    for line in lines {
        let _ = writeln!(out, "- {line}");
    }
    let _ = writeln!(out, "\n![throughput](chart.svg)");
    out
}

/// The goal of a comparison of clusters: durable puts on ordo's cluster at
/// least etcd's cluster's, at every client count from 16 up.
pub fn cluster_goals(rows: &[Row]) -> Vec<String> {
    let verdict = |ok: bool| if ok { "met" } else { "**not met**" };
    let puts: Vec<String> = rows
        .iter()
        .filter(|r| r.workload == Workload::Put && r.clients >= 16)
        .filter_map(|r| {
            let x = r.ratio(Contender::Ordo, Contender::Etcd)?;
            Some(format!(
                "{}: {x:.2}x at {} clients",
                verdict(x >= 1.0),
                r.clients
            ))
        })
        .collect();
    let shown = if puts.is_empty() {
        "not measured".to_string()
    } else {
        puts.join("; ")
    };
    vec![format!(
        "Cluster durable puts >= etcd cluster durable puts at 16, 64 and 256 clients: {shown}"
    )]
}

/// Each goal of the comparison, met or not, with the figures behind it.
pub fn goals(rows: &[Row]) -> Vec<String> {
    let verdict = |ok: bool| if ok { "met" } else { "**not met**" };
    let cells = |w: Workload| rows.iter().filter(move |r| r.workload == w);
    let mut lines = Vec::new();
    let puts: Vec<String> = cells(Workload::Put)
        .filter(|r| r.clients >= 64)
        .filter_map(|r| {
            let (x, n) = (
                r.ratio(Contender::Ordo, Contender::Etcd)?,
                r.ratio(Contender::Ordo, Contender::Null),
            );
            let ok = x >= 2.0 || n.is_some_and(|n| n >= 0.8);
            Some(format!(
                "{}: {x:.2}x etcd, {} of null at {} clients",
                verdict(ok),
                shown(n.map(|n| 100.0 * n), "%"),
                r.clients
            ))
        })
        .collect();
    lines.push(format!(
        "Durable puts at 64 and 256 clients >= 2x etcd with sessions, or >= 80% of the null ceiling: {}",
        if puts.is_empty() { "not measured".into() } else { puts.join("; ") }
    ));
    let single = cells(Workload::Put).find(|r| r.clients == 1);
    if let Some((o, e)) =
        single.and_then(|r| Some((r.of(Contender::Ordo)?, r.of(Contender::Etcd)?)))
    {
        let (o, e) = (o.latency_ms(0.5), e.latency_ms(0.5));
        lines.push(format!(
            "Single-client put p50 no worse than etcd: {} (ordo {o:.3} ms, etcd {e:.3} ms)",
            verdict(o <= e)
        ));
    }
    let gets: Vec<String> = cells(Workload::Get)
        .filter_map(|r| {
            let n = r.ratio(Contender::Ordo, Contender::Null)?;
            Some(format!(
                "{}: {:.0}% at {} clients",
                verdict(n >= 0.8),
                100.0 * n,
                r.clients
            ))
        })
        .collect();
    lines.push(format!(
        "Point reads >= 80% of the null ceiling: {}",
        if gets.is_empty() {
            "not measured".into()
        } else {
            gets.join("; ")
        }
    ));
    lines
}

/// The colour of each contender's line.
const PALETTE: [(Contender, &str); 6] = [
    (Contender::Ordo, "blue"),
    (Contender::OrdoSigned, "steelblue"),
    (Contender::Etcd, "orange"),
    (Contender::EtcdSerializable, "goldenrod"),
    (Contender::Null, "gray"),
    (Contender::NullSigned, "silver"),
];

/// An SVG chart: one panel per workload, throughput against clients, one
/// line per contender.
pub fn svg(rows: &[Row]) -> String {
    const PANEL_W: f64 = 260.0;
    const PANEL_H: f64 = 200.0;
    const PAD: f64 = 45.0;
    let workloads: Vec<Workload> = Workload::ALL
        .into_iter()
        .filter(|w| rows.iter().any(|r| r.workload == *w))
        .collect();
    let width = PAD + workloads.len() as f64 * (PANEL_W + PAD);
    let height = PANEL_H + 3.0 * PAD;
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    );
    let _ = writeln!(
        out,
        "<text x=\"{PAD}\" y=\"18\" font-size=\"14\">ops/s by clients ({})</text>",
        PALETTE
            .iter()
            .map(|(c, colour)| format!("{colour}: {}", c.name()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for (p, workload) in workloads.iter().enumerate() {
        let x0 = PAD + p as f64 * (PANEL_W + PAD);
        let y0 = 2.0 * PAD;
        let cells: Vec<&Row> = rows.iter().filter(|r| r.workload == *workload).collect();
        let max = cells
            .iter()
            .flat_map(|r| r.results.iter().map(|(_, m)| m.throughput()))
            .fold(1.0, f64::max);
        let _ = writeln!(
            out,
            "<text x=\"{x0}\" y=\"{}\" font-size=\"13\">{}</text>\n<rect x=\"{x0}\" y=\"{y0}\" width=\"{PANEL_W}\" height=\"{PANEL_H}\" fill=\"none\" stroke=\"#999\"/>",
            y0 - 8.0,
            workload.name()
        );
        let _ = writeln!(
            out,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{max:.0}</text><text x=\"{}\" y=\"{}\" text-anchor=\"end\">0</text>",
            x0 - 3.0,
            y0 + 10.0,
            x0 - 3.0,
            y0 + PANEL_H
        );
        let step = PANEL_W / (cells.len().max(1) as f64);
        let point = |i: usize, v: f64| {
            (
                x0 + step * (i as f64 + 0.5),
                y0 + PANEL_H - (v / max) * (PANEL_H - 10.0),
            )
        };
        for (i, r) in cells.iter().enumerate() {
            let (x, _) = point(i, 0.0);
            let _ = writeln!(
                out,
                "<text x=\"{x}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                y0 + PANEL_H + 14.0,
                r.clients
            );
        }
        for (contender, colour) in PALETTE {
            let points: Vec<String> = cells
                .iter()
                .enumerate()
                .filter_map(|(i, r)| {
                    let (x, y) = point(i, r.of(contender)?.throughput());
                    Some(format!("{x:.1},{y:.1}"))
                })
                .collect();
            let _ = writeln!(
                out,
                "<polyline points=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\"/>",
                points.join(" ")
            );
            for p in &points {
                let (x, y) = p.split_once(',').unwrap_or(("0", "0"));
                let _ = writeln!(
                    out,
                    "<circle cx=\"{x}\" cy=\"{y}\" r=\"3\" fill=\"{colour}\"/>"
                );
            }
        }
    }
    out.push_str("</svg>\n");
    out
}

/// One run, as `ordo-bench run --json` prints it.
#[derive(Debug, serde::Serialize)]
struct RunJson<'a> {
    target: &'a str,
    workload: &'static str,
    clients: usize,
    ops: u64,
    seconds: f64,
    ops_per_second: f64,
    p50_ms: f64,
    p90_ms: f64,
    p99_ms: f64,
    p999_ms: f64,
    max_ms: f64,
    aborts: u64,
    retries: u64,
}

/// One run as a JSON object.
pub fn json(target: &str, workload: Workload, clients: usize, m: &Measured) -> String {
    let run = RunJson {
        target,
        workload: workload.name(),
        clients,
        ops: m.ops,
        seconds: m.elapsed.as_secs_f64(),
        ops_per_second: m.throughput(),
        p50_ms: m.latency_ms(0.5),
        p90_ms: m.latency_ms(0.9),
        p99_ms: m.latency_ms(0.99),
        p999_ms: m.latency_ms(0.999),
        max_ms: m.latency_ms(1.0),
        aborts: m.aborts,
        retries: m.retries,
    };
    // A struct of numbers and strings always serializes.
    serde_json::to_string(&run).unwrap_or_default()
}
