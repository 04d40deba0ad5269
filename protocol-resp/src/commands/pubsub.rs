//! Pub/sub commands: SUBSCRIBE, UNSUBSCRIBE, PSUBSCRIBE, PUNSUBSCRIBE,
//! PUBLISH, PUBSUB (see `crate::pubsub` for the cluster fan-out).
//!
//! A RESP2 connection with subscriptions is in subscribed mode: only the
//! commands of [`allowed_when_subscribed`] run (checked by dispatch). RESP3
//! connections may run anything; messages arrive as push frames between
//! replies.

use bytes::Bytes;
use kv::{CommandError, Reply};
use tokio::sync::mpsc;

use super::flags::{FAST, LOADING, NOSCRIPT, NO_MULTI, STALE};
use super::{help, reply, spec, unknown_subcommand, wrong_arity, Outcome, Spec};
use crate::args::Args;
use crate::session::Session;

type Result = std::result::Result<Outcome, CommandError>;

/// The commands a RESP2 connection may run while subscribed.
pub(crate) fn allowed_when_subscribed(name: &str) -> bool {
    matches!(name, "subscribe" | "unsubscribe" | "psubscribe" | "punsubscribe" | "ping" | "quit" | "reset")
}

/// The error for any other command in subscribed mode.
pub(crate) fn subscribed_mode_error(name: &str) -> CommandError {
    CommandError::Other(format!(
        "ERR Can't execute '{name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
    ))
}

fn subscribe_with(session: &mut Session, args: &mut Args, pattern: bool) -> Result {
    let inbox = session.inbox.get_or_insert_with(mpsc::unbounded_channel).0.clone();
    let kind = if pattern { "psubscribe" } else { "subscribe" };
    let mut replies = Vec::new();
    for channel in args.rest() {
        session.server.pubsub.subscribe(session.client.id, &inbox, &channel, pattern);
        let set = if pattern { &mut session.patterns } else { &mut session.channels };
        set.insert(channel.clone());
        let count = session.subscriptions() as i64;
        replies.push(Reply::Push(vec![Reply::bulk(kind), Reply::Bulk(channel), Reply::Int(count)]));
    }
    reply(Reply::Sequence(replies))
}

fn unsubscribe_with(session: &mut Session, args: &mut Args, pattern: bool) -> Result {
    let kind = if pattern { "punsubscribe" } else { "unsubscribe" };
    let mut channels = args.rest();
    if channels.is_empty() {
        let set = if pattern { &session.patterns } else { &session.channels };
        channels = set.iter().cloned().collect();
        if channels.is_empty() {
            let count = session.subscriptions() as i64;
            return reply(Reply::Push(vec![Reply::bulk(kind), Reply::Nil, Reply::Int(count)]));
        }
    }
    let mut replies = Vec::new();
    for channel in channels {
        session.server.pubsub.unsubscribe(session.client.id, &channel, pattern);
        let set = if pattern { &mut session.patterns } else { &mut session.channels };
        set.remove(&channel);
        let count = session.subscriptions() as i64;
        replies.push(Reply::Push(vec![Reply::bulk(kind), Reply::Bulk(channel), Reply::Int(count)]));
    }
    reply(Reply::Sequence(replies))
}

fn subscribe(session: &mut Session, args: &mut Args) -> Result {
    subscribe_with(session, args, false)
}

fn psubscribe(session: &mut Session, args: &mut Args) -> Result {
    subscribe_with(session, args, true)
}

fn unsubscribe(session: &mut Session, args: &mut Args) -> Result {
    unsubscribe_with(session, args, false)
}

fn punsubscribe(session: &mut Session, args: &mut Args) -> Result {
    unsubscribe_with(session, args, true)
}

/// Drops every subscription of the session (RESET, connection close).
pub(crate) fn unsubscribe_all(session: &mut Session) {
    session.server.pubsub.forget(session.client.id);
    session.channels.clear();
    session.patterns.clear();
    session.inbox = None;
}

fn publish(session: &mut Session, args: &mut Args) -> Result {
    let (channel, message) = (args.next()?, args.next()?);
    let server = session.server.clone();
    let node = server.node.clone();
    let members = server.peers();
    Ok(Outcome::Operator(Box::pin(
        async move { Reply::Int(server.pubsub.publish(&node, members, channel, message).await) },
    )))
}

fn pubsub(session: &mut Session, args: &mut Args) -> Result {
    let sub = args.next()?;
    let pubsub = &session.server.pubsub;
    match String::from_utf8_lossy(&sub).to_ascii_uppercase().as_str() {
        "CHANNELS" => {
            let pattern = args.next_opt();
            args.finish().map_err(|_| wrong_arity("pubsub|channels"))?;
            reply(Reply::Array(pubsub.channels(pattern.as_deref()).into_iter().map(Reply::Bulk).collect()))
        }
        "NUMSUB" => {
            let counts = args.rest().into_iter().flat_map(|channel| {
                let count = pubsub.numsub(&channel) as i64;
                [Reply::Bulk(channel), Reply::Int(count)]
            });
            reply(Reply::Array(counts.collect()))
        }
        "NUMPAT" => {
            args.finish().map_err(|_| wrong_arity("pubsub|numpat"))?;
            reply(Reply::Int(pubsub.numpat() as i64))
        }
        "HELP" => reply(help(&[
            "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "CHANNELS [<pattern>]",
            "    Return the currently active channels matching a <pattern> (default: '*').",
            "NUMPAT",
            "    Return number of subscriptions to patterns.",
            "NUMSUB [<channel> ...]",
            "    Return the number of subscribers for the specified channels, excluding",
            "    pattern subscriptions(default: no channels).",
            "HELP",
            "    Print this help.",
        ])),
        _ => Err(unknown_subcommand(&sub, "pubsub")),
    }
}

/// PING while subscribed (RESP2): `["pong", message]`.
pub(crate) fn subscribed_ping(message: Option<Bytes>) -> Reply {
    Reply::Array(vec![Reply::bulk("pong"), Reply::Bulk(message.unwrap_or_default())])
}

pub(super) const COMMANDS: &[Spec] = &[
    spec!(
        "subscribe",
        -2,
        NOSCRIPT | LOADING | STALE | NO_MULTI,
        0,
        0,
        0,
        "pubsub",
        "2.0.0",
        "Listens for messages published to channels.",
        subscribe
    ),
    spec!(
        "unsubscribe",
        -1,
        NOSCRIPT | LOADING | STALE | NO_MULTI,
        0,
        0,
        0,
        "pubsub",
        "2.0.0",
        "Stops listening to messages posted to channels.",
        unsubscribe
    ),
    spec!(
        "psubscribe",
        -2,
        NOSCRIPT | LOADING | STALE | NO_MULTI,
        0,
        0,
        0,
        "pubsub",
        "2.0.0",
        "Listens for messages published to channels that match one or more patterns.",
        psubscribe
    ),
    spec!(
        "punsubscribe",
        -1,
        NOSCRIPT | LOADING | STALE | NO_MULTI,
        0,
        0,
        0,
        "pubsub",
        "2.0.0",
        "Stops listening to messages published to channels that match one or more patterns.",
        punsubscribe
    ),
    spec!(
        "publish",
        3,
        LOADING | STALE | FAST | NO_MULTI,
        0,
        0,
        0,
        "pubsub",
        "2.0.0",
        "Posts a message to a channel.",
        publish
    ),
    spec!("pubsub", -2, LOADING | STALE, 0, 0, 0, "pubsub", "2.8.0", "A container for Pub/Sub commands.", pubsub),
];
