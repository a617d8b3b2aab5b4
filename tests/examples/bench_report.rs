//! Gathers the benchmarks' JSON into one results file (each figure with the reference measured in the same run, the ratio and the target) and rewrites the summary table of `docs/BENCHMARKS.md`.
//!
//! `bench_report IN_DIR OUT_JSON [DOC]`: reads `identity.json`, `log.json`,
//! `cluster.json`, `adapter.json`, `memory.json` and `events.json` from `IN_DIR` (those
//! present), writes `OUT_JSON`,
//! and, given `DOC`, replaces the text between its `bench:results` markers.

use std::path::Path;

use anyhow::{Context, bail};
use serde_json::{Value, json};

const START: &str = "<!-- bench:results:start -->";
const END: &str = "<!-- bench:results:end -->";

/// One result line.
struct Figure {
    name: &'static str,
    what: &'static str,
    value: f64,
    unit: &'static str,
    reference_what: &'static str,
    reference: f64,
    reference_unit: &'static str,
    ratio: f64,
    target: String,
    /// `None` for figures reported for context, with no target.
    met: Option<bool>,
}

fn num(value: &Value, pointer: &str) -> anyhow::Result<f64> {
    value
        .pointer(pointer)
        .and_then(Value::as_f64)
        .with_context(|| format!("{pointer} is missing"))
}

fn figures(dir: &Path) -> anyhow::Result<(Vec<Figure>, Vec<String>)> {
    let mut figures = Vec::new();
    let mut dates = Vec::new();
    let read = |name: &str| -> anyhow::Result<Option<Value>> {
        let path = dir.join(name);
        if !path.exists() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&path)?;
        Ok(Some(
            serde_json::from_str(&text).with_context(|| format!("{}", path.display()))?,
        ))
    };
    if let Some(identity) = read("identity.json")? {
        identity_figures(&identity, &mut figures, &mut dates)?;
    }
    if let Some(log) = read("log.json")? {
        log_figures(&log, &mut figures, &mut dates)?;
    }
    if let Some(reads) = read("reads.json")? {
        read_figures(&reads, &mut figures, &mut dates)?;
    }
    if let Some(cluster) = read("cluster.json")? {
        cluster_figures(&cluster, &mut figures, &mut dates)?;
    }
    if let Some(adapter) = read("adapter.json")? {
        adapter_figures(&adapter, &mut figures, &mut dates)?;
    }
    if let Some(memory) = read("memory.json")? {
        memory_figures(&memory, &mut figures, &mut dates)?;
    }
    if let Some(events) = read("events.json")? {
        events_figures(&events, &mut figures, &mut dates)?;
    }
    Ok((figures, dates))
}

/// The figures of `identity.json`.
fn identity_figures(
    identity: &Value,
    figures: &mut Vec<Figure>,
    dates: &mut Vec<String>,
) -> anyhow::Result<()> {
    dates.push(format!(
        "identity {}",
        identity["date"].as_str().unwrap_or("?")
    ));
    let raw = num(identity, "/ops_per_second_per_core/ed25519_verify_raw")?;
    let ratio = num(
        identity,
        "/cached_check_plus_pop_verify_over_raw_ed25519_verify",
    )?;
    let limit = num(identity, "/target_ratio")?;
    figures.push(Figure {
        name: "identity.check_plus_pop",
        what: "cached consent check + PoP verify, per call",
        value: ratio * 1e6 / raw,
        unit: "µs",
        reference_what: "raw Ed25519 verify",
        reference: 1e6 / raw,
        reference_unit: "µs",
        ratio,
        target: format!("ratio ≤ {limit}"),
        met: Some(ratio <= limit),
    });
    if let Ok(ours) = num(
        identity,
        "/ops_per_second_per_core/batch_of_8_one_key_signatures",
    ) {
        let dalek = num(
            identity,
            "/ops_per_second_per_core/dalek_batch_of_8_one_key_signatures",
        )?;
        figures.push(Figure {
            name: "identity.batch_one_key",
            what: "batch verification, 8 signatures by one key, per signature",
            value: 1e6 / ours,
            unit: "µs",
            reference_what: "ed25519-dalek's verify_batch",
            reference: 1e6 / dalek,
            reference_unit: "µs",
            ratio: dalek / ours,
            target: "context".into(),
            met: None,
        });
    }
    Ok(())
}

