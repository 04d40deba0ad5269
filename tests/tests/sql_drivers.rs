//! PostgreSQL drivers against the built binary: psycopg 3 (text and
//! binary) and asyncpg (binary, prepared statements), from PyPI in a
//! virtualenv kept under the target directory (`seshat_tests::python`). The checks are in `tests/drivers/check.py`.

use std::process::Command;

use seshat_tests::bounded::{output_within, CLIENT_LIMIT};
use seshat_tests::Node;

#[test]
fn psycopg_and_asyncpg_work_unchanged() {
    let python = seshat_tests::python();
    let node = Node::start(&[]).unwrap();
    let script = seshat_tests::package_dir().join("drivers").join("check.py");
    let mut command = Command::new(python);
    command.arg(script).arg(node.pg_port().to_string());
    let output = output_within(&mut command, CLIENT_LIMIT).unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "drivers failed:\n{stdout}\n{stderr}\nnode log:\n{}", node.log());
    assert!(stdout.contains("passed"), "{stdout}");
}
