//! PostgreSQL drivers against the built binary: psycopg 3 (text and
//! binary) and asyncpg (binary, prepared statements), from PyPI in a
//! virtualenv kept under the target directory (created once, pinned
//! versions). The checks are in `tests/drivers/check.py`.

use std::path::PathBuf;
use std::process::Command;

use seshat_tests::Node;

const PACKAGES: &[&str] = &["psycopg[binary]==3.3.9", "asyncpg==0.32.0"];

/// The virtualenv's python, with the drivers installed.
fn python() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| seshat_tests::package_dir().join("..").join("target"));
    let venv = target.join("seshat-pyvenv");
    let python = venv.join("bin").join("python");
    let ready =
        Command::new(&python).args(["-c", "import psycopg, asyncpg"]).output().is_ok_and(|o| o.status.success());
    if !ready {
        let created = Command::new("python3").args(["-m", "venv"]).arg(&venv).status().unwrap();
        assert!(
            created.success(),
            "python3 -m venv {} failed (scripts/install-deps.sh installs python3-venv)",
            venv.display()
        );
        let installed = Command::new(&python).args(["-m", "pip", "install", "-q"]).args(PACKAGES).status().unwrap();
        assert!(installed.success(), "pip install {PACKAGES:?} failed");
    }
    python
}

#[test]
fn psycopg_and_asyncpg_work_unchanged() {
    let python = python();
    let node = Node::start(&[]).unwrap();
    let script = seshat_tests::package_dir().join("drivers").join("check.py");
    let output = Command::new(python).arg(script).arg(node.pg_port().to_string()).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "drivers failed:\n{stdout}\n{stderr}\nnode log:\n{}", node.log());
    assert!(stdout.contains("passed"), "{stdout}");
}
