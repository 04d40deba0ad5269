//! Client-side caching (CLIENT TRACKING): which keys this node's clients
//! may hold in their caches, and the invalidation messages they get when
//! those keys change.
//!
//! - Default mode remembers the keys of every read a tracking client runs
//!   (OPTIN and OPTOUT with CLIENT CACHING choose which reads). A key is
//!   registered when the read is dispatched, before it runs, so a change
//!   applied after the read always invalidates it; a key is forgotten
//!   once invalidated, as in Redis. BCAST mode tracks prefixes instead and
//!   gets every changed key under them, sorted, one message per prefix.
//! - Invalidations come from this node's own replicas as they apply
//!   (`kv::notify::Applied::changed`): the writes of every client of the
//!   cluster, in apply order. The shards a node holds no replica of (a
//!   placement with fewer replicas than nodes) report through feeds it
//!   follows on nodes that host them (`kv`'s `follow`); a feed that opens
//!   again after a break flushes every client's cache, since changes may
//!   have gone unreported meanwhile. CLIENT TRACKING ON answers once the
//!   feeds are open (or a short while has passed).
//! - A snapshot installed on a replica may change any key: it flushes
//!   every client's cache too.
//! - Delivery is Redis's: a RESP3 connection gets `invalidate` pushes; with
//!   REDIRECT they go to the other connection, as pushes if it speaks
//!   RESP3, else as `__redis__:invalidate` messages if it is in pub/sub
//!   mode. A flush (or SWAPDB) invalidates everything with a null; unlike
//!   Redis, the keys stay remembered (see `owed`), so one read before the
//!   flush may get one more invalidation later.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use bytes::Bytes;
use kv::notify::{Applied, Writer};
use kv::Reply;

use crate::server::Server;

/// The pub/sub channel a RESP2 connection gets redirected invalidations on.
pub(crate) const INVALIDATE_CHANNEL: &str = "__redis__:invalidate";

/// One client's CLIENT TRACKING options.
#[derive(Debug, Clone, Default)]
pub(crate) struct Options {
    /// The client id invalidations go to (0: this client).
    pub redirect: u64,
    pub bcast: bool,
    /// BCAST's prefixes (the empty prefix: every key).
    pub prefixes: BTreeSet<Bytes>,
    pub optin: bool,
    pub optout: bool,
    pub noloop: bool,
    /// CLIENT CACHING YES (OPTIN) or NO (OPTOUT) for the next command.
    pub caching: bool,
    /// The redirect target disconnected.
    pub broken_redirect: bool,
}

#[derive(Default)]
struct Table {
    /// Key → the default-mode clients that may have it cached.
    keys: HashMap<Bytes, BTreeSet<u64>>,
    /// Tracking clients by id.
    clients: HashMap<u64, Options>,
}

/// This node's tracking state.
#[derive(Default)]
pub(crate) struct Tracking {
    table: Mutex<Table>,
    /// The service whose batches report changed keys while any client
    /// tracks (none in unit tests).
    kv: Option<kv::Kv>,
}

/// A message owed to a tracking client: the keys, or `None` for all.
pub(crate) type Invalidation = (u64, Option<Vec<Bytes>>);

impl Tracking {
    pub fn new(kv: kv::Kv) -> Tracking {
        Tracking { table: Mutex::default(), kv: Some(kv) }
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().expect("tracking lock")
    }

    /// The options of `client`, if it tracks.
    pub fn options(&self, client: u64) -> Option<Options> {
        self.table().clients.get(&client).cloned()
    }

    /// Turns tracking on for `client` (or changes its options; BCAST
    /// prefixes add up, as in Redis). Applied batches report their changed
    /// keys while any client tracks (switched under the table's lock, so
    /// an enable and a disable cannot cross).
    pub fn enable(&self, client: u64, options: Options) {
        let mut table = self.table();
        if let Some(kv) = &self.kv {
            kv.track_changes(true);
        }
        let entry = table.clients.entry(client).or_default();
        let mut prefixes = std::mem::take(&mut entry.prefixes);
        prefixes.extend(options.prefixes.iter().cloned());
        if options.bcast && prefixes.is_empty() {
            prefixes.insert(Bytes::new());
        }
        *entry = Options { prefixes, caching: false, broken_redirect: false, ..options };
    }

