# Helpers shared by the benchmark scripts (sourced, not run).

# free_port: prints a free loopback TCP port.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
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
