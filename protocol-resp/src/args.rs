//! A cursor over a command's arguments.
//!
//! Handlers take arguments in order and call [`Args::finish`] to reject
//! leftovers, so an extra argument is a syntax error rather than ignored.

use bytes::Bytes;
use kv::number::{parse_f64, parse_i64};
use kv::CommandError;

/// The arguments after the command name.
pub struct Args {
    items: std::vec::IntoIter<Bytes>,
}

impl Args {
    pub fn new(items: std::vec::IntoIter<Bytes>) -> Self {
        Args { items }
    }

    /// How many arguments are left.
    pub fn remaining(&self) -> usize {
        self.items.len()
    }

    /// The next argument; a syntax error if there is none.
    pub fn next(&mut self) -> Result<Bytes, CommandError> {
        self.items.next().ok_or(CommandError::Syntax)
    }

    /// The next argument, if any.
    pub fn next_opt(&mut self) -> Option<Bytes> {
        self.items.next()
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
        self.items.by_ref().collect()
    }

    /// Fails with a syntax error if any argument is left.
    pub fn finish(&mut self) -> Result<(), CommandError> {
        match self.items.len() {
            0 => Ok(()),
            _ => Err(CommandError::Syntax),
        }
    }
}
