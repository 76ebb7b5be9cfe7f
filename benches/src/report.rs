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
    /// What each contender measured, in the order the runs were made: a
    /// cell measured in several rounds holds each contender once per
    /// round, the rounds one after another.
    pub results: Vec<(Contender, Measured)>,
}

impl Row {
    /// Every run of `contender` in this cell, round by round.
    fn runs(&self, contender: Contender) -> Vec<&Measured> {
        (self.results.iter())
            .filter(|(c, _)| *c == contender)
            .map(|(_, m)| m)
            .collect()
    }

    /// The contenders of this cell, each once, in the order they ran.
    pub fn contenders(&self) -> Vec<Contender> {
        let mut seen = Vec::new();
        for (c, _) in &self.results {
            if !seen.contains(c) {
                seen.push(*c);
            }
        }
        seen
    }

    /// `contender`'s run of median throughput in this cell, if it ran.
    pub fn of(&self, contender: Contender) -> Option<&Measured> {
        let mut runs = self.runs(contender);
        runs.sort_by(|a, b| a.throughput().total_cmp(&b.throughput()));
        runs.get(runs.len().saturating_sub(1) / 2).copied()
    }

    /// `contender`'s throughput over `other`'s, round by round: each
    /// round's two runs were made minutes apart at most, so their ratio is
    /// the side-by-side comparison this noisy machine allows.
    fn round_ratios(
        &self,
        contender: Contender,
        other: Contender,
        of: fn(&Measured) -> f64,
    ) -> Vec<f64> {
        let (a, b) = (self.runs(contender), self.runs(other));
        let mut ratios: Vec<f64> = (a.iter().zip(&b))
            .map(|(a, b)| ratio(of(a), of(b)))
            .collect();
        ratios.sort_by(f64::total_cmp);
        ratios
    }

    /// The median over rounds of `contender`'s throughput over `other`'s,
    /// if both ran.
    pub fn ratio(&self, contender: Contender, other: Contender) -> Option<f64> {
        median(&self.round_ratios(contender, other, Measured::throughput))
    }

    /// The lowest and highest of the rounds' throughput ratios, when the
    /// cell ran more than one round.
    pub fn ratio_spread(&self, contender: Contender, other: Contender) -> Option<(f64, f64)> {
        let ratios = self.round_ratios(contender, other, Measured::throughput);
        match ratios.len() {
            0 | 1 => None,
            n => Some((ratios[0], ratios[n - 1])),
        }
    }

    /// The median over rounds of `contender`'s p50 latency over `other`'s,
    /// with the lowest and highest of them.
    pub fn p50_ratio(&self, contender: Contender, other: Contender) -> Option<(f64, f64, f64)> {
        let ratios = self.round_ratios(contender, other, |m| m.latency_ms(0.5));
        Some((median(&ratios)?, *ratios.first()?, *ratios.last()?))
    }
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { f64::INFINITY }
}

/// The middle of sorted `values` (the lower middle of an even count).
fn median(values: &[f64]) -> Option<f64> {
    values.get(values.len().saturating_sub(1) / 2).copied()
}