/// The figures of `log.json`.
fn log_figures(
    log: &Value,
    figures: &mut Vec<Figure>,
    dates: &mut Vec<String>,
) -> anyhow::Result<()> {
    dates.push(format!("log {}", log["date"].as_str().unwrap_or("?")));
    let ratio = num(log, "/ingest/ratio_to_bound")?;
    let limit = num(log, "/ingest/target_ratio")?;
    figures.push(Figure {
        name: "log.ingest",
        what: "durable ingest, one core",
        value: num(log, "/ingest/entries_per_second")?,
        unit: "entries/s",
        reference_what: "raw signature bound, one core",
        reference: num(
            log,
            "/ingest/raw_signature_bound_entries_per_second_one_core",
        )?,
        reference_unit: "entries/s",
        ratio,
        target: format!("ratio ≥ {limit}"),
        met: Some(ratio >= limit),
    });
    let rate = num(log, "/audit/entries_per_second")?;
    let entries = num(log, "/audit/entries")?;
    let target = num(log, "/audit/target_seconds")?;
    // The target is for a million entries; smaller (quick) runs are scaled up.
    let seconds = 1e6 / rate;
    let cores = num(log, "/cores")?;
    let bound = cores
        * num(
            log,
            "/ingest/raw_signature_bound_entries_per_second_one_core",
        )?;
    figures.push(Figure {
        name: "log.audit_1m",
        what: if entries >= 1e6 {
            "audit of 1,000,000 entries"
        } else {
            "audit of 1,000,000 entries (scaled from a smaller run)"
        },
        value: seconds,
        unit: "s",
        reference_what: "raw signature bound, all cores",
        reference: bound,
        reference_unit: "entries/s",
        ratio: rate / bound,
        target: format!("< {target} s"),
        met: Some(seconds < target),
    });
    // A run of ten million entries is held to its own bound.
    if entries >= 1e7 {
        let seconds = num(log, "/audit/seconds")?;
        let target = num(log, "/audit/target_seconds_this_size")?;
        figures.push(Figure {
            name: "log.audit_10m",
            what: "audit of 10,000,000 entries",
            value: seconds,
            unit: "s",
            reference_what: "raw signature bound, all cores",
            reference: bound,
            reference_unit: "entries/s",
            ratio: rate / bound,
            target: format!("< {target} s"),
            met: Some(seconds < target),
        });
    }
    // Older results have no peak resident set for the audit.
    if log.pointer("/audit/peak_rss_mib").is_some() {
        let peak = num(log, "/audit/peak_rss_mib")?;
        let bound = num(log, "/audit/target_peak_rss_mib")?;
        figures.push(Figure {
            name: "log.audit_peak_rss",
            what: "peak resident set while auditing the log",
            value: peak,
            unit: "MiB",
            reference_what: "resident before the audit",
            reference: num(log, "/audit/rss_before_mib")?,
            reference_unit: "MiB",
            ratio: peak / bound,
            target: format!("< {bound} MiB"),
            met: Some(peak < bound),
        });
    }
    // Older results have no records section.
    if log.pointer("/records").is_some() {
        let bytes = num(log, "/records/log_entry_bytes_per_1000_calls")?;
        let bound = num(log, "/records/target_log_bytes_per_1000_calls")?;
        figures.push(Figure {
            name: "log.bytes_per_1000_calls",
            what: "shared log growth per 1,000 served calls",
            value: bytes,
            unit: "bytes",
            reference_what: "the bank's own record store, per call",
            reference: num(log, "/records/record_store_bytes_per_call")?,
            reference_unit: "bytes",
            ratio: bytes / bound,
            target: format!("≤ {bound} bytes"),
            met: Some(bytes <= bound),
        });
    }
    if log.pointer("/records/history").is_some() {
        let p99 = num(log, "/records/history/p99_ms")?;
        let target = num(log, "/records/history/target_p99_ms")?;
        figures.push(Figure {
            name: "log.history_page_p99",
            what: "a consent's history with proofs, 100 per page, 100,000 records",
            value: p99,
            unit: "ms",
            reference_what: "p50",
            reference: num(log, "/records/history/p50_ms")?,
            reference_unit: "ms",
            ratio: p99 / target,
            target: format!("p99 < {target} ms"),
            met: Some(p99 < target),
        });
    }
    // Older results have no restart section.
    if log.pointer("/restart").is_some() {
        let seconds = num(log, "/restart/from_snapshot_with_tail_seconds")?;
        let target = num(log, "/restart/target_seconds")?;
        figures.push(Figure {
            name: "log.restart",
            what: "opening the audited log from its snapshot, 5,000 entries after it",
            value: seconds,
            unit: "s",
            reference_what: "rebuilding from every entry",
            reference: num(log, "/restart/rebuild_without_snapshot_seconds")?,
            reference_unit: "s",
            ratio: seconds / num(log, "/restart/rebuild_without_snapshot_seconds")?,
            target: format!("< {target} s"),
            met: Some(seconds < target),
        });
    }
    Ok(())
}

