//! Function libraries (FUNCTION LOAD): the `#!lua name=<library>` line
//! that opens one, and what the group stores of a loaded library.
//!
//! A library is stored under its name with its code and the functions it
//! registered (`kv_meta` `library/<name>`), and each function under its
//! name with its library's (`function/<name>`): FCALL finds a function in
//! two reads, FUNCTION LIST reads no Lua.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::error::CommandError;

/// A loaded library as the group stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredLibrary {
    pub name: String,
    /// The code as FUNCTION LOAD was given it, shebang included.
    pub code: Bytes,
    pub functions: Vec<StoredFunction>,
}

/// A function a library registered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredFunction {
    pub name: String,
    pub description: Option<String>,
    /// Its flags, in Redis's order (`no-writes`, `allow-oom`, …).
    pub flags: Vec<String>,
}

impl StoredFunction {
    /// Whether the function may write (FCALL_RO refuses it).
    pub fn writes(&self) -> bool {
        !self.flags.iter().any(|flag| flag == "no-writes")
    }
}

impl StoredLibrary {
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_stdvec(self).expect("libraries serialize")
    }

    pub fn decode(bytes: &[u8]) -> Option<StoredLibrary> {
        postcard::from_bytes(bytes).ok()
    }
}

/// FCALL_RO of a function that may write.
pub fn read_only_refusal() -> CommandError {
    CommandError::Other("ERR Can not execute a script with write flag using *_ro command.".into())
}

/// The flags Redis knows, in the order FUNCTION LIST shows them.
pub const FLAG_ORDER: [&str; 5] = ["no-writes", "allow-oom", "allow-stale", "no-cluster", "allow-cross-slot-keys"];

/// What a library's first line declares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    pub name: String,
    /// The code after the shebang line (its line feed kept, so line
    /// numbers do not move).
    pub body: Bytes,
}

/// Whether `name` may name a library or a function.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The metadata of `code`, checked as FUNCTION LOAD checks it.
pub fn metadata(code: &Bytes) -> Result<Metadata, CommandError> {
    let error = |text: String| CommandError::Other(format!("ERR {text}"));
    if !code.starts_with(b"#!") {
        return Err(error("Missing library metadata".into()));
    }
    let Some(end) = code.iter().position(|&b| b == b'\n') else {
        return Err(error("Invalid library metadata".into()));
    };
    let line = String::from_utf8_lossy(&code[..end]);
    let mut parts = line.split_ascii_whitespace();
    let Some(engine) = parts.next() else { return Err(error("Invalid library metadata".into())) };
    let mut name = None;
    for part in parts {
        match part.get(..5) {
            Some(prefix) if prefix.eq_ignore_ascii_case("name=") => {
                if name.is_some() {
                    return Err(error("Invalid metadata value, name argument was given multiple times".into()));
                }
                name = Some(part[5..].to_string());
            }
            _ => return Err(error(format!("Invalid metadata value given: {part}"))),
        }
    }
    let Some(name) = name else { return Err(error("Library name was not given".into())) };
    if !valid_name(&name) {
        return Err(error(
            "Library names can only contain letters, numbers, or underscores(_) and must be at least one character long"
                .into(),
        ));
    }
    let engine = &engine[2..];
    if !engine.eq_ignore_ascii_case("lua") {
        return Err(error(format!("Engine '{engine}' not found")));
    }
    Ok(Metadata { name, body: code.slice(end..) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(code: &str) -> Result<Metadata, String> {
        metadata(&Bytes::copy_from_slice(code.as_bytes())).map_err(|e| e.to_string())
    }

    #[test]
    fn metadata_is_read_as_redis_reads_it() {
        let md = check("#!lua name=mylib\nreturn 1").unwrap();
        assert_eq!((md.name.as_str(), &md.body[..]), ("mylib", &b"\nreturn 1"[..]));
        assert_eq!(check("return 1").unwrap_err(), "ERR Missing library metadata");
        assert_eq!(check("#!lua name=x").unwrap_err(), "ERR Invalid library metadata");
        assert_eq!(check("#!lua\n").unwrap_err(), "ERR Library name was not given");
        assert_eq!(
            check("#!lua name=a name=b\n").unwrap_err(),
            "ERR Invalid metadata value, name argument was given multiple times"
        );
        assert_eq!(check("#!lua x=1\n").unwrap_err(), "ERR Invalid metadata value given: x=1");
        assert_eq!(check("#!py name=a\n").unwrap_err(), "ERR Engine 'py' not found");
        assert!(check("#!lua name=a-b\n").unwrap_err().starts_with("ERR Library names can only contain"));
    }
}
