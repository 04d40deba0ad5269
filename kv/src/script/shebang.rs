//! The `#!lua flags=…` line a script may open with (Redis 7).
//!
//! Only `no-writes` changes what Seshat does: such a script runs on the
//! read path (EVAL as EVAL_RO). The other flags are accepted: they relax
//! checks (memory, stale replicas, cluster) that Seshat's scripts do not
//! make.

use crate::error::CommandError;

/// What a script's shebang declares.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScriptFlags {
    /// The script has a shebang (Redis leaves "compatibility mode").
    pub shebang: bool,
    pub no_writes: bool,
}

const KNOWN: [&str; 5] = ["no-writes", "allow-oom", "allow-stale", "no-cluster", "allow-cross-slot-keys"];

/// The flags of `body`, or Redis's error for a malformed shebang.
pub fn flags(body: &[u8]) -> Result<ScriptFlags, CommandError> {
    if !body.starts_with(b"#!") {
        return Ok(ScriptFlags::default());
    }
    let error = |text: String| CommandError::Other(format!("ERR {text}"));
    let Some(end) = body.iter().position(|&b| b == b'\n') else {
        return Err(error("Invalid script shebang".into()));
    };
    let line = String::from_utf8_lossy(&body[..end]);
    let mut parts = line.split_ascii_whitespace();
    match parts.next() {
        None => return Err(error("Invalid engine in script shebang".into())),
        Some("#!lua") => {}
        Some(engine) => return Err(error(format!("Unexpected engine in script shebang: {engine}"))),
    }
    let mut flags = ScriptFlags { shebang: true, no_writes: false };
    for part in parts {
        let Some(list) = part.strip_prefix("flags=") else {
            return Err(error(format!("Unknown lua shebang option: {part}")));
        };
        for flag in list.split(',') {
            if !KNOWN.contains(&flag) {
                return Err(error(format!("Unexpected flag in script shebang: {flag}")));
            }
            flags.no_writes |= flag == "no-writes";
        }
    }
    Ok(flags)
}

/// The code Lua compiles: the body without its shebang line, whose line
/// feed stays so that line numbers do not move.
pub(crate) fn code(body: &[u8]) -> &[u8] {
    match body.starts_with(b"#!") {
        true => body.iter().position(|&b| b == b'\n').map_or(&[][..], |end| &body[end..]),
        false => body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shebangs_parse_as_redis_reads_them() {
        assert_eq!(flags(b"return 1").unwrap(), ScriptFlags::default());
        assert_eq!(flags(b"#!lua\nreturn 1").unwrap(), ScriptFlags { shebang: true, no_writes: false });
        assert!(flags(b"#!lua flags=no-writes,allow-oom\nreturn 1").unwrap().no_writes);
        assert_eq!(flags(b"#!lua").unwrap_err().to_string(), "ERR Invalid script shebang");
        assert_eq!(flags(b"#!py\n").unwrap_err().to_string(), "ERR Unexpected engine in script shebang: #!py");
        assert_eq!(flags(b"#!lua name=x\n").unwrap_err().to_string(), "ERR Unknown lua shebang option: name=x");
        assert_eq!(
            flags(b"#!lua flags=fast\n").unwrap_err().to_string(),
            "ERR Unexpected flag in script shebang: fast"
        );
        assert_eq!(code(b"#!lua\nreturn 1"), b"\nreturn 1");
    }
}
