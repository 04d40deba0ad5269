//! `seshat dev-cluster`: a local cluster of child `seshat` processes for
//! trying Seshat out. Each node keeps its data under `<dir>/node<N>`, so
//! running it again restarts the same cluster.

use std::path::Path;
use std::process::{Child, Command};

use anyhow::Context;

pub fn run(nodes: u16, dir: &Path, resp_port: u16, pg_port: u16, raft_port: u16) -> anyhow::Result<i32> {
    anyhow::ensure!((1..=9).contains(&nodes), "--nodes must be between 1 and 9");
    let exe = std::env::current_exe().context("cannot find the seshat binary")?;
    let members: Vec<String> = (0..nodes).map(|i| format!("{}=127.0.0.1:{}", i + 1, raft_port + i)).collect();
    let members = members.join(",");
    // The nodes share one machine: they share its default cache budget.
    let block_cache_mb = (storage::default_block_cache_mb() / usize::from(nodes)).to_string();
    let mut children: Vec<Child> = Vec::new();
    for i in 0..nodes {
        let data_dir = dir.join(format!("node{}", i + 1));
        let spawned = Command::new(&exe)
            .arg("--node-id")
            .arg((i + 1).to_string())
            .arg("--resp-addr")
            .arg(format!("127.0.0.1:{}", resp_port + i))
            .arg("--pg-addr")
            .arg(format!("127.0.0.1:{}", pg_port + i))
            .arg("--raft-addr")
            .arg(format!("127.0.0.1:{}", raft_port + i))
            .arg("--initial-members")
            .arg(&members)
            .arg("--data-dir")
            .arg(&data_dir)
            .arg("--log-level")
            .arg("warn")
            .arg("--block-cache-mb")
            .arg(&block_cache_mb)
            .spawn();
        match spawned {
            Ok(child) => children.push(child),
            Err(error) => {
                stop(&mut children);
                return Err(error).context("cannot start a node");
            }
        }
    }
    println!("seshat dev-cluster: {nodes} nodes, data under {}", dir.display());
    for i in 0..nodes {
        println!(
            "  node {}: redis-cli -p {}   psql -h 127.0.0.1 -p {}   (raft 127.0.0.1:{})",
            i + 1,
            resp_port + i,
            pg_port + i,
            raft_port + i
        );
    }
    println!("Any node serves any command. Ctrl-C stops the cluster.");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let exited = runtime.block_on(async {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
        let mut tick = tokio::time::interval(std::time::Duration::from_millis(200));
        loop {
            tokio::select! {
                _ = term.recv() => return None,
                _ = int.recv() => return None,
                _ = tick.tick() => {
                    if let Some(i) = children.iter_mut().position(|c| matches!(c.try_wait(), Ok(Some(_)))) {
                        return Some(i + 1);
                    }
                }
            }
        }
    });
    stop(&mut children);
    match exited {
        Some(node) => {
            eprintln!("seshat dev-cluster: node {node} exited; stopped the others");
            Ok(1)
        }
        None => Ok(0),
    }
}

/// Sends SIGTERM to every child still running and waits for all of them.
fn stop(children: &mut [Child]) {
    for child in children.iter_mut() {
        if let Ok(None) = child.try_wait() {
            // SAFETY: kill(2) has no memory effects; the pid is a child we
            // spawned and have not reaped, so it cannot name another process.
            unsafe {
                libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
            }
        }
    }
    for child in children.iter_mut() {
        let _ = child.wait();
    }
}
