//! Client programs (redis-cli, psql, pgbench, Python drivers) run with a
//! deadline. A client waiting for an answer the server never sends is a
//! server bug; bounded, it fails its test with what the client printed
//! instead of hanging the whole run until CI's time limit.

use std::io::{self, Read};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Output, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a client program may run in a test: far longer than any of
/// them needs on a loaded machine, far shorter than CI's limit.
pub const CLIENT_LIMIT: Duration = Duration::from_secs(120);

/// [`Command::output`] (stdin closed, stdout and stderr captured) that
/// kills the program, and any process it started, if it has not exited
/// within `limit`, and then fails with a `TimedOut` error carrying what
/// it had printed.
pub fn output_within(command: &mut Command, limit: Duration) -> io::Result<Output> {
    // A group of its own, which the timeout kills whole: a process it
    // started would otherwise keep the pipes open.
    command.process_group(0);
    let child = command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
    wait_within(child, &format!("{command:?}"), limit)
}

/// [`Child::wait_with_output`] with the same bound, for a program a test
/// started itself (to write its stdin, or to act while it runs); `limit`
/// counts from this call, `what` names the program in the error. The
/// timeout kills the program's process group too when it leads one.
pub fn wait_within(mut child: Child, what: &str, limit: Duration) -> io::Result<Output> {
    let stdout = child.stdout.take().map(read_to_end);
    let stderr = child.stderr.take().map(read_to_end);
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if Instant::now() >= deadline {
            // Fails harmlessly when the program leads no group.
            let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", child.id())]).output();
            child.kill()?;
            child.wait()?;
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    // The pipes close when the program exits (or is killed), so the readers end.
    let joined = |reader: Option<JoinHandle<Vec<u8>>>| reader.map(|r| r.join().expect("reader")).unwrap_or_default();
    let (stdout, stderr) = (joined(stdout), joined(stderr));
    match status {
        Some(status) => Ok(Output { status, stdout, stderr }),
        None => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "{what} did not exit within {limit:?}; it printed: {}{}",
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_program_past_its_limit_is_killed_with_what_it_printed() {
        let started = Instant::now();
        let mut command = Command::new("sh");
        command.args(["-c", "echo waiting; sleep 30"]);
        let error = output_within(&mut command, Duration::from_millis(300)).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert!(error.to_string().contains("it printed: waiting"), "{error}");
        assert!(started.elapsed() < Duration::from_secs(10), "waited {:?}", started.elapsed());
    }

    #[test]
    fn a_program_within_its_limit_gives_its_output() {
        let mut command = Command::new("sh");
        command.args(["-c", "echo out; echo err >&2; exit 3"]);
        let output = output_within(&mut command, CLIENT_LIMIT).unwrap();
        assert_eq!(
            (output.status.code(), &output.stdout[..], &output.stderr[..]),
            (Some(3), &b"out\n"[..], &b"err\n"[..])
        );
    }
}