    /// INFO's counts: tracking clients, keys remembered, (key, client)
    /// items, and distinct BCAST prefixes.
    pub fn stats(&self) -> (usize, usize, usize, usize) {
        let table = self.table();
        let items = table.keys.values().map(BTreeSet::len).sum();
        let prefixes: BTreeSet<&Bytes> = table.clients.values().flat_map(|options| &options.prefixes).collect();
        (table.clients.len(), table.keys.len(), items, prefixes.len())
    }

    /// Turns tracking off for `client` (its keys are dropped lazily, or
    /// all at once when no client tracks any more).
    pub fn disable(&self, client: u64) {
        let mut table = self.table();
        if table.clients.remove(&client).is_some() && table.clients.is_empty() {
            table.keys.clear();
            if let Some(kv) = &self.kv {
                kv.track_changes(false);
            }
        }
    }

    /// CLIENT CACHING: applies to `client`'s next command.
    pub fn set_caching(&self, client: u64) {
        if let Some(options) = self.table().clients.get_mut(&client) {
            options.caching = true;
        }
    }

    /// After each command of a tracking client but CLIENT CACHING itself.
    pub fn command_done(&self, client: u64) {
        if let Some(options) = self.table().clients.get_mut(&client) {
            options.caching = false;
        }
    }

    /// Remembers `keys` as cached by `client`, which is about to read
    /// them, if its mode says this read is cached. Past `max_keys` keys
    /// (`tracking-table-max-keys`; 0: no limit) the table forgets others,
    /// whose clients are owed an invalidation (returned), as Redis does.
    pub fn remember(&self, client: u64, keys: impl IntoIterator<Item = Bytes>, max_keys: u64) -> Vec<Invalidation> {
        let mut table = self.table();
        let Some(options) = table.clients.get(&client) else { return Vec::new() };
        // OPTIN caches only after CACHING YES; OPTOUT all but after CACHING NO.
        let cached = match (options.optin, options.optout) {
            (true, _) => options.caching,
            (_, true) => !options.caching,
            _ => true,
        };
        let cached = cached && !options.bcast;
        if !cached {
            return Vec::new();
        }
        let keys: Vec<Bytes> = keys.into_iter().collect();
        for key in &keys {
            table.keys.entry(key.clone()).or_default().insert(client);
        }
        let excess = (table.keys.len() as u64).saturating_sub(max_keys) as usize;
        if max_keys == 0 || excess == 0 {
            return Vec::new();
        }
        let evicted: Vec<Bytes> = table.keys.keys().filter(|key| !keys.contains(key)).take(excess).cloned().collect();
        let mut owed = Vec::new();
        for key in evicted {
            for client in table.keys.remove(&key).unwrap_or_default() {
                owed.push((client, Some(vec![key.clone()])));
            }
        }
        owed
    }

    /// Sends owed invalidations.
    pub fn deliver(&self, server: &Server, owed: Vec<Invalidation>) {
        for (client, keys) in owed {
            self.send(server, client, keys);
        }
    }

    /// Sends the invalidations `applied` owes this node's tracking clients.
    pub fn invalidate(&self, server: &Server, applied: &Applied) {
        let owed = {
            let mut table = self.table();
            if table.clients.is_empty() {
                return;
            }
            owed(&mut table, server.node.id(), applied)
        };
        self.deliver(server, owed);
    }

    /// Delivers one invalidation to `client` (or where it redirects).
    fn send(&self, server: &Server, client: u64, keys: Option<Vec<Bytes>>) {
        let Some(options) = self.options(client) else { return };
        let keys = keys.map_or(Reply::Nil, |keys| Reply::Array(keys.into_iter().map(Reply::Bulk).collect()));
        if options.redirect == 0 {
            if let Some(own) = server.clients.get(client).filter(|c| c.snapshot().resp >= 3) {
                own.push(Reply::Push(vec![Reply::bulk("invalidate"), keys]));
            }
            return;
        }
        let Some(target) = server.clients.get(options.redirect) else {
            if let Some(options) = self.table().clients.get_mut(&client) {
                options.broken_redirect = true;
            }
            if let Some(own) = server.clients.get(client).filter(|c| c.snapshot().resp >= 3) {
                own.push(Reply::Push(vec![Reply::bulk("tracking-redir-broken"), Reply::Int(options.redirect as i64)]));
            }
            return;
        };
        if target.snapshot().resp >= 3 {
            target.push(Reply::Push(vec![Reply::bulk("invalidate"), keys]));
        } else if server.pubsub.is_subscriber(target.id) {
            target.push(Reply::Push(vec![Reply::bulk("message"), Reply::bulk(INVALIDATE_CHANNEL), keys]));
        }
    }
}

