//! A linearizability checker for histories of single-key string operations
//! (GET, SET, SET NX, GETSET, DEL, INCR, APPEND, and WATCH/MULTI/SET/EXEC
//! compare-and-set transactions), after Wing & Gong with Lowe's memoization.
//!
//! # The question
//!
//! Each recorded operation has an invocation time, a completion time and
//! the reply the client saw. The history is linearizable if every operation
//! can be given one instant between its invocation and its completion such
//! that, applied one at a time in that order to a sequential register, each
//! returns exactly the reply recorded. Operations on different keys never
//! constrain each other, so the history is checked one key at a time
//! (linearizability is compositional, Herlihy & Wing's locality).
//!
//! # Unknown outcomes
//!
//! A write whose client saw a timeout, a dropped connection or a cluster
//! error may or may not have taken effect. It is recorded with no
//! completion: it may take effect at any instant after its invocation, or
//! never. A read without a reply constrains nothing and is left out.
//!
//! # The search
//!
//! Invocation and completion events are kept in a time-ordered linked list.
//! The search walks it: at an invocation it tries to linearize that
//! operation now (the model accepts its reply from the current state); at a
//! completion whose operation is not linearized yet, the current prefix is a
//! dead end and it backtracks. A cache of (set of linearized operations,
//! state) pairs prunes every configuration seen before, which keeps real
//! histories of thousands of operations to milliseconds. Once only
//! unknown-outcome operations remain, the rest may simply never have
//! happened, so the history is linearizable.

use std::collections::{BTreeMap, HashSet};
use std::fmt;

/// Nanoseconds on one monotonic clock shared by every client of a history.
pub type Nanos = u64;

/// What a client asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Get,
    Set(Vec<u8>),
    /// `SET key value NX`: a compare-and-set against "absent".
    SetNx(Vec<u8>),
    /// `GETSET`: an atomic swap that returns the old value.
    GetSet(Vec<u8>),
    Del,
    Incr,
    Append(Vec<u8>),
    /// `WATCH k`, `GET k` (recorded as its own [`Op::Get`]), then
    /// `MULTI`, `SET k new`, `EXEC`. The EXEC is this operation: if it
    /// runs, the key still held `expected` (WATCH saw no change since the
    /// GET's value was current). It may abort whenever the key changed
    /// after the WATCH, which the model cannot see, so an abort is always
    /// allowed and changes nothing: the check is that no transaction ever
    /// commits over a value other than the one it read (a lost update).
    Cas {
        expected: Option<Vec<u8>>,
        new: Vec<u8>,
    },
}

/// What the client saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// GET's value, or GETSET's old one (`None`: no such key).
    Value(Option<Vec<u8>>),
    /// SET's `OK` (and SET NX's, when it set).
    Ok,
    /// SET NX's nil: the key existed, nothing was written. For
    /// [`Op::Cas`]: EXEC's nil, the transaction aborted.
    NotSet,
    /// INCR's new value, APPEND's new length, DEL's count.
    Int(i64),
    /// No reply, or an error that does not say whether the write happened.
    Unknown,
}

/// One operation of a history.
#[derive(Debug, Clone)]
pub struct Operation {
    pub client: usize,
    pub key: String,
    pub op: Op,
    pub reply: Reply,
    pub invoked: Nanos,
    /// `None` when the reply is [`Reply::Unknown`].
    pub completed: Option<Nanos>,
}

/// Why a key's history is not linearizable, or could not be decided.
#[derive(Debug, Clone)]
pub struct Violation {
    pub key: String,
    pub explanation: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "key {:?}: {}", self.key, self.explanation)
    }
}

/// How many search steps one key may take before the checker gives up
/// (reported as a violation: an undecided history proves nothing).
const MAX_STEPS: u64 = 50_000_000;

/// Checks `history`, key by key. Reads without a reply are ignored.
pub fn check(history: &[Operation]) -> Result<(), Violation> {
    let mut by_key: BTreeMap<&str, Vec<&Operation>> = BTreeMap::new();
    for operation in history {
        if operation.op == Op::Get && operation.reply == Reply::Unknown {
            continue;
        }
        by_key.entry(&operation.key).or_default().push(operation);
    }
    for (key, operations) in by_key {
        check_key(&operations).map_err(|explanation| Violation { key: key.to_string(), explanation })?;
    }
    Ok(())
}

/// The register's state: the key's value, `None` when absent.
type State = Option<Vec<u8>>;

