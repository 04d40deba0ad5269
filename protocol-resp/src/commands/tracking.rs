//! CLIENT TRACKING, CACHING, GETREDIR and TRACKINGINFO: client-side
//! caching's commands (the table is `crate::tracking`), with Redis 7.0's
//! options, checks and error strings.

use std::collections::BTreeSet;

use bytes::Bytes;
use kv::notify::Writer;
use kv::{CommandError, Reply};

use super::Outcome;
use crate::args::Args;
use crate::session::Session;
use crate::tracking::Options;

type Result = std::result::Result<Outcome, CommandError>;

fn other(text: &str) -> CommandError {
    CommandError::Other(format!("ERR {text}"))
}

fn reply(reply: Reply) -> Result {
    Ok(Outcome::Reply(reply))
}

/// Whether two prefixes would invalidate a common key.
fn overlap(a: &[u8], b: &[u8]) -> bool {
    let n = a.len().min(b.len());
    a[..n] == b[..n]
}

/// Redis's refusal of prefixes that overlap each other or the client's.
fn check_prefixes(prefixes: &[Bytes], existing: &BTreeSet<Bytes>) -> std::result::Result<(), CommandError> {
    let text = |bytes: &Bytes| String::from_utf8_lossy(bytes).into_owned();
    for (i, prefix) in prefixes.iter().enumerate() {
        if let Some(collision) = existing.iter().find(|old| overlap(old, prefix)) {
            return Err(other(&format!(
                "Prefix '{}' overlaps with an existing prefix '{}'. Prefixes for a single client must not overlap.",
                text(prefix),
                text(collision)
            )));
        }
        if let Some(later) = prefixes[i + 1..].iter().find(|later| overlap(prefix, later)) {
            return Err(other(&format!(
                "Prefix '{}' overlaps with another provided prefix '{}'. Prefixes for a single client must not overlap.",
                text(prefix),
                text(later)
            )));
        }
    }
    Ok(())
}

/// CLIENT TRACKING ON|OFF [REDIRECT id] [BCAST] [PREFIX p]… [OPTIN]
/// [OPTOUT] [NOLOOP].
pub(super) fn tracking(session: &mut Session, args: &mut Args) -> Result {
    let switch = args.next_keyword()?;
    let mut options = Options::default();
    let mut prefixes = Vec::new();
    while args.remaining() > 0 {
        let more = args.remaining() > 1;
        match args.next_keyword()?.as_str() {
            "REDIRECT" if more => {
                if options.redirect != 0 {
                    return Err(other("A client can only redirect to a single other client"));
                }
                let id = args.next_i64()?;
                if id <= 0 || session.server.clients.get(id as u64).is_none() {
                    return Err(other("The client ID you want redirect to does not exist"));
                }
                options.redirect = id as u64;
            }
            "BCAST" => options.bcast = true,
            "OPTIN" => options.optin = true,
            "OPTOUT" => options.optout = true,
            "NOLOOP" => options.noloop = true,
            "PREFIX" if more => prefixes.push(args.next()?),
            _ => return Err(CommandError::Syntax),
        }
    }
    let tracking = &session.server.tracking;
    let id = session.client.id;
    match switch.as_str() {
        "ON" => {
            if !options.bcast && !prefixes.is_empty() {
                return Err(other("PREFIX option requires BCAST mode to be enabled"));
            }
            let current = tracking.options(id);
            if current.as_ref().is_some_and(|current| current.bcast != options.bcast) {
                return Err(other("You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode."));
            }
            if options.bcast && (options.optin || options.optout) {
                return Err(other("OPTIN and OPTOUT are not compatible with BCAST"));
            }
            if options.optin && options.optout {
                return Err(other("You can't specify both OPTIN mode and OPTOUT mode"));
            }
            let switches = |current: &Options| (options.optin && current.optout) || (options.optout && current.optin);
            if current.as_ref().is_some_and(switches) {
                return Err(other("You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode."));
            }
            if options.bcast {
                check_prefixes(&prefixes, &current.map(|c| c.prefixes).unwrap_or_default())?;
            }
            options.prefixes = prefixes.into_iter().collect();
            tracking.enable(id, options);
            session.tracking = true;
            if !session.server.kv.hosts_every_shard() && session.transaction.is_none() {
                // The shards held elsewhere report through feeds: OK once
                // they are open (a feed that opens later flushes).
                let kv = session.server.kv.clone();
                return Ok(Outcome::Operator(Box::pin(async move {
                    kv.changes_followed().await;
                    Reply::ok()
                })));
            }
        }
        "OFF" => {
            tracking.disable(id);
            session.tracking = false;
        }
        _ => return Err(CommandError::Syntax),
    }
    reply(Reply::ok())
}

