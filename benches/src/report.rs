//! The comparison report: a Markdown table with the ordo/etcd ratio in each
//! cell, the goals checked against it, and an SVG chart.

use crate::load::{Measured, Workload};
use std::fmt::Write as _;

/// One cell of the matrix: a workload at a client count on both targets.
#[derive(Debug, Clone)]
pub struct Row {
    /// The workload.
    pub workload: Workload,
    /// Concurrent clients.
    pub clients: usize,
    /// ordo's result.
    pub ordo: Measured,
    /// etcd's result.
    pub etcd: Measured,
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { f64::INFINITY }
}

/// The Markdown report.
pub fn markdown(rows: &[Row], header: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# ordo vs etcd\n\n{header}\n");
    let _ = writeln!(
        out,
        "| workload | clients | ordo ops/s | etcd ops/s | ordo/etcd | ordo p50 / p99 / p99.9 / max ms | etcd p50 / p99 / p99.9 / max ms | ordo aborts / retries | etcd aborts / retries |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        let lat = |m: &Measured| {
            format!(
                "{:.2} / {:.2} / {:.2} / {:.2}",
                m.latency_ms(0.5),
                m.latency_ms(0.99),
                m.latency_ms(0.999),
                m.latency_ms(1.0)
            )
        };
        let _ = writeln!(
            out,
            "| {} | {} | {:.0} | {:.0} | **{:.2}x** | {} | {} | {} / {} | {} / {} |",
            r.workload.name(),
            r.clients,
            r.ordo.throughput(),
            r.etcd.throughput(),
            ratio(r.ordo.throughput(), r.etcd.throughput()),
            lat(&r.ordo),
            lat(&r.etcd),
            r.ordo.aborts,
            r.ordo.retries,
            r.etcd.aborts,
            r.etcd.retries,
        );
    }
    let _ = writeln!(out, "\n## Goals\n");
    for line in goals(rows) {
        let _ = writeln!(out, "- {line}");
    }
    let _ = writeln!(out, "\n![throughput](chart.svg)");
    out
}

/// Each goal of the comparison, met or not, with the figures behind it.
pub fn goals(rows: &[Row]) -> Vec<String> {
    let cells = |w: Workload, min_clients: usize| {
        rows.iter()
            .filter(move |r| r.workload == w && r.clients >= min_clients)
    };
    let verdict = |ok: bool| if ok { "met" } else { "**not met**" };
    let mut lines = Vec::new();
    let ratios = |w: Workload, min: usize| -> Vec<(usize, f64)> {
        cells(w, min)
            .map(|r| (r.clients, ratio(r.ordo.throughput(), r.etcd.throughput())))
            .collect()
    };
    let describe = |v: &[(usize, f64)]| {
        v.iter()
            .map(|(c, x)| format!("{x:.2}x at {c}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let puts = ratios(Workload::Put, 64);
    lines.push(format!(
        "Durable commit throughput at 64+ clients >= 3x etcd: {} ({})",
        verdict(!puts.is_empty() && puts.iter().all(|(_, x)| *x >= 3.0)),
        describe(&puts)
    ));
    if let Some(r) = cells(Workload::Put, 1).find(|r| r.clients == 1) {
        let (o, e) = (r.ordo.latency_ms(0.5), r.etcd.latency_ms(0.5));
        lines.push(format!(
            "Single-client commit p50 no worse than etcd: {} (ordo {o:.2} ms, etcd {e:.2} ms)",
            verdict(o <= e)
        ));
    }
    let rmw = ratios(Workload::TxnRmw, 1);
    lines.push(format!(
        "txn-rmw goodput under zipfian contention >= 2x etcd: {} ({})",
        verdict(!rmw.is_empty() && rmw.iter().all(|(_, x)| *x >= 2.0)),
        describe(&rmw)
    ));
    let gets = ratios(Workload::Get, 1);
    lines.push(format!(
        "Point reads >= 2x etcd: {} ({})",
        verdict(!gets.is_empty() && gets.iter().all(|(_, x)| *x >= 2.0)),
        describe(&gets)
    ));
    lines
}

/// An SVG chart: one panel per workload, throughput against clients, one
/// line per target.
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
        "<text x=\"{PAD}\" y=\"18\" font-size=\"14\">ops/s by clients (blue: ordo, orange: etcd)</text>"
    );
    for (p, workload) in workloads.iter().enumerate() {
        let x0 = PAD + p as f64 * (PANEL_W + PAD);
        let y0 = 2.0 * PAD;
        let cells: Vec<&Row> = rows.iter().filter(|r| r.workload == *workload).collect();
        let max = cells
            .iter()
            .flat_map(|r| [r.ordo.throughput(), r.etcd.throughput()])
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
        for (colour, pick) in [
            (
                "#1f77b4",
                (|r: &Row| r.ordo.throughput()) as fn(&Row) -> f64,
            ),
            ("#ff7f0e", |r: &Row| r.etcd.throughput()),
        ] {
            let points: Vec<String> = cells
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    let (x, y) = point(i, pick(r));
                    format!("{x:.1},{y:.1}")
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
