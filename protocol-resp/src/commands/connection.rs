//! Connection commands: PING, ECHO, AUTH, HELLO, SELECT, QUIT, RESET, CLIENT.

use kv::{CommandError, Reply};

use super::flags::{FAST, LOADING, NOSCRIPT, NO_AUTH, STALE};
use super::keys::db_index;
use super::server::REDIS_VERSION;
use super::{help, reply, spec, unknown_subcommand, wrong_arity, Outcome, Spec};
use crate::args::Args;
use crate::encode::Protocol;
use crate::session::{ReplyMode, Session};

type Result = std::result::Result<Outcome, CommandError>;

fn ping(session: &mut Session, args: &mut Args) -> Result {
    if session.protocol == Protocol::Resp2 && session.subscriptions() > 0 {
        let message = args.next_opt();
        args.finish().map_err(|_| wrong_arity("ping"))?;
        return reply(super::pubsub::subscribed_ping(message));
    }
    match args.next_opt() {
        None => reply(Reply::Status("PONG".into())),
        Some(message) => {
            args.finish().map_err(|_| wrong_arity("ping"))?;
            reply(Reply::Bulk(message))
        }
    }
}

fn echo(_session: &mut Session, args: &mut Args) -> Result {
    reply(Reply::Bulk(args.next()?))
}

/// Checks credentials against `requirepass`; the only user is `default`.
/// Without `requirepass` the default user takes any password, as Redis's
/// `nopass` default user does.
fn authenticate(session: &mut Session, user: &[u8], password: &[u8]) -> std::result::Result<(), CommandError> {
    let Some(expected) = session.server.requirepass() else {
        if user != b"default" {
            return Err(wrong_pass());
        }
        session.authenticated = true;
        return Ok(());
    };
    if user != b"default" || password != expected.as_bytes() {
        return Err(wrong_pass());
    }
    session.authenticated = true;
    Ok(())
}

fn wrong_pass() -> CommandError {
    CommandError::Other("WRONGPASS invalid username-password pair or user is disabled.".into())
}

fn auth(session: &mut Session, args: &mut Args) -> Result {
    let (user, password) = match args.remaining() {
        1 if !session.server.requires_auth() => {
            return Err(CommandError::Other(
                "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?".into(),
            ))
        }
        1 => (bytes::Bytes::from_static(b"default"), args.next()?),
        2 => (args.next()?, args.next()?),
        _ => return Err(CommandError::Syntax),
    };
    authenticate(session, &user, &password)?;
    reply(Reply::ok())
}

fn hello(session: &mut Session, args: &mut Args) -> Result {
    let mut protocol = session.protocol;
    if let Some(version) = args.next_opt() {
        protocol = match kv::number::parse_i64(&version) {
            Some(2) => Protocol::Resp2,
            Some(3) => Protocol::Resp3,
            Some(_) => return Err(CommandError::Other("NOPROTO unsupported protocol version".into())),
            None => return Err(CommandError::Other("ERR Protocol version is not an integer or out of range".into())),
        };
    }
    let mut credentials = None;
    let mut name = None;
    while args.remaining() > 0 {
        let option = args.next()?;
        match String::from_utf8_lossy(&option).to_ascii_uppercase().as_str() {
            "AUTH" if args.remaining() >= 2 => credentials = Some((args.next()?, args.next()?)),
            "SETNAME" if args.remaining() >= 1 => name = Some(args.next()?),
            _ => {
                return Err(CommandError::Other(format!(
                    "ERR Syntax error in HELLO option '{}'",
                    String::from_utf8_lossy(&option)
                )))
            }
        }
    }
    if let Some((user, password)) = credentials {
        authenticate(session, &user, &password)?;
    }
    if !session.authenticated {
        return Err(CommandError::Other(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time".into(),
        ));
    }
    if let Some(name) = name {
        set_name(session, &name)?;
    }
    session.set_protocol(protocol);
    reply(Reply::Map(vec![
        (Reply::bulk("server"), Reply::bulk("seshat")),
        (Reply::bulk("version"), Reply::bulk(REDIS_VERSION)),
        (Reply::bulk("proto"), Reply::Int(protocol.version())),
        (Reply::bulk("id"), Reply::Int(session.client.id as i64)),
        (Reply::bulk("mode"), Reply::bulk("standalone")),
        (Reply::bulk("role"), Reply::bulk("master")),
        (Reply::bulk("modules"), Reply::Array(vec![])),
    ]))
}