/// The figures of `reads.json`.
fn read_figures(
    reads: &Value,
    figures: &mut Vec<Figure>,
    dates: &mut Vec<String>,
) -> anyhow::Result<()> {
    dates.push(format!("reads {}", reads["date"].as_str().unwrap_or("?")));
    let published = num(reads, "/published_state/p99_us")?;
    let locked = num(reads, "/through_the_lock/p99_us")?;
    figures.push(Figure {
        name: "reads.p99_during_sync",
        what: "adapter state reads p99 while a sync is stored",
        value: published,
        unit: "µs",
        reference_what: "the same reads through the replica's lock",
        reference: locked,
        reference_unit: "µs",
        ratio: published / locked,
        target: "below the locked p99".into(),
        met: Some(published < locked),
    });
    Ok(())
}

/// The figures of `memory.json`.
fn memory_figures(
    memory: &Value,
    figures: &mut Vec<Figure>,
    dates: &mut Vec<String>,
) -> anyhow::Result<()> {
    dates.push(format!("memory {}", memory["date"].as_str().unwrap_or("?")));
    let calls = num(memory, "/calls")?;
    let bank = num(memory, "/bank/rss_end_mib")?;
    let bank_bound = num(memory, "/bank/target_rss_mib")?;
    figures.push(Figure {
        name: "memory.bank_rss",
        what: "the bank node's resident set after the served calls",
        value: bank,
        unit: "MiB",
        reference_what: "after the warm-up",
        reference: num(memory, "/bank/rss_start_mib")?,
        reference_unit: "MiB",
        ratio: bank / bank_bound,
        target: format!("< {bank_bound} MiB after 1,000,000 calls"),
        met: Some(calls >= 1e6 && bank < bank_bound),
    });
    let growth = num(memory, "/tsp/growth_ratio")?;
    let bound = num(memory, "/tsp/target_growth_ratio")?;
    figures.push(Figure {
        name: "memory.member_growth",
        what: "a TSP node's resident set after the bank's served calls",
        value: num(memory, "/tsp/rss_end_mib")?,
        unit: "MiB",
        reference_what: "after the warm-up",
        reference: num(memory, "/tsp/rss_start_mib")?,
        reference_unit: "MiB",
        ratio: growth,
        target: format!("ratio ≤ {bound} after 1,000,000 calls"),
        met: Some(calls >= 1e6 && growth <= bound),
    });
    Ok(())
}

