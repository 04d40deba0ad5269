//! A bank under faults: SQL transactions whose history is checked for
//! serializability, not only for a preserved total.
//!
//! `ACCOUNTS` accounts start with `INITIAL` each. Transfer clients (on
//! every node) run
//!
//! ```sql
//! BEGIN;
//! SELECT id, balance, version FROM bank_accounts WHERE id = src;  -- and dst
//! UPDATE bank_accounts SET balance = balance - amount, version = version + 1 WHERE id = src;
//! UPDATE bank_accounts SET balance = balance + amount, version = version + 1 WHERE id = dst;
//! INSERT INTO bank_transfers VALUES (id, src, dst, amount, <what it read>);
//! COMMIT;
//! ```
//!
//! only when the source can pay (so under any weaker isolation two
//! concurrent withdrawals could overdraw it). Reader clients read the
//! whole table, on its own and in a transaction block, and record any
//! total other than `ACCOUNTS * INITIAL` or a negative balance.
//!
//! After healing, [`Bank::check`] reads the final state and proves:
//! - the total never changed and no balance is negative;
//! - every acknowledged transfer is in `bank_transfers`, no transfer that
//!   definitely failed is, and none twice (its id is the primary key);
//! - per account, the committed transfers that touched it read versions
//!   0, 1, 2, … with no gap or repeat (no lost update), each read the
//!   balance the ones before it left (the account behaves as a
//!   linearizable register), and the final row is what they add up to;
//! - the union of those per-account orders has no cycle: there is one
//!   serial order of all committed transfers consistent with what every
//!   one of them read (Elle's write-read and write-write dependency
//!   graph, which here is exactly conflict serializability).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio_postgres::{Client, SimpleQueryMessage};
use tokio_util::sync::CancellationToken;

pub const ACCOUNTS: i64 = 8;
pub const INITIAL: i64 = 1000;

/// How long a client waits for a reply before counting the transfer
/// unknown.
const OP_TIMEOUT: Duration = Duration::from_secs(4);

/// What a client knows of a transfer it attempted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// COMMIT answered COMMIT.
    Committed,
    /// It cannot have committed (an error before COMMIT, or COMMIT's 40001).
    Failed,
    /// COMMIT's answer was lost or an error that does not say.
    Unknown,
}

/// A committed transfer as `bank_transfers` holds it.
#[derive(Debug, Clone)]
struct Transfer {
    id: i64,
    src: i64,
    dst: i64,
    amount: i64,
    src_balance: i64,
    src_version: i64,
    dst_balance: i64,
    dst_version: i64,
}

/// The shared record of a run.
#[derive(Clone, Default)]
pub struct Bank {
    outcomes: Arc<Mutex<HashMap<i64, Outcome>>>,
    /// Reads that saw a wrong total or a negative balance.
    bad_reads: Arc<Mutex<Vec<String>>>,
    reads: Arc<Mutex<usize>>,
}

async fn connect(port: u16) -> Option<Client> {
    let config = format!("host=127.0.0.1 port={port} user=seshat dbname=seshat connect_timeout=2");
    let (client, connection) =
        tokio::time::timeout(OP_TIMEOUT, tokio_postgres::connect(&config, tokio_postgres::NoTls)).await.ok()?.ok()?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Some(client)
}

/// The rows of `sql`'s last result, as text (NULL as "NULL").
async fn rows(client: &Client, sql: &str) -> Result<Vec<Vec<String>>> {
    let messages = tokio::time::timeout(OP_TIMEOUT, client.simple_query(sql)).await.context("timed out")??;
    Ok(messages
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(row) => {
                Some((0..row.len()).map(|i| row.get(i).unwrap_or("NULL").to_string()).collect())
            }
            _ => None,
        })
        .collect())
}

fn number(text: &str) -> Result<i64> {
    text.parse().with_context(|| format!("not a number: {text}"))
}

impl Bank {
    /// Creates the tables and accounts through `client`.
    pub async fn create(client: &Client) -> Result<Bank> {
        let values: Vec<String> = (0..ACCOUNTS).map(|id| format!("({id}, {INITIAL}, 0)")).collect();
        client
            .simple_query(&format!(
                "CREATE TABLE bank_accounts (id INT PRIMARY KEY, balance BIGINT NOT NULL, version BIGINT NOT NULL);
                 CREATE TABLE bank_transfers (id BIGINT PRIMARY KEY, src INT, dst INT, amount BIGINT,
                     src_balance BIGINT, src_version BIGINT, dst_balance BIGINT, dst_version BIGINT);
                 INSERT INTO bank_accounts VALUES {}",
                values.join(", ")
            ))
            .await?;
        Ok(Bank::default())
    }