/// The invalidations `applied` owes, forgetting the invalidated keys.
fn owed(table: &mut Table, node: u64, applied: &Applied) -> Vec<Invalidation> {
    let mut owed = Vec::new();
    let own = |writer: &Option<Writer>, client: u64| *writer == Some(Writer { node, client });
    if applied.flushed {
        // Every client drops its whole cache. The keys stay remembered: a
        // read registered before the flush may run after it (reads run
        // after dispatch), and its key must be invalidated when it changes.
        return table.clients.keys().map(|client| (*client, None)).collect();
    }
    for (key, writer) in &applied.changed {
        let Some(clients) = table.keys.remove(key) else { continue };
        for client in clients {
            let Some(options) = table.clients.get(&client) else { continue };
            if options.bcast || (options.noloop && own(writer, client)) {
                continue;
            }
            owed.push((client, Some(vec![key.clone()])));
        }
    }
    for (client, options) in table.clients.iter().filter(|(_, options)| options.bcast) {
        for prefix in &options.prefixes {
            let keys: BTreeSet<Bytes> = applied
                .changed
                .iter()
                .filter(|(key, writer)| key.starts_with(prefix) && !(options.noloop && own(writer, *client)))
                .map(|(key, _)| key.clone())
                .collect();
            if !keys.is_empty() {
                owed.push((*client, Some(keys.into_iter().collect())));
            }
        }
    }
    owed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(text: &str) -> Bytes {
        Bytes::copy_from_slice(text.as_bytes())
    }

    fn changed(keys: &[(&str, Option<u64>)]) -> Applied {
        let changed =
            keys.iter().map(|(k, writer)| (key(k), writer.map(|client| Writer { node: 1, client }))).collect();
        Applied { changed, ..Applied::default() }
    }

    #[test]
    fn a_read_key_is_invalidated_once_then_forgotten() {
        let tracking = Tracking::default();
        tracking.enable(7, Options::default());
        tracking.remember(7, [key("a"), key("b")], 0);
        let mut table = tracking.table();
        assert_eq!(owed(&mut table, 1, &changed(&[("a", None), ("c", None)])), vec![(7, Some(vec![key("a")]))]);
        assert!(owed(&mut table, 1, &changed(&[("a", None)])).is_empty());
    }

    #[test]
    fn noloop_skips_the_client_s_own_writes_and_optin_needs_caching() {
        let tracking = Tracking::default();
        tracking.enable(7, Options { noloop: true, ..Options::default() });
        tracking.enable(8, Options { optin: true, ..Options::default() });
        tracking.remember(7, [key("a")], 0);
        tracking.remember(8, [key("a")], 0);
        tracking.set_caching(8);
        tracking.remember(8, [key("b")], 0);
        let mut table = tracking.table();
        assert!(owed(&mut table, 1, &changed(&[("a", Some(7))])).is_empty());
        assert_eq!(owed(&mut table, 1, &changed(&[("b", Some(7))])), vec![(8, Some(vec![key("b")]))]);
    }

    #[test]
    fn past_the_limit_other_keys_are_forgotten_and_invalidated() {
        let tracking = Tracking::default();
        tracking.enable(7, Options::default());
        assert!(tracking.remember(7, [key("a"), key("b")], 2).is_empty());
        let evicted = tracking.remember(7, [key("c")], 2);
        assert_eq!(evicted.len(), 1);
        assert_eq!(tracking.table().keys.len(), 2);
        assert!(tracking.table().keys.contains_key(&key("c")));
    }

    #[test]
    fn bcast_sends_the_sorted_changed_keys_of_each_prefix() {
        let tracking = Tracking::default();
        let prefixes = [key("user:"), key("item:")].into_iter().collect();
        tracking.enable(7, Options { bcast: true, prefixes, ..Options::default() });
        let mut table = tracking.table();
        let applied = changed(&[("user:2", None), ("other", None), ("user:1", None), ("user:2", None)]);
        assert_eq!(owed(&mut table, 1, &applied), vec![(7, Some(vec![key("user:1"), key("user:2")]))]);
        let flushed = Applied { flushed: true, ..Applied::default() };
        assert_eq!(owed(&mut table, 1, &flushed), vec![(7, None)]);
    }
}
