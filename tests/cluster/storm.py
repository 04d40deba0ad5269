"""redis-py's cluster client writing and reading for SECONDS while the
shards' leaders move (tests/tests/shards_cluster.rs hands leadership
over meanwhile): every command must succeed, following MOVED to the new
leaders, and every read must see the write before it."""

import sys
import time

from redis.cluster import RedisCluster


def main(port, seconds):
    rc = RedisCluster(host="127.0.0.1", port=port, decode_responses=True)
    deadline = time.monotonic() + seconds
    done = 0
    while time.monotonic() < deadline:
        key = f"storm:{done % 500}"
        rc.set(key, done)
        value = rc.get(key)
        assert value == str(done), (key, value, done)
        done += 1
    print(f"passed {done} writes")


if __name__ == "__main__":
    main(int(sys.argv[1]), float(sys.argv[2]))