/// The figures of `events.json`.
fn events_figures(
    events: &Value,
    figures: &mut Vec<Figure>,
    dates: &mut Vec<String>,
) -> anyhow::Result<()> {
    dates.push(format!("events {}", events["date"].as_str().unwrap_or("?")));
    let watch = num(events, "/watch_interval_ms")?;
    let legs = [
        (
            "events.push_p99",
            "/push",
            "a revocation on the log to the app's push endpoint, p99",
        ),
        (
            "events.status_list_p99",
            "/status_list",
            "a revocation on the log to its bit in the bank's status list, p99",
        ),
    ];
    for (name, at, what) in legs {
        let p99 = num(events, &format!("{at}/p99_ms"))?;
        let target = num(events, &format!("{at}/target_p99_ms"))?;
        figures.push(Figure {
            name,
            what,
            value: p99,
            unit: "ms",
            reference_what: "the bank node's log watch interval",
            reference: watch,
            reference_unit: "ms",
            ratio: p99 / watch,
            target: format!("< {target} ms"),
            met: Some(p99 < target),
        });
    }
    Ok(())
}

/// The figures of `cluster.json`.
fn cluster_figures(
    cluster: &Value,
    figures: &mut Vec<Figure>,
    dates: &mut Vec<String>,
) -> anyhow::Result<()> {
    dates.push(format!(
        "cluster {}",
        cluster["date"].as_str().unwrap_or("?")
    ));
    let p99 = num(cluster, "/propagation/p99_ms")?;
    let p50 = num(cluster, "/propagation/p50_ms")?;
    let target = num(cluster, "/propagation/target_p99_ms")?;
    figures.push(Figure {
        name: "cluster.propagation_p99",
        what: "propagation p99 at 100 events/s, 4 nodes",
        value: p99,
        unit: "ms",
        reference_what: "p50",
        reference: p50,
        reference_unit: "ms",
        ratio: p99 / p50,
        target: format!("< {target} ms"),
        met: Some(p99 < target),
    });
    let ratio = num(cluster, "/replicated_ingest/ratio_to_bound")?;
    let limit = num(cluster, "/replicated_ingest/target_ratio")?;
    figures.push(Figure {
        name: "cluster.replicated_ingest",
        what: "replicated ingest, 4 nodes",
        value: num(cluster, "/replicated_ingest/events_per_second")?,
        unit: "events/s",
        reference_what: "signature bound for 4 nodes on these cores",
        reference: num(
            cluster,
            "/replicated_ingest/signature_bound_events_per_second",
        )?,
        reference_unit: "events/s",
        ratio,
        target: format!("ratio ≥ {limit}"),
        met: Some(ratio >= limit),
    });
    Ok(())
}

/// The figures of `adapter.json`.
fn adapter_figures(
    adapter: &Value,
    figures: &mut Vec<Figure>,
    dates: &mut Vec<String>,
) -> anyhow::Result<()> {
    dates.push(format!(
        "adapter {}",
        adapter["date"].as_str().unwrap_or("?")
    ));
    let ratio = num(adapter, "/throughput_ratio")?;
    let limit = num(adapter, "/targets/throughput_ratio_at_least")?;
    figures.push(Figure {
        name: "adapter.throughput",
        what: "GET balances over HTTPS with the consent check and rate limit, median round",
        value: num(adapter, "/checked/requests_per_second")?,
        unit: "requests/s",
        reference_what: "the same server, check skipped",
        reference: num(adapter, "/unchecked/requests_per_second")?,
        reference_unit: "requests/s",
        ratio,
        target: format!("ratio ≥ {limit}"),
        met: Some(ratio >= limit),
    });
    if let Ok(few) = num(adapter, "/few_clients/throughput_ratio") {
        figures.push(Figure {
            name: "adapter.throughput_few_connections",
            what: "the same with 8 connections (proofs rarely batch), median round",
            value: num(adapter, "/few_clients/checked_requests_per_second")?,
            unit: "requests/s",
            reference_what: "the same server, check skipped",
            reference: num(adapter, "/few_clients/unchecked_requests_per_second")?,
            reference_unit: "requests/s",
            ratio: few,
            target: format!("ratio ≥ {limit}"),
            met: Some(few >= limit),
        });
    }
    if let Ok(tls) = num(adapter, "/tls/https_to_http_throughput_ratio") {
        figures.push(Figure {
            name: "adapter.tls_cost",
            what: "the checked server over HTTPS",
            value: num(adapter, "/checked/requests_per_second")?,
            unit: "requests/s",
            reference_what: "the same server over plain HTTP",
            reference: num(adapter, "/tls/checked_over_http_requests_per_second")?,
            reference_unit: "requests/s",
            ratio: tls,
            target: "context".into(),
            met: None,
        });
    }
    let p99 = num(adapter, "/checked_at_half_peak/p99_ms")?;
    let target = num(adapter, "/targets/p99_at_half_peak_under_ms")?;
    let unchecked = num(adapter, "/unchecked/p99_ms")?;
    figures.push(Figure {
        name: "adapter.p99_half_peak",
        what: "p99 with the check at half of peak load",
        value: p99,
        unit: "ms",
        reference_what: "p99 unchecked at peak",
        reference: unchecked,
        reference_unit: "ms",
        ratio: p99 / unchecked,
        target: format!("< {target} ms"),
        met: Some(p99 < target),
    });
    Ok(())
}

