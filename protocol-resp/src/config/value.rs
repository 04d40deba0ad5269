//! The kinds of CONFIG parameters: how a value is parsed, checked and
//! written back, with Redis 7.0's error strings.
//!
//! Every value is kept in its canonical text, the one CONFIG GET answers
//! (`yes`/`no`, integers in decimal, memory values in bytes, enum names in
//! lower case).

/// How a parameter's value is parsed and checked.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    /// `yes` or `no`.
    Bool,
    /// A signed integer in `min..=max`.
    Int { min: i64, max: i64 },
    /// An unsigned integer in `min..=max`.
    UInt { min: u64, max: u64 },
    /// A byte count with an optional unit (`1gb`, `64k`) in `min..=max`.
    Memory { min: i64, max: i64 },
    /// An octal number in `min..=max` (`unixsocketperm`).
    Octal { max: u64 },
    /// A memory value or a percentage of `maxmemory` (`maxmemory-clients`).
    MemoryOrPercent,
    /// One of these names, case-insensitive.
    Enum(&'static [&'static str]),
    /// Several of these names (`shutdown-on-sigint`).
    Flags(&'static [&'static str]),
    /// Any text.
    Text,
    /// `save`: pairs of seconds and changes, or nothing.
    Save,
    /// `client-output-buffer-limit`: groups of class, hard, soft, seconds.
    OutputBufferLimit,
    /// `oom-score-adj-values`: three integers in -2000..=2000.
    OomScoreAdjValues,
    /// `notify-keyspace-events`: event class characters.
    KeyspaceEvents,
    /// `latency-tracking-info-percentiles`: numbers in 0..=100.
    Percentiles,
}

impl Kind {
    /// The canonical text of `value`, or why it is invalid (the text after
    /// Redis's `CONFIG SET failed (…) - `).
    pub(crate) fn parse(self, value: &str) -> Result<String, String> {
        match self {
            Kind::Bool => match value.to_ascii_lowercase().as_str() {
                "yes" => Ok("yes".into()),
                "no" => Ok("no".into()),
                _ => Err("argument must be 'yes' or 'no'".into()),
            },
            Kind::Int { min, max } => {
                let n: i64 = value.parse().map_err(|_| "argument couldn't be parsed into an integer".to_string())?;
                in_range(n, min, max)
            }
            Kind::UInt { min, max } => {
                // Redis parses a signed long long and compares it unsigned:
                // -1 is out of range, not unparsable.
                let n: i64 = value.parse().map_err(|_| "argument couldn't be parsed into an integer".to_string())?;
                let n = n as u64;
                if n < min || n > max {
                    return Err(format!("argument must be between {min} and {max} inclusive"));
                }
                Ok(n.to_string())
            }
            Kind::Memory { min, max } => {
                let n = parse_memory(value).ok_or_else(|| "argument must be a memory value".to_string())?;
                in_range(n, min, max)
            }
            Kind::Octal { max } => {
                let n = u64::from_str_radix(value, 8)
                    .map_err(|_| "argument couldn't be parsed as an octal number".to_string())?;
                if n > max {
                    return Err(format!("argument must be between 0 and {max:o} inclusive"));
                }
                Ok(format!("{n:o}"))
            }
            Kind::MemoryOrPercent => {
                if let Some(n) = parse_memory(value) {
                    return Ok(n.to_string());
                }
                match value.strip_suffix('%').and_then(|p| p.parse::<i64>().ok()).filter(|p| *p >= 0) {
                    Some(percent) if percent <= 100 => Ok(format!("{percent}%")),
                    Some(_) => Err("percentage argument must be less or equal to 100".into()),
                    None => Err("argument must be a memory or percent value".into()),
                }
            }
            Kind::Enum(names) => {
                let lower = value.to_ascii_lowercase();
                names.iter().find(|n| **n == lower).map(|n| n.to_string()).ok_or_else(|| one_of(names))
            }
            Kind::Flags(names) => {
                let mut chosen = Vec::new();
                for word in value.split_whitespace() {
                    let lower = word.to_ascii_lowercase();
                    let name = names.iter().find(|n| **n == lower).ok_or_else(|| one_of(names))?;
                    if !chosen.contains(name) {
                        chosen.push(*name);
                    }
                }
                if chosen.is_empty() {
                    return Err(one_of(names));
                }
                // "default" is the absence of every other flag.
                if chosen.len() > 1 {
                    chosen.retain(|n| *n != "default");
                }
                Ok(chosen.join(" "))
            }
            Kind::Text => Ok(value.to_string()),
            Kind::Save => parse_save(value),
            Kind::OutputBufferLimit => parse_output_buffer_limit(value),
            Kind::OomScoreAdjValues => {
                let values: Vec<&str> = value.split_whitespace().collect();
                if values.len() != 3 {
                    return Err("wrong number of arguments".into());
                }
                let mut parsed = Vec::new();
                for value in values {
                    match value.parse::<i64>() {
                        Ok(n) if (-2000..=2000).contains(&n) => parsed.push(n.to_string()),
                        _ => {
                            return Err("Invalid oom-score-adj-values, elements must be between -2000 and 2000.".into())
                        }
                    }
                }
                Ok(parsed.join(" "))
            }
            Kind::KeyspaceEvents => parse_keyspace_events(value),
            Kind::Percentiles => {
                let mut parsed = Vec::new();
                for word in value.split_whitespace() {
                    let p: f64 = word
                        .parse()
                        .ok()
                        .filter(|p: &f64| p.is_finite())
                        .ok_or("Invalid latency-tracking-info-percentiles parameters")?;
                    if !(0.0..=100.0).contains(&p) {
                        return Err(
                            "latency-tracking-info-percentiles parameters should sit between [0.0,100.0]".into()
                        );
                    }
                    parsed.push(p.to_string());
                }
                Ok(parsed.join(" "))
            }
        }
    }
}

