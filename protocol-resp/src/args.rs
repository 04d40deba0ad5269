//! A cursor over a command's arguments.
//!
//! Handlers take arguments in order and call [`Args::finish`] to reject
//! leftovers, so an extra argument is a syntax error rather than ignored.
//! The cursor borrows the request's words (taking one clones a `Bytes`, a
//! reference count), so the connection keeps them for SLOWLOG and MONITOR
//! without copying the request.

use bytes::Bytes;
use kv::number::{parse_f64, parse_i64};
use kv::CommandError;

/// The arguments after the command name.
pub struct Args<'a> {
    /// The command name as the client spelled it (empty if unknown).
    name: &'a [u8],
    items: &'a [Bytes],
}

impl<'a> Args<'a> {
    pub fn new(items: &'a [Bytes]) -> Self {
        Args { name: b"", items }
    }

    /// The arguments of a request whose first word is the command name.
    pub fn of_request(words: &'a [Bytes]) -> Self {
        match words.split_first() {
            Some((name, items)) => Args { name, items },
            None => Args::new(words),
        }
    }

    /// The command name as the client spelled it: Redis echoes it so in a
    /// few errors (GEOSEARCH's).
    pub fn command_name(&self) -> &'a [u8] {
        self.name
    }

    /// How many arguments are left.
    pub fn remaining(&self) -> usize {
        self.items.len()
    }

    /// The next argument; a syntax error if there is none.
    pub fn next(&mut self) -> Result<Bytes, CommandError> {
        self.next_opt().ok_or(CommandError::Syntax)
    }

    /// The next argument, if any.
    pub fn next_opt(&mut self) -> Option<Bytes> {
        let (first, rest) = self.items.split_first()?;
        self.items = rest;
        Some(first.clone())
    }

    /// The next argument as an integer (Redis's error if it is not one).
    pub fn next_i64(&mut self) -> Result<i64, CommandError> {
        parse_i64(&self.next()?).ok_or(CommandError::NotInteger)
    }

    /// The next argument as a float (Redis's error if it is not one).
    pub fn next_f64(&mut self) -> Result<f64, CommandError> {
        parse_f64(&self.next()?).ok_or(CommandError::NotFloat)
    }

    /// The next argument, upper-cased for keyword matching.
    pub fn next_keyword(&mut self) -> Result<String, CommandError> {
        Ok(String::from_utf8_lossy(&self.next()?).to_ascii_uppercase())
    }

    /// Every remaining argument.
    pub fn rest(&mut self) -> Vec<Bytes> {
        std::mem::take(&mut self.items).to_vec()
    }

    /// Fails with a syntax error if any argument is left.
    pub fn finish(&mut self) -> Result<(), CommandError> {
        match self.items.len() {
            0 => Ok(()),
            _ => Err(CommandError::Syntax),
        }
    }
}
