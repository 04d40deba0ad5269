//! Client programs (redis-cli, psql, pgbench, Python drivers) run with a
//! deadline. A client waiting for an answer the server never sends is a
//! server bug; bounded, it fails its test with what the client printed
//! instead of hanging the whole run until CI's time limit.

use std::io::{self, Read};
use std::process::{Command, Output, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a client program may run in a test: far longer than any of
/// them needs on a loaded machine, far shorter than CI's limit.
pub const CLIENT_LIMIT: Duration = Duration::from_secs(120);

/// [`Command::output`] (stdin closed, stdout and stderr captured) that
/// kills the program if it has not exited within `limit`, and then fails
/// with a `TimedOut` error carrying what it had printed.
pub fn output_within(command: &mut Command, limit: Duration) -> io::Result<Output> {
    let mut child = command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
    let stdout = read_to_end(child.stdout.take().expect("piped stdout"));
    let stderr = read_to_end(child.stderr.take().expect("piped stderr"));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if Instant::now() >= deadline {
            child.kill()?;
            child.wait()?;
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    // The pipes close when the program exits (or is killed), so the readers end.
    let (stdout, stderr) = (stdout.join().expect("reader"), stderr.join().expect("reader"));
    match status {
        Some(status) => Ok(Output { status, stdout, stderr }),
        None => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "{command:?} did not exit within {limit:?}; it printed: {}{}",
                String::from_utf8_lossy(&stdout),
                String::from_utf8_lossy(&stderr)
            ),
        )),
    }
}

fn read_to_end(mut pipe: impl Read + Send + 'static) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        bytes
    })
}