fn in_range(n: i64, min: i64, max: i64) -> Result<String, String> {
    if n < min || n > max {
        return Err(format!("argument must be between {min} and {max} inclusive"));
    }
    Ok(n.to_string())
}

fn one_of(names: &[&str]) -> String {
    format!("argument(s) must be one of the following: {}", names.join(", "))
}

/// A Redis memory value: digits with an optional unit (`b`, `k`, `kb`, `m`,
/// `mb`, `g`, `gb`, any case); a leading `-` for the signed parameters.
pub(crate) fn parse_memory(value: &str) -> Option<i64> {
    let lower = value.to_ascii_lowercase();
    let (negative, rest) = match lower.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, lower.as_str()),
    };
    let digits_end = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
    if digits_end == 0 {
        return None;
    }
    let number: i64 = rest[..digits_end].parse().ok()?;
    let unit: i64 = match &rest[digits_end..] {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    let bytes = number.checked_mul(unit)?;
    Some(if negative { -bytes } else { bytes })
}

fn parse_save(value: &str) -> Result<String, String> {
    let words: Vec<&str> = value.split_whitespace().collect();
    if !words.len().is_multiple_of(2) {
        return Err("Invalid save parameters".into());
    }
    let mut pairs = Vec::new();
    for pair in words.chunks(2) {
        let seconds: i64 = pair[0].parse().map_err(|_| "Invalid save parameters".to_string())?;
        let changes: i64 = pair[1].parse().map_err(|_| "Invalid save parameters".to_string())?;
        if seconds < 1 || changes < 0 {
            return Err("Invalid save parameters".into());
        }
        pairs.push(format!("{seconds} {changes}"));
    }
    Ok(pairs.join(" "))
}

/// The classes of `client-output-buffer-limit`, in the order GET lists
/// them, with Redis's defaults.
const OUTPUT_CLASSES: [(&str, &str); 3] =
    [("normal", "0 0 0"), ("slave", "268435456 67108864 60"), ("pubsub", "33554432 8388608 60")];

