//! FAILOVER: hands the master role (the kv group's Raft leadership) to a
//! replica, as a leadership handover (`raft::Group::hand_over`).
//!
//! Redis's syntax, argument checks and error lines, with two differences
//! that follow from Raft:
//! - Any node takes it and forwards it to the leader, as every Seshat
//!   command; Redis refuses it on a replica.
//! - It answers once leadership has moved (well under a second with the
//!   default timings) or with the reason it did not; Redis answers OK at
//!   once and may abort later. Without TIMEOUT the handover gets the
//!   group's membership timeout. FORCE is accepted and changes nothing: no
//!   Raft node can win an election without the whole committed log, so the
//!   target is always brought up to date first.
//!
//! `TO host port` names a replica as ROLE lists it: by its Raft address.

use std::time::Duration;

use kv::{CommandError, Reply};
use raft::{GroupError, HandoverError};

use super::admin::host_port;
use super::flags::{ADMIN, NOSCRIPT, STALE};
use super::{group_error, spec, Outcome, Spec};
use crate::args::Args;
use crate::session::Session;

type Result = std::result::Result<Outcome, CommandError>;

fn error(line: &str) -> CommandError {
    CommandError::Other(format!("ERR {line}"))
}

/// What FAILOVER was asked to do.
#[derive(Default)]
struct Request {
    timeout_ms: i64,
    force: bool,
    target: Option<(String, i64)>,
}

/// Parses the options in Redis's order: each at most once, TIMEOUT
/// positive, anything else a syntax error.
fn parse(args: &mut Args) -> std::result::Result<Request, CommandError> {
    let mut request = Request::default();
    while let Some(word) = args.next_opt() {
        let word = String::from_utf8_lossy(&word).to_ascii_uppercase();
        match word.as_str() {
            "TIMEOUT" if args.remaining() >= 1 && request.timeout_ms == 0 => {
                request.timeout_ms = args.next_i64()?;
                if request.timeout_ms <= 0 {
                    return Err(error("FAILOVER timeout must be greater than 0"));
                }
            }
            "TO" if args.remaining() >= 2 && request.target.is_none() => {
                let host = String::from_utf8_lossy(&args.next()?).into_owned();
                let port = args.next_i64()?;
                request.target = Some((host, port));
            }
            "FORCE" if !request.force => request.force = true,
            _ => return Err(CommandError::Syntax),
        }
    }
    Ok(request)
}

fn failover(session: &mut Session, args: &mut Args) -> Result {
    let words = args.rest();
    if let [only] = words.as_slice() {
        if only.eq_ignore_ascii_case(b"ABORT") {
            let group = session.server.kv.group().clone();
            return Ok(Outcome::Operator(Box::pin(async move {
                match group.abort_handover().await {
                    Ok(()) => Reply::ok(),
                    Err(failure) => Reply::Error(failover_error(failure)),
                }
            })));
        }
    }
    let request = parse(&mut Args::new(&words))?;
    failover_with(session, request)
}

fn failover_with(session: &mut Session, request: Request) -> Result {
    let group = session.server.kv.group().clone();
    let status = group.status();
    if status.members.iter().filter(|m| m.voter).count() < 2 {
        return Err(error("FAILOVER requires connected replicas."));
    }
    if request.force && (request.timeout_ms == 0 || request.target.is_none()) {
        return Err(error("FAILOVER with force option requires both a timeout and target HOST and IP."));
    }
    let target = match &request.target {
        None => None,
        Some((host, port)) => {
            let leader = status.leader.as_ref().map(|m| m.id);
            let member = status
                .members
                .iter()
                .filter(|m| Some(m.id) != leader)
                .find(|m| host_port(&m.addr) == (host.clone(), *port))
                .ok_or_else(|| error("FAILOVER target HOST and PORT is not a replica."))?;
            Some(member.id)
        }
    };
    let timeout = (request.timeout_ms > 0).then(|| Duration::from_millis(request.timeout_ms as u64));
    tracing::info!(client = session.client.id, ?target, ?timeout, "FAILOVER");
    Ok(Outcome::Operator(Box::pin(async move {
        match group.hand_over(target, timeout).await {
            Ok(()) => Reply::ok(),
            Err(failure) => Reply::Error(failover_error(failure)),
        }
    })))
}

/// A failed handover as Redis words it where Redis has a line for it.
fn failover_error(failure: GroupError) -> CommandError {
    let GroupError::Handover(reason) = failure else {
        return CommandError::Other(group_error(failure));
    };
    match reason {
        HandoverError::InProgress => error("FAILOVER already in progress."),
        HandoverError::NotInProgress => error("No failover in progress."),
        HandoverError::NoOtherVoter => error("FAILOVER requires connected replicas."),
        HandoverError::NotAMember(_) | HandoverError::AlreadyLeads(_) => {
            error("FAILOVER target HOST and PORT is not a replica.")
        }
        HandoverError::NotAVoter(_) => error("FAILOVER target replica is not online: it is a learner, not a voter."),
        other => error(&format!("FAILOVER did not complete: {other}.")),
    }
}

pub(super) const COMMANDS: &[Spec] = &[spec!(
    "failover",
    -1,
    ADMIN | NOSCRIPT | STALE,
    0,
    0,
    0,
    "server",
    "6.2.0",
    "Start a coordinated failover between this server and one of its replicas.",
    failover
)];
