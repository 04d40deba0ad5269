//! A node stops hosting a shard and erases every trace of it, and can
//! host it again, empty, without touching the other shards.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kv::{Kv, KvConfig, KvStart, ManualClock, Reply, SetCondition, SetExpiry, SetReply, WriteOp};
use raft::{Bootstrap, GroupSettings, RaftNode};
use storage::keyspace::group_prefix;
use storage::{Family, Layout, Reader, Service, Storage};
use tokio::net::TcpListener;

fn set(key: &str) -> WriteOp {
    WriteOp::Set {
        key: Bytes::from(key.to_string()),
        value: Bytes::from_static(b"v"),
        condition: SetCondition::Always,
        expiry: SetExpiry::Clear,
        reply: SetReply::Ok,
    }
}

/// Keys of `family` under group `shard`'s prefix.
fn prefixed(storage: &Storage, family: Family, shard: u32) -> usize {
    let store = storage.store(Service::Kv);
    let prefix = group_prefix(shard);
    store
        .scan(family, &prefix, None)
        .take_while(|entry| entry.as_ref().is_ok_and(|(k, _)| k.starts_with(&prefix)))
        .count()
}

#[tokio::test]
async fn an_unhosted_shard_is_erased_and_the_others_keep_their_data() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open(dir.path(), Layout::Shared).unwrap();
    let node = RaftNode::start(1, TcpListener::bind("127.0.0.1:0").await.unwrap(), None).unwrap();
    let opened = Kv::open(KvStart {
        node: &node,
        store: storage.store(Service::Kv),
        snapshots_dir: dir.path().join("snapshots"),
        shards: Some(2),
        default_shards: 2,
        meta_store: storage.store(Service::Meta),
        settings: GroupSettings::default(),
        bootstrap: Bootstrap::Initialize([(1, node.addr().to_string())].into()),
        clock: Arc::new(ManualClock::new(1_700_000_000_000)),
        config: KvConfig::default(),
        script_commands: Arc::default(),
    })
    .await
    .unwrap();
    let kv = opened.start_groups().await.unwrap();
    while !kv.groups().iter().all(|group| group.is_leader()) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Keys in both shards.
    let shard_of = |key: &str| kv.slot_shard(storage::keyspace::hash_slot(key.as_bytes()));
    let keys: Vec<String> = (0..40).map(|i| format!("key{i}")).collect();
    for key in &keys {
        assert_eq!(kv.write(Some(shard_of(key)), 0, set(key)).await.unwrap(), Reply::ok());
    }
    let in_shard = |shard| keys.iter().filter(|key| shard_of(key) == shard).count() as u64;
    assert!(in_shard(0) > 0 && in_shard(1) > 0);
    assert_eq!(kv.shard_keys(1).unwrap(), in_shard(1));
    assert!(prefixed(&storage, Family::KvRaftLog, 1) > 0 && prefixed(&storage, Family::KvRaftMeta, 1) > 0);

    kv.unhost(1).await.unwrap();
    assert!(kv.group_of(1).is_none());
    assert_eq!(kv.shard_keys(1).unwrap(), 0, "shard 1's keys are erased");
    for family in [Family::KvRaftLog, Family::KvRaftMeta, Family::KvMeta] {
        assert_eq!(prefixed(&storage, family, 1), 0, "{family:?} keeps keys of shard 1");
    }
    assert!(!dir.path().join("snapshots/kv-1").exists());
    // No other node hosts it: a write to it fails, and applies nowhere.
    let refused = kv.write(Some(1), 0, set("x")).await.unwrap_err();
    assert_eq!(refused.to_string(), "group kv/1 is unavailable: no node hosting shard 1 could be reached");
    // Shard 0 is untouched and keeps serving.
    assert_eq!(kv.shard_keys(0).unwrap(), in_shard(0));
    assert_eq!(kv.write(Some(0), 0, set("more")).await.unwrap(), Reply::ok());

    // Hosted again, the shard starts empty and waits to be added.
    kv.host(1).await.unwrap();
    let group = kv.group_of(1).expect("hosted again");
    assert!(group.members().is_empty() && !group.is_leader());
    assert_eq!(kv.shard_keys(1).unwrap(), 0);
    kv.shutdown().await;
}