fn select(session: &mut Session, args: &mut Args) -> Result {
    let db = db_index(args)?;
    if db != 0 && session.server.facts.cluster_enabled {
        return Err(CommandError::Other("ERR SELECT is not allowed in cluster mode".into()));
    }
    session.select(db);
    reply(Reply::ok())
}

fn quit(session: &mut Session, _args: &mut Args) -> Result {
    session.closing = true;
    reply(Reply::ok())
}

fn reset(session: &mut Session, _args: &mut Args) -> Result {
    session.discard();
    session.unwatch();
    super::pubsub::unsubscribe_all(session);
    session.server.tracking.disable(session.client.id);
    session.tracking = false;
    session.select(0);
    session.set_protocol(Protocol::Resp2);
    session.authenticated = !session.server.requires_auth();
    session.client.update(|state| state.name = None);
    reply(Reply::Status("RESET".into()))
}

fn set_name(session: &Session, name: &[u8]) -> std::result::Result<(), CommandError> {
    if name.iter().any(|&b| !(b'!'..=b'~').contains(&b)) {
        return Err(CommandError::Other(
            "ERR Client names cannot contain spaces, newlines or special characters.".into(),
        ));
    }
    let name = (!name.is_empty()).then(|| String::from_utf8_lossy(name).into_owned());
    session.client.update(|state| state.name = name);
    Ok(())
}

fn client_list(session: &Session, ids: Option<Vec<u64>>) -> String {
    session
        .server
        .clients
        .all()
        .iter()
        .filter(|client| ids.as_ref().is_none_or(|ids| ids.contains(&client.id)))
        .map(|client| client.describe(session.server.tracking.options(client.id)) + "\n")
        .collect()
}

