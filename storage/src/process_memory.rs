//! The process's resident memory, as Linux reports it in
//! `/proc/self/status`: what the block cache and the memtables bound, as
//! INFO, MEMORY STATS and snapshot installs report it. 0 where it is not
//! known (another OS).

/// The process's resident memory now, in bytes (`VmRSS`).
pub fn resident_bytes() -> u64 {
    status_bytes("VmRSS:")
}

/// The process's peak resident memory so far, in bytes (`VmHWM`).
pub fn peak_resident_bytes() -> u64 {
    status_bytes("VmHWM:")
}

/// The `field` line of `/proc/self/status`, given in kB, in bytes.
fn status_bytes(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let value = status.lines().find_map(|line| line.strip_prefix(field));
    value.and_then(|kib| kib.trim().trim_end_matches("kB").trim().parse::<u64>().ok()).map_or(0, |kib| kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_peak_is_at_least_what_is_resident_now() {
        let now = resident_bytes();
        assert!(now > 0, "Linux reports VmRSS");
        assert!(peak_resident_bytes() >= now);
    }
}