    /// Runs `transferers` transfer clients and `readers` reader clients,
    /// spread over `ports`, until `stop`.
    pub async fn run(self, ports: Vec<u16>, transferers: usize, readers: usize, seed: u64, stop: CancellationToken) {
        let mut tasks = Vec::new();
        for client in 0..transferers {
            let (bank, port, stop) = (self.clone(), ports[client % ports.len()], stop.clone());
            tasks.push(tokio::spawn(async move { bank.transferer(client as i64, port, seed, stop).await }));
        }
        for reader in 0..readers {
            let (bank, port, stop) = (self.clone(), ports[(reader + 1) % ports.len()], stop.clone());
            tasks.push(tokio::spawn(async move { bank.reader(reader, port, stop).await }));
        }
        for task in tasks {
            let _ = task.await;
        }
    }

    fn record(&self, id: i64, outcome: Outcome) {
        self.outcomes.lock().expect("outcomes lock").insert(id, outcome);
    }

    async fn transferer(&self, client: i64, port: u16, seed: u64, stop: CancellationToken) {
        let mut rng = StdRng::seed_from_u64(seed.wrapping_mul(1000).wrapping_add(client as u64));
        let mut connection: Option<Client> = None;
        let mut sequence = 0;
        while !stop.is_cancelled() {
            let Some(client_connection) = connection.take().or(connect(port).await) else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            let src = rng.random_range(0..ACCOUNTS);
            let dst = (src + rng.random_range(1..ACCOUNTS)) % ACCOUNTS;
            let amount = rng.random_range(1..=400);
            sequence += 1;
            let id = client * 1_000_000 + sequence;
            match transfer(&client_connection, id, src, dst, amount).await {
                Ok(Some(outcome)) => {
                    self.record(id, outcome);
                    if outcome == Outcome::Committed {
                        connection = Some(client_connection);
                    }
                }
                // The source could not pay: rolled back, nothing to check.
                Ok(None) => connection = Some(client_connection),
                // Before COMMIT: the transaction cannot have committed.
                Err(_) => self.record(id, Outcome::Failed),
            }
        }
    }