fn client(session: &mut Session, args: &mut Args) -> Result {
    let sub = args.next()?;
    let sub_upper = String::from_utf8_lossy(&sub).to_ascii_uppercase();
    let arity = |args: &mut Args, n: usize| {
        if args.remaining() == n {
            Ok(())
        } else {
            Err(wrong_arity(&format!("client|{}", sub_upper.to_ascii_lowercase())))
        }
    };
    match sub_upper.as_str() {
        "ID" => {
            arity(args, 0)?;
            reply(Reply::Int(session.client.id as i64))
        }
        "SETNAME" => {
            arity(args, 1)?;
            set_name(session, &args.next()?)?;
            reply(Reply::ok())
        }
        "GETNAME" => {
            arity(args, 0)?;
            reply(Reply::bulk_or_nil(session.client.snapshot().name.map(bytes::Bytes::from)))
        }
        "INFO" => {
            arity(args, 0)?;
            let tracking = session.server.tracking.options(session.client.id);
            reply(Reply::Verbatim(session.client.describe(tracking) + "\n"))
        }
        "LIST" => {
            let mut ids = None;
            while args.remaining() > 0 {
                match args.next_keyword()?.as_str() {
                    "TYPE" if args.remaining() > 0 => {
                        let kind = args.next_keyword()?;
                        if !matches!(kind.as_str(), "NORMAL" | "MASTER" | "REPLICA" | "PUBSUB") {
                            return Err(CommandError::Other(format!("ERR Unknown client type '{}'", kind.to_ascii_lowercase())));
                        }
                        if kind != "NORMAL" {
                            ids = Some(Vec::new());
                        }
                    }
                    "ID" if args.remaining() > 0 => {
                        let mut wanted = Vec::new();
                        while args.remaining() > 0 {
                            let id = args.next_i64().ok().filter(|id| *id > 0).ok_or_else(|| CommandError::Other("ERR Invalid client ID".into()))?;
                            wanted.push(id as u64);
                        }
                        ids = Some(wanted);
                    }
                    _ => return Err(CommandError::Syntax),
                }
            }
            reply(Reply::Verbatim(client_list(session, ids)))
        }
        "SETINFO" => {
            arity(args, 2)?;
            let attribute = args.next_keyword()?;
            let value = String::from_utf8_lossy(&args.next()?).into_owned();
            if value.chars().any(|c| !('!'..='~').contains(&c)) {
                return Err(CommandError::Other(format!(
                    "ERR {} cannot contain spaces, newlines or special characters.",
                    attribute.to_ascii_lowercase()
                )));
            }
            match attribute.as_str() {
                "LIB-NAME" => session.client.update(|state| state.lib_name = Some(value)),
                "LIB-VER" => session.client.update(|state| state.lib_ver = Some(value)),
                other => return Err(CommandError::Other(format!("ERR Unrecognized option '{other}'"))),
            }
            reply(Reply::ok())
        }
        "KILL" => client_kill(session, args),
        "TRACKING" if args.remaining() >= 1 => super::tracking::tracking(session, args),
        "CACHING" if args.remaining() >= 1 => super::tracking::caching(session, args),
        "GETREDIR" => {
            arity(args, 0)?;
            super::tracking::getredir(session)
        }
        "TRACKINGINFO" => {
            arity(args, 0)?;
            super::tracking::trackinginfo(session)
        }
        "PAUSE" => {
            if !(1..=2).contains(&args.remaining()) {
                return Err(wrong_arity("client|pause"));
            }
            let millis = kv::number::parse_i64(&args.next()?)
                .ok_or_else(|| CommandError::Other("ERR timeout is not an integer or out of range".into()))?;
            if millis < 0 {
                return Err(CommandError::Other("ERR timeout is negative".into()));
            }
            let all = match args.next_opt() {
                None => true,
                Some(mode) if mode.eq_ignore_ascii_case(b"ALL") => true,
                Some(mode) if mode.eq_ignore_ascii_case(b"WRITE") => false,
                Some(_) => return Err(CommandError::Other("ERR CLIENT PAUSE mode must be WRITE or ALL".into())),
            };
            let until = tokio::time::Instant::now() + std::time::Duration::from_millis(millis as u64);
            session.server.pause.pause(until, all);
            reply(Reply::ok())
        }
        "UNPAUSE" => {
            arity(args, 0)?;
            session.server.pause.unpause();
            reply(Reply::ok())
        }
        "REPLY" => {
            arity(args, 1)?;
            match args.next_keyword()?.as_str() {
                "ON" => session.reply_mode = ReplyMode::On,
                "OFF" => {
                    session.reply_mode = ReplyMode::Off;
                    session.silence_this = true;
                }
                "SKIP" => {
                    // Only the next command: OFF stays OFF.
                    if session.reply_mode == ReplyMode::On {
                        session.reply_mode = ReplyMode::SkipNext;
                    }
                    session.silence_this = true;
                }
                _ => return Err(CommandError::Syntax),
            }
            reply(Reply::ok())
        }
        "NO-EVICT" | "NO-TOUCH" => {
            arity(args, 1)?;
            let mode = args.next_keyword()?;
            if mode != "ON" && mode != "OFF" {
                return Err(CommandError::Syntax);
            }
            reply(Reply::ok())
        }
        "HELP" => reply(help(&[
            "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "CACHING (YES|NO)",
            "    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.",
            "GETREDIR",
            "    Return the client ID we are redirecting to when tracking is enabled.",
            "GETNAME",
            "    Return the name of the current connection.",
            "ID",
            "    Return the ID of the current connection.",
            "INFO",
            "    Return information about the current client connection.",
            "KILL <ip:port>",
            "    Kill connection made from <ip:port>.",
            "KILL <option> <value> [<option> <value> [...]]",
            "    Kill connections. Options are: ID <client-id>, ADDR <ip:port>, LADDR <ip:port>, SKIPME (YES|NO).",
            "PAUSE <timeout> [WRITE|ALL]",
            "    Suspend all, or just write, clients for <timeout> milliseconds.",
            "REPLY (ON|OFF|SKIP)",
            "    Control the replies sent to the current connection.",
            "UNPAUSE",
            "    Stop the current client pause, resuming traffic.",
            "LIST [options ...]",
            "    Return information about client connections. Options: TYPE (NORMAL|MASTER|REPLICA|PUBSUB), ID id [id ...].",
            "SETNAME <name>",
            "    Assign the name <name> to the current connection.",
            "SETINFO <option> <value>",
            "    Set client meta attr. Options are: LIB-NAME, LIB-VER.",
            "TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]",
            "         [OPTIN] [OPTOUT] [NOLOOP]",
            "    Control server assisted client side caching.",
            "TRACKINGINFO",
            "    Report tracking status for the current connection.",
            "NO-EVICT (ON|OFF)",
            "    Protect current client connection from eviction.",
            "NO-TOUCH (ON|OFF)",
            "    Will not touch LRU/LFU stats when this mode is on.",
            "HELP",
            "    Print this help.",
        ])),
        _ => Err(unknown_subcommand(&sub, "client")),
    }
}