/// Applies `operation` to `state` if its recorded reply is what a
/// sequential register would answer; returns the state after it.
fn step(state: &State, operation: &Operation) -> Option<State> {
    let known = operation.reply != Reply::Unknown;
    match (&operation.op, &operation.reply) {
        (Op::Get, Reply::Value(value)) => (value == state).then(|| state.clone()),
        (Op::Get, _) => None,
        (Op::Set(value), Reply::Ok | Reply::Unknown) => Some(Some(value.clone())),
        (Op::Set(_), _) => None,
        (Op::SetNx(value), Reply::Ok | Reply::Unknown) if state.is_none() => Some(Some(value.clone())),
        (Op::SetNx(_), Reply::NotSet | Reply::Unknown) if state.is_some() => Some(state.clone()),
        (Op::SetNx(_), _) => None,
        (Op::GetSet(value), Reply::Value(old)) => (old == state).then(|| Some(value.clone())),
        (Op::GetSet(value), Reply::Unknown) => Some(Some(value.clone())),
        (Op::GetSet(_), _) => None,
        (Op::Del, Reply::Int(n)) => (*n == i64::from(state.is_some())).then_some(None),
        (Op::Del, Reply::Unknown) => Some(None),
        (Op::Del, _) => None,
        (Op::Incr, reply) => {
            let current = match state {
                None => 0,
                Some(bytes) => match std::str::from_utf8(bytes).ok().and_then(|s| s.parse::<i64>().ok()) {
                    Some(n) => n,
                    // INCR of a non-integer fails without effect.
                    None => return (!known).then(|| state.clone()),
                },
            };
            let next = current.checked_add(1)?;
            match reply {
                Reply::Int(n) if *n == next => Some(Some(next.to_string().into_bytes())),
                Reply::Unknown => Some(Some(next.to_string().into_bytes())),
                _ => None,
            }
        }
        (Op::Cas { expected, new }, Reply::Ok) => (expected == state).then(|| Some(new.clone())),
        (Op::Cas { .. }, Reply::NotSet) => Some(state.clone()),
        (Op::Cas { expected, new }, Reply::Unknown) => {
            Some(if expected == state { Some(new.clone()) } else { state.clone() })
        }
        (Op::Cas { .. }, _) => None,
        (Op::Append(suffix), reply) => {
            let mut next = state.clone().unwrap_or_default();
            next.extend_from_slice(suffix);
            match reply {
                Reply::Int(n) if *n == next.len() as i64 => Some(Some(next)),
                Reply::Unknown => Some(Some(next)),
                _ => None,
            }
        }
    }
}

const CALL: u8 = 0;
const RETURN: u8 = 1;
const END: usize = usize::MAX;

/// One key's search (see the module docs).
fn check_key(operations: &[&Operation]) -> Result<(), String> {
    // Events sorted by time; at equal times invocations come first, which
    // treats touching operations as concurrent (the lenient reading).
    let mut events: Vec<(Nanos, u8, usize)> = Vec::with_capacity(operations.len() * 2);
    for (index, operation) in operations.iter().enumerate() {
        events.push((operation.invoked, CALL, index));
        events.push((operation.completed.unwrap_or(Nanos::MAX), RETURN, index));
    }
    events.sort();
    let mut list = EventList::new(&events, operations.len());
    let mut state: State = None;
    let mut linearized = vec![0u64; operations.len().div_ceil(64)];
    let mut seen: HashSet<(Vec<u64>, State)> = HashSet::new();
    let mut stack: Vec<(usize, State)> = Vec::new();
    let mut deepest: Vec<usize> = Vec::new();
    // The operation whose completion ended the deepest prefix.
    let mut culprit = 0;
    let mut steps = 0u64;
    let mut entry = list.first();
    loop {
        steps += 1;
        if steps > MAX_STEPS {
            return Err(format!("undecided after {MAX_STEPS} search steps ({} operations)", operations.len()));
        }
        if entry == END {
            return Ok(());
        }
        let (time, kind, index) = events[entry];
        if kind == RETURN {
            if time == Nanos::MAX {
                // Every operation with a reply is linearized.
                return Ok(());
            }
            if stack.len() >= deepest.len() {
                culprit = index;
            }
            let Some((undone, previous)) = stack.pop() else {
                return Err(explain(operations, &deepest, culprit));
            };
            linearized[undone / 64] &= !(1 << (undone % 64));
            state = previous;
            list.unlift(undone);
            entry = list.next_after_call(undone);
            continue;
        }
        if let Some(next) = step(&state, operations[index]) {
            linearized[index / 64] |= 1 << (index % 64);
            if seen.insert((linearized.clone(), next.clone())) {
                stack.push((index, std::mem::replace(&mut state, next)));
                list.lift(index);
                if stack.len() > deepest.len() {
                    deepest = stack.iter().map(|(i, _)| *i).collect();
                }
                entry = list.first();
                continue;
            }
            linearized[index / 64] &= !(1 << (index % 64));
        }
        entry = list.next(entry);
    }
}

