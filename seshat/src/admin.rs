//! `seshat` subcommands for operators: membership commands sent over RESP
//! to any node (`SESHAT MEMBERS` and friends), and `dev-cluster`, which runs
//! a local cluster of child processes.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use bytes::{Bytes, BytesMut};
use clap::Subcommand;
use redis_protocol::resp2::decode::decode_bytes_mut;
use redis_protocol::resp2::encode::extend_encode;
use redis_protocol::resp2::types::BytesFrame;

#[derive(Debug, Clone, Subcommand)]
pub enum AdminCommand {
    /// List the members of the cluster.
    Members {
        /// RESP address of any node.
        #[arg(long, default_value = "127.0.0.1:6379")]
        node: String,
    },
    /// List the Raft groups of a node: leader, term, applied index, voters, learners.
    Groups {
        #[arg(long, default_value = "127.0.0.1:6379")]
        node: String,
    },
    /// List the shards of the Redis keyspace: id, hash slots, leader,
    /// applied index, members, keys.
    Shards {
        #[arg(long, default_value = "127.0.0.1:6379")]
        node: String,
    },
    /// Show the current leader.
    Leader {
        #[arg(long, default_value = "127.0.0.1:6379")]
        node: String,
    },
    /// Add a running node (learner first, then voter).
    AddNode {
        id: u64,
        /// The new node's Raft address.
        raft_addr: String,
        #[arg(long, default_value = "127.0.0.1:6379")]
        node: String,
    },
    /// Remove a node from the cluster.
    RemoveNode {
        id: u64,
        #[arg(long, default_value = "127.0.0.1:6379")]
        node: String,
    },
    /// Run a local cluster: N nodes on loopback, RESP on 6379, 6380, …,
    /// PostgreSQL on 5432, 5433, …, Raft on 7379, 7380, …, data under one
    /// directory. Ctrl-C stops them.
    DevCluster {
        #[arg(long, default_value_t = 3)]
        nodes: u16,
        #[arg(long, default_value = "seshat-dev")]
        dir: PathBuf,
        #[arg(long, default_value_t = 6379)]
        resp_port: u16,
        #[arg(long, default_value_t = 5432)]
        pg_port: u16,
        #[arg(long, default_value_t = 7379)]
        raft_port: u16,
    },
}

/// Runs an operator command; returns the process exit code.
pub fn run(command: AdminCommand) -> anyhow::Result<i32> {
    // LEADER answers one `id addr` pair; the others a list, one per line.
    let one_line = matches!(command, AdminCommand::Leader { .. });
    let (node, words): (String, Vec<String>) = match command {
        AdminCommand::Members { node } => (node, vec!["SESHAT".into(), "MEMBERS".into()]),
        AdminCommand::Groups { node } => (node, vec!["SESHAT".into(), "GROUPS".into()]),
        AdminCommand::Shards { node } => (node, vec!["SESHAT".into(), "SHARDS".into()]),
        AdminCommand::Leader { node } => (node, vec!["SESHAT".into(), "LEADER".into()]),
        AdminCommand::AddNode { id, raft_addr, node } => {
            (node, vec!["SESHAT".into(), "ADD-NODE".into(), id.to_string(), raft_addr])
        }
        AdminCommand::RemoveNode { id, node } => (node, vec!["SESHAT".into(), "REMOVE-NODE".into(), id.to_string()]),
        AdminCommand::DevCluster { nodes, dir, resp_port, pg_port, raft_port } => {
            return crate::dev_cluster::run(nodes, &dir, resp_port, pg_port, raft_port)
        }
    };
    let reply = call(&node, &words)?;
    match reply {
        BytesFrame::Error(error) => {
            eprintln!("{error}");
            Ok(1)
        }
        BytesFrame::Array(items) if !one_line => {
            for item in &items {
                println!("{}", text(item));
            }
            Ok(0)
        }
        other => {
            println!("{}", text(&other));
            Ok(0)
        }
    }
}

/// Sends one command to the RESP listener at `addr` and reads the reply.
fn call(addr: &str, words: &[String]) -> anyhow::Result<BytesFrame> {
    let mut stream = TcpStream::connect(addr).with_context(|| format!("cannot connect to {addr}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let request = BytesFrame::Array(words.iter().map(|w| BytesFrame::BulkString(Bytes::from(w.clone()))).collect());
    let mut out = BytesMut::new();
    extend_encode(&mut out, &request, false)?;
    stream.write_all(&out)?;
    let mut buffer = BytesMut::new();
    loop {
        if let Some((frame, _, _)) = decode_bytes_mut(&mut buffer)? {
            return Ok(frame);
        }
        let mut chunk = [0u8; 4096];
        let read = stream.read(&mut chunk)?;
        anyhow::ensure!(read > 0, "{addr} closed the connection");
        buffer.extend_from_slice(&chunk[..read]);
    }
}

fn text(frame: &BytesFrame) -> String {
    match frame {
        BytesFrame::SimpleString(s) | BytesFrame::BulkString(s) => String::from_utf8_lossy(s).into_owned(),
        BytesFrame::Integer(i) => i.to_string(),
        BytesFrame::Error(e) => e.to_string(),
        BytesFrame::Null => "(none)".into(),
        BytesFrame::Array(items) => items.iter().map(text).collect::<Vec<_>>().join(" "),
    }
}
