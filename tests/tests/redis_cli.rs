//! The real `redis-cli` against the real binary.

use std::process::Command;

use seshat_tests::bounded::{wait_within, CLIENT_LIMIT};
use seshat_tests::Node;

fn redis_cli(node: &Node, args: &[&str]) -> String {
    seshat_tests::redis_cli(node.port(), args)
}

#[test]
fn redis_cli_one_shot_commands() -> anyhow::Result<()> {
    let node = Node::start(&[])?;
    assert_eq!(redis_cli(&node, &["SET", "k", "v"]), "OK\n");
    assert_eq!(redis_cli(&node, &["GET", "k"]), "v\n");
    assert_eq!(redis_cli(&node, &["--no-raw", "GET", "missing"]), "(nil)\n");
    assert_eq!(redis_cli(&node, &["--no-raw", "INCR", "k"]), "(error) ERR value is not an integer or out of range\n");
    assert_eq!(redis_cli(&node, &["-n", "2", "SET", "k", "db2"]), "OK\n");
    assert_eq!(redis_cli(&node, &["-n", "2", "GET", "k"]), "db2\n");
    assert_eq!(redis_cli(&node, &["GET", "k"]), "v\n");
    assert_eq!(redis_cli(&node, &["-3", "--no-raw", "HELLO", "3"]).lines().nth(2), Some("3# \"proto\" => (integer) 3"));
    Ok(())
}

#[test]
fn redis_cli_reads_commands_from_stdin_and_scans() -> anyhow::Result<()> {
    let node = Node::start(&[])?;
    let mut child = Command::new("redis-cli")
        .args(["-p", &node.port().to_string()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        for i in 0..50 {
            writeln!(stdin, "SET key:{i} {i}")?;
        }
    }
    let output = wait_within(child, "redis-cli", CLIENT_LIMIT)?;
    assert_eq!(String::from_utf8(output.stdout)?.lines().filter(|l| *l == "OK").count(), 50);
    let scanned = redis_cli(&node, &["--scan", "--pattern", "key:*"]);
    assert_eq!(scanned.lines().count(), 50);
    Ok(())
}
