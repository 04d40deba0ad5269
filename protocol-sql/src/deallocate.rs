//! `DEALLOCATE [PREPARE] name | ALL`: drops prepared statements of the
//! extended protocol, which live in pgwire's per-connection store rather
//! than in the SQL session. Drivers send it to reset their statement
//! caches (psycopg after a failed transaction).
//!
//! pgwire's store cannot list what it holds, so the connection keeps the
//! names its Parse messages gave ([`Names::record`]).

use std::collections::BTreeSet;
use std::sync::Mutex;

use pgwire::api::store::PortalStore;
use pgwire::error::ErrorInfo;

/// The names of a connection's prepared statements.
#[derive(Default)]
pub struct Names(Mutex<BTreeSet<String>>);

impl Names {
    /// Parse named a statement `name` (the unnamed one is not recorded:
    /// DEALLOCATE cannot name it).
    pub fn record(&self, name: Option<&str>) {
        if let Some(name) = name.filter(|n| !n.is_empty()) {
            self.0.lock().expect("prepared names").insert(name.to_string());
        }
    }

    /// Runs `target` against `store`: the command tag, or PostgreSQL's
    /// 26000 for a name that is not prepared.
    pub fn deallocate(&self, store: &impl PortalStore, target: &Target) -> Result<&'static str, Box<ErrorInfo>> {
        let mut names = self.0.lock().expect("prepared names");
        match target {
            Target::All => {
                for name in std::mem::take(&mut *names) {
                    store.rm_statement(&name);
                }
                Ok("DEALLOCATE ALL")
            }
            Target::Named(name) if names.remove(name) => {
                store.rm_statement(name);
                Ok("DEALLOCATE")
            }
            Target::Named(name) => Err(Box::new(ErrorInfo::new(
                "ERROR".into(),
                "26000".into(),
                format!("prepared statement \"{name}\" does not exist"),
            ))),
        }
    }
}

/// What a DEALLOCATE names.
#[derive(Debug, PartialEq)]
pub enum Target {
    All,
    Named(String),
}

/// The target of `query` if it is one DEALLOCATE statement.
pub fn parse(query: &str) -> Option<Target> {
    let query = query.trim().trim_end_matches(';').trim();
    let mut words = query.split_whitespace();
    if !words.next()?.eq_ignore_ascii_case("deallocate") {
        return None;
    }
    let mut name = words.next()?;
    if name.eq_ignore_ascii_case("prepare") {
        name = words.next()?;
    }
    if words.next().is_some() {
        return None;
    }
    Some(match name.strip_prefix('"').and_then(|n| n.strip_suffix('"')) {
        Some(quoted) => Target::Named(quoted.replace("\"\"", "\"")),
        None if name.eq_ignore_ascii_case("all") => Target::All,
        None => Target::Named(name.to_lowercase()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deallocate_statements_parse() {
        assert_eq!(parse("DEALLOCATE ALL"), Some(Target::All));
        assert_eq!(parse(" deallocate prepare _pg3_0 ;"), Some(Target::Named("_pg3_0".into())));
        assert_eq!(parse("DEALLOCATE \"Q\"\"1\""), Some(Target::Named("Q\"1".into())));
        assert_eq!(parse("DEALLOCATE a; SELECT 1"), None);
        assert_eq!(parse("SELECT 1"), None);
    }
}