    async fn reader(&self, reader: usize, port: u16, stop: CancellationToken) {
        let mut connection: Option<Client> = None;
        let mut in_block = reader % 2 == 1;
        while !stop.is_cancelled() {
            let Some(client) = connection.take().or(connect(port).await) else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            in_block = !in_block;
            let sql = match in_block {
                true => "BEGIN; SELECT id, balance FROM bank_accounts; COMMIT",
                false => "SELECT id, balance FROM bank_accounts",
            };
            let Ok(read) = rows(&client, sql).await else { continue };
            *self.reads.lock().expect("reads lock") += 1;
            let total: i64 = read.iter().map(|row| row[1].parse::<i64>().unwrap_or(i64::MIN / 64)).sum();
            if total != ACCOUNTS * INITIAL
                || read.len() != ACCOUNTS as usize
                || read.iter().any(|r| r[1].starts_with('-'))
            {
                self.bad_reads.lock().expect("bad reads lock").push(format!("{sql}: {read:?}"));
            }
            connection = Some(client);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// (committed, failed, unknown) transfers and full reads so far.
    pub fn counts(&self) -> (usize, usize, usize, usize) {
        let outcomes = self.outcomes.lock().expect("outcomes lock");
        let count = |o: Outcome| outcomes.values().filter(|&&v| v == o).count();
        (count(Outcome::Committed), count(Outcome::Failed), count(Outcome::Unknown), *self.reads.lock().expect("reads"))
    }

    /// The checks of the module docs, on the state read through the
    /// first node of `ports` that answers within 30 s (after healing).
    /// Returns how many committed transfers were checked.
    pub async fn check_through(&self, ports: &[u16]) -> Result<usize> {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            for &port in ports {
                if let Some(client) = connect(port).await {
                    if rows(&client, "SELECT 1 FROM bank_accounts LIMIT 1").await.is_ok() {
                        return self.check(&client).await;
                    }
                }
            }
            ensure!(std::time::Instant::now() < deadline, "no node answered SQL after healing");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn check(&self, client: &Client) -> Result<usize> {
        let bad_reads = self.bad_reads.lock().expect("bad reads lock").clone();
        ensure!(bad_reads.is_empty(), "reads saw an inconsistent table: {bad_reads:?}");
        let accounts = rows(client, "SELECT id, balance, version FROM bank_accounts ORDER BY id").await?;
        let accounts: BTreeMap<i64, (i64, i64)> =
            accounts.iter().map(|r| Ok((number(&r[0])?, (number(&r[1])?, number(&r[2])?)))).collect::<Result<_>>()?;
        let total: i64 = accounts.values().map(|(balance, _)| balance).sum();
        ensure!(total == ACCOUNTS * INITIAL, "the total is {total}, not {}: {accounts:?}", ACCOUNTS * INITIAL);
        ensure!(accounts.values().all(|(balance, _)| *balance >= 0), "an account is overdrawn: {accounts:?}");
        let transfers = rows(client, "SELECT * FROM bank_transfers").await?;
        let transfers: Vec<Transfer> = transfers
            .iter()
            .map(|r| {
                let n: Vec<i64> = r.iter().map(|v| number(v)).collect::<Result<_>>()?;
                Ok(Transfer {
                    id: n[0],
                    src: n[1],
                    dst: n[2],
                    amount: n[3],
                    src_balance: n[4],
                    src_version: n[5],
                    dst_balance: n[6],
                    dst_version: n[7],
                })
            })
            .collect::<Result<_>>()?;
        let present: HashSet<i64> = transfers.iter().map(|t| t.id).collect();
        for (id, outcome) in self.outcomes.lock().expect("outcomes lock").iter() {
            match outcome {
                Outcome::Committed => ensure!(present.contains(id), "acknowledged transfer {id} is missing"),
                Outcome::Failed => ensure!(!present.contains(id), "transfer {id} failed, yet it is stored"),
                Outcome::Unknown => {}
            }
        }
        check_accounts(&accounts, &transfers)?;
        check_acyclic(&accounts, &transfers)?;
        Ok(transfers.len())
    }
}

/// Per account: versions read 0..n once each, each balance read is what
/// the transfers before it left, and the final row is their sum.
fn check_accounts(accounts: &BTreeMap<i64, (i64, i64)>, transfers: &[Transfer]) -> Result<()> {
    for (&account, &(balance, version)) in accounts {
        // (version read, balance read, change) of each transfer touching it.
        let mut touches: Vec<(i64, i64, i64, i64)> = transfers
            .iter()
            .filter_map(|t| match (t.src == account, t.dst == account) {
                (true, _) => Some((t.src_version, t.src_balance, -t.amount, t.id)),
                (_, true) => Some((t.dst_version, t.dst_balance, t.amount, t.id)),
                _ => None,
            })
            .collect();
        touches.sort();
        let mut expected_balance = INITIAL;
        for (position, &(read_version, read_balance, change, id)) in touches.iter().enumerate() {
            if read_version != position as i64 {
                bail!("account {account}: transfer {id} read version {read_version}, expected {position} (lost or duplicated update)");
            }
            if read_balance != expected_balance {
                bail!("account {account}: transfer {id} read balance {read_balance} at version {read_version}, the transfers before it leave {expected_balance}");
            }
            expected_balance += change;
        }
        ensure!(
            (balance, version) == (expected_balance, touches.len() as i64),
            "account {account} ends at balance {balance} version {version}; its {} transfers add up to {expected_balance}",
            touches.len()
        );
    }
    Ok(())
}

/// The per-account orders joined into one graph have no cycle.
fn check_acyclic(accounts: &BTreeMap<i64, (i64, i64)>, transfers: &[Transfer]) -> Result<()> {
    let mut successors: HashMap<i64, Vec<i64>> = HashMap::new();
    let mut predecessors: HashMap<i64, usize> = transfers.iter().map(|t| (t.id, 0)).collect();
    for &account in accounts.keys() {
        let mut chain: Vec<(i64, i64)> = transfers
            .iter()
            .filter_map(|t| match (t.src == account, t.dst == account) {
                (true, _) => Some((t.src_version, t.id)),
                (_, true) => Some((t.dst_version, t.id)),
                _ => None,
            })
            .collect();
        chain.sort();
        for pair in chain.windows(2) {
            successors.entry(pair[0].1).or_default().push(pair[1].1);
            *predecessors.get_mut(&pair[1].1).expect("known transfer") += 1;
        }
    }
    let mut ready: Vec<i64> = predecessors.iter().filter(|(_, &n)| n == 0).map(|(&id, _)| id).collect();
    let mut ordered = 0;
    while let Some(id) = ready.pop() {
        ordered += 1;
        for next in successors.get(&id).into_iter().flatten() {
            let waiting = predecessors.get_mut(next).expect("known transfer");
            *waiting -= 1;
            if *waiting == 0 {
                ready.push(*next);
            }
        }
    }
    ensure!(ordered == transfers.len(), "the committed transfers' dependencies form a cycle: no serial order exists");
    Ok(())
}

/// One transfer: `None` if the source could not pay (rolled back), else
/// what the client knows of its outcome. `Err` for any failure before
/// COMMIT was sent.
async fn transfer(client: &Client, id: i64, src: i64, dst: i64, amount: i64) -> Result<Option<Outcome>> {
    let read = rows(
        client,
        &format!("BEGIN; SELECT id, balance, version FROM bank_accounts WHERE id = {src} OR id = {dst} ORDER BY id"),
    )
    .await;
    let read = match read {
        Ok(read) if read.len() == 2 => read,
        Ok(other) => bail!("read {other:?}"),
        Err(error) => {
            let _ = rows(client, "ROLLBACK").await;
            return Err(error);
        }
    };
    let row = |account: i64| read.iter().find(|r| r[0] == account.to_string()).context("account row");
    let (src_row, dst_row) = (row(src)?, row(dst)?);
    let (src_balance, src_version) = (number(&src_row[1])?, number(&src_row[2])?);
    let (dst_balance, dst_version) = (number(&dst_row[1])?, number(&dst_row[2])?);
    if src_balance < amount {
        rows(client, "ROLLBACK").await?;
        return Ok(None);
    }
    let writes = format!(
        "UPDATE bank_accounts SET balance = balance - {amount}, version = version + 1 WHERE id = {src};
         UPDATE bank_accounts SET balance = balance + {amount}, version = version + 1 WHERE id = {dst};
         INSERT INTO bank_transfers VALUES ({id}, {src}, {dst}, {amount}, {src_balance}, {src_version}, {dst_balance}, {dst_version})"
    );
    if let Err(error) = rows(client, &writes).await {
        let _ = rows(client, "ROLLBACK").await;
        return Err(error);
    }
    let committed = tokio::time::timeout(OP_TIMEOUT, client.simple_query("COMMIT")).await;
    Ok(Some(match committed {
        Ok(Ok(messages)) => match messages.first() {
            Some(SimpleQueryMessage::CommandComplete(_)) => Outcome::Committed,
            _ => Outcome::Unknown,
        },
        Ok(Err(error)) if error.code().is_some_and(|c| c.code() == "40001") => Outcome::Failed,
        _ => Outcome::Unknown,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A transfer of `amount` from `src` (read at `src_read`: version,
    /// balance) to `dst` (read at `dst_read`).
    fn transfer(
        id: i64,
        (src, src_read): (i64, (i64, i64)),
        (dst, dst_read): (i64, (i64, i64)),
        amount: i64,
    ) -> Transfer {
        Transfer {
            id,
            src,
            dst,
            amount,
            src_version: src_read.0,
            src_balance: src_read.1,
            dst_version: dst_read.0,
            dst_balance: dst_read.1,
        }
    }

    /// Every account at `INITIAL`, version 0, except `changed`.
    fn accounts(changed: &[(i64, (i64, i64))]) -> BTreeMap<i64, (i64, i64)> {
        let mut accounts: BTreeMap<i64, (i64, i64)> = (0..ACCOUNTS).map(|id| (id, (INITIAL, 0))).collect();
        accounts.extend(changed.iter().copied());
        accounts
    }

    #[test]
    fn a_serial_history_passes() {
        let history = [
            transfer(1, (0, (0, INITIAL)), (1, (0, INITIAL)), 10),
            transfer(2, (1, (1, INITIAL + 10)), (0, (1, INITIAL - 10)), 30),
        ];
        let accounts = accounts(&[(0, (INITIAL + 20, 2)), (1, (INITIAL - 20, 2))]);
        check_accounts(&accounts, &history).unwrap();
        check_acyclic(&accounts, &history).unwrap();
    }

    #[test]
    fn a_lost_update_a_stale_read_and_a_cycle_are_caught() {
        // Both read version 0 of account 0: one update is lost.
        let lost = [
            transfer(1, (0, (0, INITIAL)), (1, (0, INITIAL)), 10),
            transfer(2, (0, (0, INITIAL)), (2, (0, INITIAL)), 10),
        ];
        let after = accounts(&[(0, (INITIAL - 20, 2)), (1, (INITIAL + 10, 1)), (2, (INITIAL + 10, 1))]);
        assert!(check_accounts(&after, &lost).unwrap_err().to_string().contains("lost or duplicated"));
        // The second read a balance the first did not leave.
        let stale = [
            transfer(1, (0, (0, INITIAL)), (1, (0, INITIAL)), 10),
            transfer(2, (0, (1, INITIAL)), (2, (0, INITIAL)), 10),
        ];
        assert!(check_accounts(&after, &stale).unwrap_err().to_string().contains("read balance"));
        // 1 before 2 on account 0, 2 before 1 on account 1: no serial order.
        let cycle = [
            transfer(1, (0, (0, INITIAL)), (1, (1, INITIAL + 5)), 10),
            transfer(2, (0, (1, INITIAL - 10)), (1, (0, INITIAL)), 5),
        ];
        let after = accounts(&[(0, (INITIAL - 15, 2)), (1, (INITIAL + 15, 2))]);
        assert!(check_acyclic(&after, &cycle).unwrap_err().to_string().contains("cycle"));
    }
}