/// CLIENT KILL, old form (`addr`) or filters (ID, ADDR, LADDR, SKIPME).
fn client_kill(session: &mut Session, args: &mut Args) -> Result {
    if args.remaining() == 1 {
        let addr = String::from_utf8_lossy(&args.next()?).into_owned();
        let target = session.server.clients.all().into_iter().find(|c| c.addr.to_string() == addr);
        return match target {
            Some(client) => {
                session.server.clients.kill(&client);
                reply(Reply::ok())
            }
            None => Err(CommandError::Other("ERR No such client".into())),
        };
    }
    if args.remaining() == 0 || !args.remaining().is_multiple_of(2) {
        return Err(CommandError::Syntax);
    }
    let (mut id, mut addr, mut laddr, mut skip_me) = (None, None, None, true);
    while args.remaining() > 0 {
        let filter = args.next_keyword()?;
        let value = args.next()?;
        let text = String::from_utf8_lossy(&value).into_owned();
        match filter.as_str() {
            "ID" => {
                id = Some(
                    kv::number::parse_i64(&value)
                        .filter(|id| *id > 0)
                        .ok_or_else(|| CommandError::Other("ERR client-id should be greater than 0".into()))?
                        as u64,
                )
            }
            "ADDR" => addr = Some(text),
            "LADDR" => laddr = Some(text),
            "SKIPME" => match text.to_ascii_lowercase().as_str() {
                "yes" => skip_me = true,
                "no" => skip_me = false,
                _ => return Err(CommandError::Syntax),
            },
            _ => return Err(CommandError::Syntax),
        }
    }
    let mut killed = 0;
    for client in session.server.clients.all() {
        let selected = id.is_none_or(|id| client.id == id)
            && addr.as_ref().is_none_or(|a| client.addr.to_string() == *a)
            && laddr.as_ref().is_none_or(|a| client.local_addr.to_string() == *a)
            && !(skip_me && client.id == session.client.id);
        if selected {
            session.server.clients.kill(&client);
            killed += 1;
        }
    }
    reply(Reply::Int(killed))
}

pub(super) const COMMANDS: &[Spec] = &[
    spec!("ping", -1, FAST | STALE, 0, 0, 0, "connection", "1.0.0", "Returns the server's liveliness response.", ping),
    spec!("echo", 2, FAST, 0, 0, 0, "connection", "1.0.0", "Returns the given string.", echo),
    spec!(
        "auth",
        -2,
        NOSCRIPT | LOADING | STALE | FAST | NO_AUTH,
        0,
        0,
        0,
        "connection",
        "1.0.0",
        "Authenticates the connection.",
        auth
    ),
    spec!(
        "hello",
        -1,
        NOSCRIPT | LOADING | STALE | FAST | NO_AUTH,
        0,
        0,
        0,
        "connection",
        "6.0.0",
        "Handshakes with the Redis server.",
        hello
    ),
    spec!(
        "select",
        2,
        LOADING | STALE | FAST,
        0,
        0,
        0,
        "connection",
        "1.0.0",
        "Changes the selected database.",
        select
    ),
    spec!(
        "quit",
        -1,
        NOSCRIPT | LOADING | STALE | FAST | NO_AUTH,
        0,
        0,
        0,
        "connection",
        "1.0.0",
        "Closes the connection.",
        quit
    ),
    spec!(
        "reset",
        1,
        NOSCRIPT | LOADING | STALE | FAST | NO_AUTH,
        0,
        0,
        0,
        "connection",
        "6.2.0",
        "Resets the connection.",
        reset
    ),
    spec!(
        "client",
        -2,
        NOSCRIPT | LOADING | STALE,
        0,
        0,
        0,
        "connection",
        "2.4.0",
        "A container for client connection commands.",
        client
    ),
];
