"""redis-py's cluster client against a Seshat node speaking the Redis
Cluster protocol (tests/tests/cluster_protocol.rs runs it): slot discovery,
single-key commands routed by slot, hash-tagged multi-key commands,
pipelines, and CROSSSLOT for keys of several slots."""

import sys

from redis.cluster import RedisCluster
from redis.exceptions import ClusterCrossSlotError


def main(port):
    rc = RedisCluster(host="127.0.0.1", port=port, decode_responses=True)
    slots = rc.cluster_slots()
    assert list(slots.keys()) == [(0, 16383)], slots
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
    main(int(sys.argv[1]))
