//! What the bench reads of this process and its files: resident set, its peak, bytes on disk.

/// Bytes of every file under `dir`.
pub fn dir_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_bytes(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

/// A line of this process's `/proc/self/status`, in MiB (Linux): `VmRSS` is the
/// resident set now, `VmHWM` its peak.
pub fn status_mib(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with(field))
                .and_then(|line| line.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

/// This process's resident set, in MiB.
pub fn rss_mib() -> f64 {
    status_mib("VmRSS:")
}

/// Resets the peak resident set to the current one (Linux `clear_refs` 5), so a later
/// `VmHWM` is the peak of what ran since.
pub fn reset_peak_rss() {
    std::fs::write("/proc/self/clear_refs", "5").expect("reset the peak resident set");
}
