//! CLIENT PAUSE: holds clients' commands until a deadline or CLIENT
//! UNPAUSE. `ALL` holds every command, `WRITE` those that write (or may,
//! like EXEC), as Redis does; a held connection processes nothing after
//! the held command either, so its replies stay in order.

use tokio::sync::watch;
use tokio::time::Instant;

/// The pause in force, if any: until when, and whether it holds every
/// command (else only writes).
type State = Option<(Instant, bool)>;

pub(crate) struct Pause {
    state: watch::Sender<State>,
}

impl Default for Pause {
    fn default() -> Self {
        Pause { state: watch::Sender::new(None) }
    }
}

impl Pause {
    /// Pauses until `until` (a later pause of the same or a wider kind
    /// extends it; a WRITE pause never narrows an ALL one).
    pub(crate) fn pause(&self, until: Instant, all: bool) {
        self.state.send_modify(|state| {
            *state = Some(match *state {
                Some((end, was_all)) if end > Instant::now() => (end.max(until), was_all || all),
                _ => (until, all),
            });
        });
    }

    /// CLIENT UNPAUSE.
    pub(crate) fn unpause(&self) {
        self.state.send_replace(None);
    }

    /// Waits while a pause holds a command that writes (`write`) or not.
    pub(crate) async fn wait(&self, write: bool) {
        let mut state = self.state.subscribe();
        loop {
            let until = match *state.borrow_and_update() {
                Some((until, all)) if until > Instant::now() && (all || write) => until,
                _ => return,
            };
            tokio::select! {
                _ = tokio::time::sleep_until(until) => {}
                changed = state.changed() => if changed.is_err() { return },
            }
        }
    }

    /// Whether any pause is in force (a cheap check before waiting).
    pub(crate) fn active(&self) -> bool {
        self.state.borrow().is_some_and(|(until, _)| until > Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_write_pause_holds_writes_until_its_deadline_and_lets_reads_pass() {
        let pause = Arc::new(Pause::default());
        let start = Instant::now();
        pause.pause(start + Duration::from_secs(5), false);
        pause.wait(false).await;
        assert_eq!(Instant::now(), start, "reads pass");
        pause.wait(true).await;
        assert_eq!(Instant::now(), start + Duration::from_secs(5), "writes wait for the deadline");
        pause.pause(Instant::now() + Duration::from_secs(60), true);
        let held = tokio::spawn({
            let pause = pause.clone();
            async move {
                pause.wait(false).await;
                Instant::now()
            }
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
        pause.unpause();
        let released = held.await.unwrap();
        assert_eq!(released, start + Duration::from_secs(6), "UNPAUSE releases held commands");
    }
}