/// Describes the longest linearizable prefix found and the operation that
/// could not be placed after it before it completed.
fn explain(operations: &[&Operation], deepest: &[usize], stuck: usize) -> String {
    let mut state: State = None;
    for &index in deepest {
        state = step(&state, operations[index]).expect("the prefix was linearized");
    }
    let shown = deepest.len().saturating_sub(8);
    let tail: Vec<String> = deepest[shown..].iter().map(|&i| describe(operations[i])).collect();
    format!(
        "not linearizable: at most {} of {} operations order consistently; the longest order ends [{}] \
         leaving the value {}, after which {} cannot take effect",
        deepest.len(),
        operations.len(),
        tail.join(", "),
        show_state(&state),
        describe(operations[stuck]),
    )
}

fn describe(operation: &Operation) -> String {
    let op = match &operation.op {
        Op::Get => "GET".to_string(),
        Op::Set(value) => format!("SET {}", String::from_utf8_lossy(value)),
        Op::SetNx(value) => format!("SET {} NX", String::from_utf8_lossy(value)),
        Op::GetSet(value) => format!("GETSET {}", String::from_utf8_lossy(value)),
        Op::Del => "DEL".to_string(),
        Op::Incr => "INCR".to_string(),
        Op::Append(suffix) => format!("APPEND {}", String::from_utf8_lossy(suffix)),
        Op::Cas { expected, new } => {
            format!("EXEC(SET {} if still {})", String::from_utf8_lossy(new), show_state(expected))
        }
    };
    let reply = match &operation.reply {
        Reply::Value(value) => show_state(value),
        Reply::Ok => "OK".to_string(),
        Reply::NotSet => "(nil)".to_string(),
        Reply::Int(n) => n.to_string(),
        Reply::Unknown => "?".to_string(),
    };
    let completed = operation.completed.map_or("never".to_string(), |t| t.to_string());
    format!("client {} {op} -> {reply} [{}..{completed}]", operation.client, operation.invoked)
}

fn show_state(state: &State) -> String {
    match state {
        None => "(nil)".to_string(),
        Some(bytes) => format!("{:?}", String::from_utf8_lossy(bytes)),
    }
}

/// The events not yet linearized, as a doubly linked list over event
/// positions; an operation's two events are unlinked and relinked together,
/// always in last-in-first-out order.
struct EventList {
    next: Vec<usize>,
    prev: Vec<usize>,
    /// Per operation: the positions of its invocation and completion.
    call_at: Vec<usize>,
    return_at: Vec<usize>,
    head: usize,
}

impl EventList {
    fn new(events: &[(Nanos, u8, usize)], operations: usize) -> EventList {
        let head = events.len();
        let mut next = vec![END; events.len() + 1];
        let mut prev = vec![END; events.len() + 1];
        let mut call_at = vec![0; operations];
        let mut return_at = vec![0; operations];
        let mut last = head;
        for (position, &(_, kind, index)) in events.iter().enumerate() {
            next[last] = position;
            prev[position] = last;
            last = position;
            if kind == CALL {
                call_at[index] = position;
            } else {
                return_at[index] = position;
            }
        }
        EventList { next, prev, call_at, return_at, head }
    }

    fn first(&self) -> usize {
        self.next[self.head]
    }

    fn next(&self, position: usize) -> usize {
        self.next[position]
    }

    fn next_after_call(&self, operation: usize) -> usize {
        self.next[self.call_at[operation]]
    }

    fn unlink(&mut self, position: usize) {
        let (prev, next) = (self.prev[position], self.next[position]);
        self.next[prev] = next;
        if next != END {
            self.prev[next] = prev;
        }
    }

    fn relink(&mut self, position: usize) {
        let (prev, next) = (self.prev[position], self.next[position]);
        self.next[prev] = position;
        if next != END {
            self.prev[next] = position;
        }
    }

    fn lift(&mut self, operation: usize) {
        self.unlink(self.call_at[operation]);
        self.unlink(self.return_at[operation]);
    }

