//! SLOWLOG and LATENCY: what took long on this node (see
//! `crate::monitoring` for what is measured).

use kv::{CommandError, Reply};

use super::flags::{ADMIN, LOADING, NOSCRIPT, STALE};
use super::{help, reply, spec, unknown_subcommand, wrong_arity, Outcome, Spec};
use crate::args::Args;
use crate::session::Session;

type Result = std::result::Result<Outcome, CommandError>;

fn slowlog(session: &mut Session, args: &mut Args) -> Result {
    let sub = args.next()?;
    let monitoring = &session.server.monitoring;
    match String::from_utf8_lossy(&sub).to_ascii_uppercase().as_str() {
        "GET" => {
            let count = match args.next_opt() {
                None => Some(10),
                Some(text) => {
                    let n = kv::number::parse_i64(&text).filter(|n| *n >= -1);
                    let Some(n) = n else {
                        return Err(CommandError::Other("ERR count should be greater than or equal to -1".into()));
                    };
                    (n >= 0).then_some(n as usize)
                }
            };
            args.finish().map_err(|_| wrong_arity("slowlog|get"))?;
            reply(monitoring.slowlog(count))
        }
        "LEN" => {
            args.finish().map_err(|_| wrong_arity("slowlog|len"))?;
            reply(Reply::Int(monitoring.slowlog_len() as i64))
        }
        "RESET" => {
            args.finish().map_err(|_| wrong_arity("slowlog|reset"))?;
            monitoring.slowlog_reset();
            reply(Reply::ok())
        }
        "HELP" => reply(help(&[
            "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "GET [<count>]",
            "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
            "    Entries are made of:",
            "    id, timestamp, time in microseconds, arguments array, client IP and port,",
            "    client name",
            "LEN",
            "    Return the length of the slowlog.",
            "RESET",
            "    Reset the slowlog.",
            "HELP",
            "    Print this help.",
        ])),
        _ => Err(unknown_subcommand(&sub, "slowlog")),
    }
}

fn latency(session: &mut Session, args: &mut Args) -> Result {
    let sub = args.next()?;
    let monitoring = &session.server.monitoring;
    let rest: Vec<String> = args.rest().iter().map(|a| String::from_utf8_lossy(a).into_owned()).collect();
    match String::from_utf8_lossy(&sub).to_ascii_uppercase().as_str() {
        "LATEST" if rest.is_empty() => reply(monitoring.latest()),
        "HISTORY" if rest.len() == 1 => reply(monitoring.history(&rest[0])),
        "RESET" => reply(Reply::Int(monitoring.reset(&rest))),
        "HISTOGRAM" => reply(monitoring.histograms(&rest)),
        "GRAPH" if rest.len() == 1 => {
            let Reply::Array(samples) = monitoring.history(&rest[0]) else { unreachable!("history is an array") };
            if samples.is_empty() {
                return Err(CommandError::Other(format!("ERR No samples available for event '{}'", rest[0])));
            }
            let mut text = format!("{} - latency samples (unix time: milliseconds)\n", rest[0]);
            for sample in samples {
                if let Reply::Array(pair) = sample {
                    if let [Reply::Int(at), Reply::Int(ms)] = pair.as_slice() {
                        text.push_str(&format!("{at}: {ms} {}\n", "#".repeat((*ms).clamp(1, 60) as usize)));
                    }
                }
            }
            reply(Reply::Verbatim(text))
        }
        "DOCTOR" if rest.is_empty() => reply(Reply::Verbatim(doctor(&monitoring.events()))),
        "HELP" => reply(help(&[
            "LATENCY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "DOCTOR",
            "    Return a human readable latency analysis report.",
            "GRAPH <event>",
            "    Return the samples of <event> with a bar per sample.",
            "HISTORY <event>",
            "    Return time-latency samples for the <event> class.",
            "LATEST",
            "    Return the latest latency samples for all events.",
            "RESET [<event> ...]",
            "    Reset latency data of one or more <event> classes.",
            "    (default: reset all data for all event classes)",
            "HISTOGRAM [COMMAND ...]",
            "    Return a cumulative distribution of latencies in the format of a histogram for the specified command names.",
            "    If no commands are specified then all histograms are replied.",
            "HELP",
            "    Print this help.",
        ])),
        "LATEST" | "HISTORY" | "GRAPH" | "DOCTOR" => {
            Err(wrong_arity(&format!("latency|{}", String::from_utf8_lossy(&sub).to_ascii_lowercase())))
        }
        _ => Err(unknown_subcommand(&sub, "latency")),
    }
}

fn doctor(events: &[(&str, usize, u64)]) -> String {
    if events.is_empty() {
        return "Dave, no latency spike was observed during the lifetime of this Redis instance, not in the \
                slightest bit. I honestly think you ought to sleep tonight.\n"
            .into();
    }
    let mut text = String::from(
        "Dave, I have observed latency spikes in this Seshat node. A command's latency here includes its Raft \
         round (a write is fsynced on a majority before its reply):\n\n",
    );
    for (i, (event, samples, max)) in events.iter().enumerate() {
        text.push_str(&format!("{}. {event}: {samples} latency spikes, worst {max} milliseconds.\n", i + 1));
    }
    text.push_str(
        "\nI have a few advices for you:\n- Check the disk's fsync latency and the network round trip between \
         the nodes.\n- Use SLOWLOG GET to see which commands were slow.\n",
    );
    text
}

pub(super) const COMMANDS: &[Spec] = &[
    spec!(
        "slowlog",
        -2,
        ADMIN | LOADING | STALE,
        0,
        0,
        0,
        "server",
        "2.2.12",
        "A container for slow log commands.",
        slowlog
    ),
    spec!(
        "latency",
        -2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        0,
        0,
        0,
        "server",
        "2.8.13",
        "A container for latency diagnostics commands.",
        latency
    ),
];
