# Helpers shared by the benchmark scripts (sourced, not run).

# bench_setup NAME: a fresh work dir in $work, an empty $pids list, and an
# EXIT trap that stops every process in $pids and removes $work.
bench_setup() {
    work=$(mktemp -d -t "seshat-$1-XXXXXX")
    pids=()
    trap 'for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"' EXIT
}

# free_port: prints a loopback TCP port that is free now, below the kernel's
# ephemeral range (32768-60999), so no outgoing connection can take it
# before the server binds it.
free_port() {
    python3 -c '
import random, socket
for port in random.sample(range(20000, 32000), 12000):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        continue
    finally:
        s.close()
    print(port)
    break
'
}

# wait_ready PORT: waits (up to 20 s) until a RESP server answers PING.
wait_ready() {
    for _ in $(seq 1 400); do
        if redis-cli -p "$1" PING >/dev/null 2>&1; then return 0; fi
        sleep 0.05
    done
    echo "server on port $1 did not start" >&2
    exit 1
}