/// CLIENT CACHING YES|NO: whether the next command's reads are cached.
pub(super) fn caching(session: &mut Session, args: &mut Args) -> Result {
    let tracking = &session.server.tracking;
    let Some(options) = tracking.options(session.client.id) else {
        return Err(other(
            "CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled",
        ));
    };
    match args.next_keyword()?.as_str() {
        "YES" if options.optin => tracking.set_caching(session.client.id),
        "YES" => return Err(other("CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.")),
        "NO" if options.optout => tracking.set_caching(session.client.id),
        "NO" => return Err(other("CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.")),
        _ => return Err(CommandError::Syntax),
    }
    reply(Reply::ok())
}

/// CLIENT GETREDIR: the redirect target, 0 for none, -1 if not tracking.
pub(super) fn getredir(session: &mut Session) -> Result {
    let options = session.server.tracking.options(session.client.id);
    reply(Reply::Int(options.map_or(-1, |options| options.redirect as i64)))
}

/// CLIENT TRACKINGINFO.
pub(super) fn trackinginfo(session: &mut Session) -> Result {
    let options = session.server.tracking.options(session.client.id);
    let mut flags = vec![if options.is_some() { "on" } else { "off" }];
    let mut prefixes = Vec::new();
    let mut redirect = -1;
    if let Some(options) = options {
        let set = [
            (options.bcast, "bcast"),
            (options.optin, "optin"),
            (options.optin && options.caching, "caching-yes"),
            (options.optout, "optout"),
            (options.optout && options.caching, "caching-no"),
            (options.noloop, "noloop"),
            (options.broken_redirect, "broken_redirect"),
        ];
        flags.extend(set.iter().filter(|(on, _)| *on).map(|(_, name)| *name));
        prefixes = options.prefixes.into_iter().map(Reply::Bulk).collect();
        redirect = options.redirect as i64;
    }
    reply(Reply::Map(vec![
        (Reply::bulk("flags"), Reply::Set(flags.into_iter().map(Reply::bulk).collect())),
        (Reply::bulk("redirect"), Reply::Int(redirect)),
        (Reply::bulk("prefixes"), Reply::Array(prefixes)),
    ]))
}

/// Before each command of a tracking client: remembers the keys a read
/// is about to fetch, and ends a CLIENT CACHING that applied to the
/// previous command.
pub(super) fn before_command(session: &Session, spec: &super::Spec, words: &[Bytes]) {
    let (tracking, id) = (&session.server.tracking, session.client.id);
    if spec.flags & super::flags::READONLY != 0 {
        if let Ok(keys) = super::keyspec::keys(spec, words) {
            let max_keys = session.server.config.read().expect("config lock").tracking_table_max_keys;
            let evicted = tracking.remember(id, keys.into_iter().map(|(key, _)| key), max_keys);
            tracking.deliver(&session.server, evicted);
        }
    }
    let caching = spec.name == "client" && words.get(1).is_some_and(|word| word.eq_ignore_ascii_case(b"CACHING"));
    if !caching {
        tracking.command_done(id);
    }
}

/// The writer an entry names: the session's client, if it tracks with
/// NOLOOP (so its own writes do not invalidate its cache).
pub(crate) fn writer(session: &Session) -> Option<Writer> {
    if !session.tracking {
        return None;
    }
    let noloop = session.server.tracking.options(session.client.id).is_some_and(|options| options.noloop);
    noloop.then(|| Writer { node: session.server.node.id(), client: session.client.id })
}