/// A ratio with its rounds' spread, when there was more than one.
fn with_spread(x: Option<f64>, spread: Option<(f64, f64)>, scale: f64, suffix: &str) -> String {
    match (x, spread) {
        (Some(x), Some((lo, hi))) => format!(
            "{:.2}{suffix} ({:.2}-{:.2})",
            scale * x,
            scale * lo,
            scale * hi
        ),
        (x, _) => shown(x.map(|x| scale * x), suffix),
    }
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
        for contender in r.contenders() {
            let Some(m) = r.of(contender) else { continue };
            let etcd = Contender::Etcd;
            let vs_etcd = match contender {
                Contender::Etcd | Contender::Null | Contender::NullSigned => String::new(),
                c => with_spread(r.ratio(c, etcd), r.ratio_spread(c, etcd), 1.0, "x"),
            };
            let of_null = contender.ceiling().map_or_else(String::new, |n| {
                with_spread(
                    r.ratio(contender, n),
                    r.ratio_spread(contender, n),
                    100.0,
                    "%",
                )
            });
            let _ = writeln!(
                out,
                "| {} | {} | {} | {:.0} | {} | {} | {} | {} / {} |",
                r.workload.name(),
                r.clients,
                contender.name(),
                m.throughput(),
                vs_etcd,
                of_null,
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
    if let Some((r, (x, lo, hi))) =
        single.and_then(|r| Some((r, r.p50_ratio(Contender::Ordo, Contender::Etcd)?)))
    {
        let p50 = |c| r.of(c).map_or(0.0, |m| m.latency_ms(0.5));
        let (o, e) = (p50(Contender::Ordo), p50(Contender::Etcd));
        lines.push(format!(
            "Single-client put p50 no worse than etcd: {} (ordo {o:.3} ms, etcd {e:.3} ms; ordo over etcd {x:.2}, rounds {lo:.2}-{hi:.2})",
            verdict(x <= 1.0)
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

/// A chart panel's width and height, and the margin around panels, in
/// pixels.
const PANEL_W: f64 = 260.0;
const PANEL_H: f64 = 200.0;
const PAD: f64 = 45.0;

/// An SVG chart: one panel per workload, throughput against clients, one
/// line per contender.
pub fn svg(rows: &[Row]) -> String {
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
        let cells: Vec<&Row> = rows.iter().filter(|r| r.workload == *workload).collect();
        panel(&mut out, x0, *workload, &cells);
    }
    out.push_str("</svg>\n");
    out
}

/// Draws `workload`'s panel at `x0`: its frame and scale, the client
/// counts under it, and a line per contender through its cells.
fn panel(out: &mut String, x0: f64, workload: Workload, cells: &[&Row]) {
    let y0 = 2.0 * PAD;
    // The scale fits the runs drawn (each contender's median run), not
    // the fastest of all rounds.
    let max = (cells.iter())
        .flat_map(|r| r.contenders().into_iter().filter_map(|c| r.of(c)))
        .map(Measured::throughput)
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
        let points: Vec<(f64, f64)> = (cells.iter().enumerate())
            .filter_map(|(i, r)| Some(point(i, r.of(contender)?.throughput())))
            .collect();
        let line: Vec<String> = (points.iter())
            .map(|(x, y)| format!("{x:.1},{y:.1}"))
            .collect();
        let _ = writeln!(
            out,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\"/>",
            line.join(" ")
        );
        for (x, y) in &points {
            let _ = writeln!(
                out,
                "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"3\" fill=\"{colour}\"/>"
            );
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A run of `ops` operations in one second, every one taking `micros`.
    fn run(ops: u64, micros: u32) -> Measured {
        Measured {
            ops,
            aborts: 0,
            retries: 0,
            elapsed: Duration::from_secs(1),
            latencies: vec![micros; 10],
        }
    }

    /// Three rounds of ordo and null, alternated, and ordo and etcd.
    fn rounds(ordo: [u64; 3], null: [u64; 3]) -> Row {
        let results = (0..3)
            .flat_map(|i| {
                [
                    (Contender::Ordo, run(ordo[i], 90)),
                    (Contender::Etcd, run(1_000, 100 + 10 * i as u32)),
                    (Contender::Null, run(null[i], 20)),
                ]
            })
            .collect();
        Row {
            workload: Workload::Get,
            clients: 1,
            results,
        }
    }

    #[test]
    fn a_ratio_is_the_median_of_the_rounds_side_by_side_not_of_the_medians() {
        // The null target jumps in round 2 and ordo in round 3: each
        // round's ratio is 0.9, 0.6, 1.2; the medians of each side's runs
        // would give 36/50.
        let row = rounds([36, 36, 60], [40, 60, 50]);
        let ratio = row.ratio(Contender::Ordo, Contender::Null).unwrap();
        assert!((ratio - 0.9).abs() < 1e-9, "{ratio}");
        let (lo, hi) = row.ratio_spread(Contender::Ordo, Contender::Null).unwrap();
        assert!((lo - 0.6).abs() < 1e-9 && (hi - 1.2).abs() < 1e-9);
        assert_eq!(row.of(Contender::Null).unwrap().ops, 50);
        assert_eq!(
            row.contenders(),
            [Contender::Ordo, Contender::Etcd, Contender::Null]
        );
    }

    #[test]
    fn one_round_has_no_spread_and_the_report_shows_each_contender_once() {
        let mut row = rounds([36, 36, 60], [40, 60, 50]);
        row.results.truncate(3);
        assert_eq!(row.ratio_spread(Contender::Ordo, Contender::Null), None);
        let report = markdown(&[rounds([36, 36, 60], [40, 60, 50])], "header", false);
        let lines = report
            .lines()
            .filter(|l| l.starts_with("| get | 1 | null |"));
        assert_eq!(lines.count(), 1, "{report}");
        assert!(report.contains("90.00% (60.00-120.00)"), "{report}");
    }

    #[test]
    fn the_chart_draws_a_panel_per_workload_and_a_point_per_contender_s_run_shown() {
        let mut put = rounds([36, 36, 60], [40, 60, 50]);
        put.workload = Workload::Put;
        let chart = svg(&[put, rounds([36, 36, 60], [40, 60, 50])]);
        assert!(chart.starts_with("<svg ") && chart.ends_with("</svg>\n"));
        assert_eq!(chart.matches("stroke=\"#999\"").count(), 2, "{chart}");
        // One cell per panel: ordo, etcd and null have a point each, the
        // other contenders an empty line.
        assert_eq!(chart.matches("<circle ").count(), 6, "{chart}");
        // The fastest run drawn (etcd's median, 1,000 ops/s) tops the scale.
        assert!(chart.contains(">1000</text>"), "{chart}");
    }

    #[test]
    fn the_lone_put_goal_compares_p50_round_by_round() {
        let mut row = rounds([1, 1, 1], [1, 1, 1]);
        row.workload = Workload::Put;
        // ordo 90 µs against etcd 100, 110, 120.
        let (x, lo, hi) = row.p50_ratio(Contender::Ordo, Contender::Etcd).unwrap();
        assert!((x - 90.0 / 110.0).abs() < 1e-9);
        assert!(lo < x && x < hi);
        let goals = goals(&[row]);
        assert!(
            goals
                .iter()
                .any(|g| g.starts_with("Single-client put p50 no worse than etcd: met")),
            "{goals:?}"
        );
    }
}