/// A number for people: thousands separated, few decimals.
fn show(value: f64) -> String {
    if value >= 100.0 {
        let whole = format!("{:.0}", value);
        let mut out = String::new();
        for (i, c) in whole.chars().enumerate() {
            if i > 0 && (whole.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        out
    } else if value >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(dir), Some(out)) = (args.first(), args.get(1)) else {
        bail!("usage: bench_report IN_DIR OUT_JSON [DOC]");
    };
    let (figures, dates) = figures(Path::new(dir))?;
    if figures.is_empty() {
        bail!("{dir} holds no benchmark results");
    }
    let results: Vec<Value> = figures
        .iter()
        .map(|f| {
            json!({
                "name": f.name,
                "what": f.what,
                "value": f.value,
                "unit": f.unit,
                "reference": { "what": f.reference_what, "value": f.reference, "unit": f.reference_unit },
                "ratio": f.ratio,
                "target": f.target,
                "met": f.met,
            })
        })
        .collect();
    let document = json!({ "measured": dates, "results": results });
    if let Some(parent) = Path::new(out).parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(out, serde_json::to_string_pretty(&document)? + "\n")?;
    for f in &figures {
        println!(
            "{:<28} {:>12} {:<10} ratio {:>6}  {:<12} {}",
            f.name,
            show(f.value),
            f.unit,
            show(f.ratio),
            f.target,
            match f.met {
                Some(true) => "met",
                Some(false) => "NOT met",
                None => "",
            }
        );
    }
    if let Some(doc) = args.get(2) {
        let text = std::fs::read_to_string(doc).with_context(|| doc.clone())?;
        let (Some(a), Some(b)) = (text.find(START), text.find(END)) else {
            bail!("{doc} has no {START} ... {END} markers");
        };
        let mut table = format!(
            "{START}\n_Generated by `scripts/bench` from {}._\n\n| benchmark | measured | reference, same run | ratio | target | |\n| --- | --- | --- | --- | --- | --- |\n",
            dates.join(", ")
        );
        for f in &figures {
            table.push_str(&format!(
                "| {} (`{}`) | {} {} | {}: {} {} | {} | {} | {} |\n",
                f.what,
                f.name,
                show(f.value),
                f.unit,
                f.reference_what,
                show(f.reference),
                f.reference_unit,
                show(f.ratio),
                f.target,
                match f.met {
                    Some(true) => "met",
                    Some(false) => "**not met**",
                    None => "",
                }
            ));
        }
        let updated = format!("{}{table}{}", &text[..a], &text[b..]);
        std::fs::write(doc, updated)?;
        println!("updated the summary table in {doc}");
    }
    Ok(())
}