/// Groups of `class hard soft seconds`; a value sets only the classes it
/// names, so it is merged over `current` by [`merge_output_buffer_limit`].
fn parse_output_buffer_limit(value: &str) -> Result<String, String> {
    let words: Vec<&str> = value.split_whitespace().collect();
    if words.is_empty() || !words.len().is_multiple_of(4) {
        return Err("Wrong number of arguments in buffer limit configuration.".into());
    }
    let mut groups = Vec::new();
    for group in words.chunks(4) {
        let class = match group[0].to_ascii_lowercase().as_str() {
            "normal" => "normal",
            "slave" | "replica" => "slave",
            "pubsub" => "pubsub",
            _ => return Err("Invalid client class specified in buffer limit configuration.".into()),
        };
        let hard = parse_memory(group[1]).filter(|n| *n >= 0);
        let soft = parse_memory(group[2]).filter(|n| *n >= 0);
        let seconds = group[3].parse::<i64>().ok().filter(|n| *n >= 0);
        let (Some(hard), Some(soft), Some(seconds)) = (hard, soft, seconds) else {
            return Err("Error in hard, soft or soft_seconds setting in buffer limit configuration.".into());
        };
        groups.push(format!("{class} {hard} {soft} {seconds}"));
    }
    Ok(groups.join(" "))
}

/// `current` with the classes `update` names replaced, in GET's order.
pub(crate) fn merge_output_buffer_limit(current: &str, update: &str) -> String {
    let limits = |text: &str, class: &str| -> Option<String> {
        let words: Vec<&str> = text.split_whitespace().collect();
        words.chunks(4).rev().find(|group| group[0] == class).map(|group| group[1..].join(" "))
    };
    OUTPUT_CLASSES
        .iter()
        .map(|(class, default)| {
            let value = limits(update, class).or_else(|| limits(current, class)).unwrap_or_else(|| default.to_string());
            format!("{class} {value}")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Redis's event classes in the order GET writes them back: `A` stands
/// for every type class (`g$lshzxetd`); `n` is left out of `A` when set.
fn parse_keyspace_events(value: &str) -> Result<String, String> {
    kv::notify::NotifyFlags::parse(value)
        .map(|flags| flags.to_string())
        .ok_or_else(|| "Invalid event class character. Use 'Ag$lshzxeKEtmdn'.".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_parse_to_the_text_get_answers() {
        assert_eq!(Kind::Bool.parse("YES"), Ok("yes".into()));
        assert_eq!(Kind::Memory { min: 0, max: i64::MAX }.parse("1kb"), Ok("1024".into()));
        assert_eq!(Kind::Memory { min: 0, max: i64::MAX }.parse("2M"), Ok("2000000".into()));
        assert_eq!(
            Kind::Int { min: 0, max: 10 }.parse("11"),
            Err("argument must be between 0 and 10 inclusive".into())
        );
        assert_eq!(Kind::Int { min: 0, max: 10 }.parse("x"), Err("argument couldn't be parsed into an integer".into()));
        assert_eq!(Kind::Enum(&["a", "b"]).parse("C"), Err("argument(s) must be one of the following: a, b".into()));
        assert_eq!(Kind::Flags(&["default", "save", "now"]).parse("now save"), Ok("now save".into()));
        assert_eq!(Kind::Save.parse("3600 1 300 100"), Ok("3600 1 300 100".into()));
        assert!(Kind::Save.parse("3600").is_err());
        assert_eq!(Kind::KeyspaceEvents.parse("KEA"), Ok("AKE".into()));
        assert_eq!(Kind::KeyspaceEvents.parse("Elg"), Ok("glE".into()));
        assert_eq!(Kind::Octal { max: 0o777 }.parse("700"), Ok("700".into()));
        assert_eq!(
            merge_output_buffer_limit("normal 0 0 0", &Kind::OutputBufferLimit.parse("pubsub 1mb 2 3").unwrap()),
            "normal 0 0 0 slave 268435456 67108864 60 pubsub 1048576 2 3"
        );
    }
}
