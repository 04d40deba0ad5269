"""redis-py's cluster client against Seshat speaking the Redis Cluster
protocol (tests/tests/cluster_protocol.rs and shards_cluster.rs run it,
with the number of nodes that lead shards): slot discovery,
single-key commands routed by slot, hash-tagged multi-key commands,
pipelines, and CROSSSLOT for keys of several slots."""

import sys

from redis.cluster import RedisCluster
from redis.exceptions import ClusterCrossSlotError


def main(port, masters):
    rc = RedisCluster(host="127.0.0.1", port=port, decode_responses=True)
    slots = rc.cluster_slots()
    covered = sorted(slots.keys())
    assert covered[0][0] == 0 and covered[-1][1] == 16383, slots
    assert all(a[1] + 1 == b[0] for a, b in zip(covered, covered[1:])), slots
    assert len({tuple(s["primary"]) for s in slots.values()}) == masters, slots
    for i in range(200):
        rc.set(f"key:{i}", i)
    assert all(rc.get(f"key:{i}") == str(i) for i in range(200))
    assert rc.keyslot("123456789") == 12739
    assert rc.cluster_keyslot("user:{42}:x") == 8000
    rc.mset({"{user}a": "1", "{user}b": "2"})
    assert rc.mget("{user}a", "{user}b") == ["1", "2"]
    assert rc.mget_nonatomic(["key:1", "key:2", "key:3"]) == ["1", "2", "3"]
    pipe = rc.pipeline()
    pipe.set("counter", 1)
    pipe.incr("counter")
    pipe.incrby("key:7", 10)
    assert pipe.execute() == [True, 2, 17]
    node = rc.get_default_node().redis_connection
    try:
        node.execute_command("MSET", "a", "1", "b", "2")
    except ClusterCrossSlotError:
        pass  # redis-py's class for a -CROSSSLOT reply
    else:
        raise AssertionError("MSET across slots succeeded")
    assert rc.cluster_countkeysinslot(rc.keyslot("key:5")) >= 1
    print("passed")


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 1)