    fn unlift(&mut self, operation: usize) {
        self.relink(self.return_at[operation]);
        self.relink(self.call_at[operation]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(client: usize, op: Op, reply: Reply, invoked: Nanos, completed: Nanos) -> Operation {
        let completed = (reply != Reply::Unknown).then_some(completed);
        Operation { client, key: "k".into(), op, reply, invoked, completed }
    }

    fn set(client: usize, value: &str, from: Nanos, to: Nanos) -> Operation {
        op(client, Op::Set(value.into()), Reply::Ok, from, to)
    }

    fn get(client: usize, value: Option<&str>, from: Nanos, to: Nanos) -> Operation {
        op(client, Op::Get, Reply::Value(value.map(Into::into)), from, to)
    }

    fn incr(client: usize, result: i64, from: Nanos, to: Nanos) -> Operation {
        op(client, Op::Incr, Reply::Int(result), from, to)
    }

    #[test]
    fn sequential_and_overlapping_histories_pass() {
        let history = [
            set(0, "a", 0, 10),
            get(1, Some("a"), 11, 20),
            // Overlapping writes: the read may see either, in either order.
            set(0, "b", 21, 40),
            set(1, "c", 22, 41),
            get(2, Some("b"), 42, 50),
            get(2, Some("b"), 51, 60),
        ];
        check(&history).unwrap();
        // A read overlapping a write may see the old or the new value.
        check(&[set(0, "a", 0, 10), set(1, "b", 20, 40), get(2, Some("a"), 25, 30)]).unwrap();
        check(&[set(0, "a", 0, 10), set(1, "b", 20, 40), get(2, Some("b"), 25, 30)]).unwrap();
    }

    #[test]
    fn a_stale_read_is_a_violation() {
        let history = [set(0, "a", 0, 10), set(0, "b", 11, 20), get(1, Some("a"), 21, 30)];
        let violation = check(&history).unwrap_err();
        assert_eq!(violation.key, "k");
        assert!(violation.explanation.contains("GET -> \"a\""), "{violation}");
        // Reading a value after a later value was read is stale too.
        let history = [set(0, "a", 0, 10), set(1, "b", 5, 50), get(2, Some("b"), 20, 25), get(2, Some("a"), 30, 35)];
        check(&history).unwrap_err();
    }

    #[test]
    fn a_lost_acknowledged_write_is_a_violation() {
        let history = [set(0, "a", 0, 10), set(1, "b", 20, 30), get(2, Some("a"), 40, 50)];
        check(&history).unwrap_err();
        let history = [incr(0, 1, 0, 10), incr(1, 2, 20, 30), get(2, Some("1"), 40, 50)];
        check(&history).unwrap_err();
    }

    #[test]
    fn a_duplicated_incr_is_a_violation() {
        // One INCR acknowledged once, applied twice.
        let history = [incr(0, 1, 0, 10), get(1, Some("2"), 20, 30)];
        check(&history).unwrap_err();
        // Two INCRs that both answered 1.
        check(&[incr(0, 1, 0, 10), incr(1, 1, 5, 15)]).unwrap_err();
    }

    #[test]
    fn unknown_writes_may_or_may_not_have_happened() {
        let lost = op(0, Op::Incr, Reply::Unknown, 0, 0);
        // It took effect…
        check(&[lost.clone(), get(1, Some("1"), 20, 30)]).unwrap();
        // …or it did not…
        check(&[lost.clone(), get(1, None, 20, 30)]).unwrap();
        // …but not twice, and not before it was invoked.
        check(&[lost.clone(), get(1, Some("2"), 20, 30)]).unwrap_err();
        let late = op(0, Op::Set("x".into()), Reply::Unknown, 50, 0);
        check(&[late, get(1, Some("x"), 20, 30)]).unwrap_err();
        // Once seen, its effect cannot disappear.
        let history = [lost, get(1, Some("1"), 20, 30), get(1, None, 40, 50)];
        check(&history).unwrap_err();
    }

    #[test]
    fn appends_check_lengths_and_contents() {
        let append = |client, suffix: &str, length, from, to| {
            op(client, Op::Append(suffix.into()), Reply::Int(length), from, to)
        };
        check(&[append(0, "ab", 2, 0, 10), append(1, "c", 3, 5, 15), get(2, Some("abc"), 20, 30)]).unwrap();
        check(&[append(0, "ab", 2, 0, 10), append(1, "c", 3, 5, 15), get(2, Some("cab"), 20, 30)]).unwrap_err();
    }

    #[test]
    fn conditional_writes_and_swaps_must_agree_with_the_state() {
        let set_nx = |client, value: &str, reply, from, to| op(client, Op::SetNx(value.into()), reply, from, to);
        let del = |client, n, from, to| op(client, Op::Del, Reply::Int(n), from, to);
        // Two clients race to take a lock: one wins, one sees it taken.
        check(&[set_nx(0, "a", Reply::Ok, 0, 10), set_nx(1, "b", Reply::NotSet, 5, 15), get(2, Some("a"), 20, 30)])
            .unwrap();
        // Both winning is a violation (a lost compare-and-set).
        check(&[set_nx(0, "a", Reply::Ok, 0, 10), set_nx(1, "b", Reply::Ok, 5, 15)]).unwrap_err();
        // Released, then taken again.
        check(&[set_nx(0, "a", Reply::Ok, 0, 10), del(0, 1, 11, 20), set_nx(1, "b", Reply::Ok, 21, 30)]).unwrap();
        check(&[set_nx(0, "a", Reply::Ok, 0, 10), del(0, 0, 11, 20)]).unwrap_err();
        // A swap returns exactly the value it replaced.
        let getset = |client, value: &str, old: Option<&str>, from, to| {
            op(client, Op::GetSet(value.into()), Reply::Value(old.map(Into::into)), from, to)
        };
        check(&[getset(0, "a", None, 0, 10), getset(1, "b", Some("a"), 20, 30), get(2, Some("b"), 40, 50)]).unwrap();
        check(&[getset(0, "a", None, 0, 10), getset(1, "b", None, 20, 30)]).unwrap_err();
    }

    #[test]
    fn a_transaction_commits_only_over_the_value_it_read() {
        let cas = |client, expected: Option<&str>, new: &str, reply, from, to| {
            op(client, Op::Cas { expected: expected.map(Into::into), new: new.into() }, reply, from, to)
        };
        // Two read-modify-write transactions from "a": one commits, the
        // other aborts, and the aborted one changed nothing.
        check(&[
            set(0, "a", 0, 10),
            cas(1, Some("a"), "b", Reply::Ok, 20, 30),
            cas(2, Some("a"), "c", Reply::NotSet, 21, 31),
            get(3, Some("b"), 40, 50),
        ])
        .unwrap();
        check(&[set(0, "a", 0, 10), cas(2, Some("a"), "c", Reply::NotSet, 21, 31), get(3, Some("c"), 40, 50)])
            .unwrap_err();
        // Both committing is a lost update.
        check(&[
            set(0, "a", 0, 10),
            cas(1, Some("a"), "b", Reply::Ok, 20, 30),
            cas(2, Some("a"), "c", Reply::Ok, 21, 31),
        ])
        .unwrap_err();
        // Committing over a value written after the read is a lost update.
        check(&[set(0, "a", 0, 10), set(1, "x", 12, 14), cas(2, Some("a"), "c", Reply::Ok, 20, 30)]).unwrap_err();
        // An unknown transaction may have committed (only over its value).
        let unknown = cas(1, Some("a"), "b", Reply::Unknown, 20, 0);
        check(&[set(0, "a", 0, 10), unknown.clone(), get(2, Some("b"), 40, 50)]).unwrap();
        check(&[set(0, "a", 0, 10), unknown.clone(), get(2, Some("a"), 40, 50)]).unwrap();
        check(&[set(0, "z", 0, 10), unknown, get(2, Some("b"), 40, 50)]).unwrap_err();
    }

    #[test]
    fn keys_are_independent() {
        let mut other = set(0, "z", 0, 10);
        other.key = "other".into();
        check(&[other, set(1, "a", 0, 10), get(2, Some("a"), 20, 30)]).unwrap();
    }

    #[test]
    fn thousands_of_concurrent_operations_check_quickly() {
        // 5 clients, 2000 overlapping INCRs and reads of one counter, as a
        // correct server would answer them.
        let mut history = Vec::new();
        let mut counter = 0;
        for i in 0..2000u64 {
            let client = (i % 5) as usize;
            let start = i * 10;
            if i % 3 == 0 {
                let value = counter.to_string();
                history.push(get(client, Some(value.as_str()).filter(|_| counter > 0), start, start + 45));
            } else {
                counter += 1;
                history.push(incr(client, counter, start, start + 45));
            }
        }
        check(&history).unwrap();
    }
}
