#!/usr/bin/env bash
# A throwaway PostgreSQL server for the search tests, on 127.0.0.1 only.
#
#   tests/postgres_server.sh start DIR   # prints the SQLAlchemy URL; DIR must not exist yet
#   tests/postgres_server.sh stop DIR    # stops the server and deletes DIR
#
# Used by .ci/run (which exports the URL as DNNLAB_TEST_POSTGRES_URL) and by tests/test_search.py
# when that variable is unset, so CI and a developer's machine start the server the same way.
# initdb refuses to run as root, so as root the server runs as the `postgres` system user that
# Debian's package creates. Trust authentication is safe here: TCP on 127.0.0.1, no Unix socket,
# and the cluster is deleted on stop.
set -euo pipefail

pg_bin() {
    if command -v initdb >/dev/null 2>&1; then
        dirname "$(command -v initdb)"
        return
    fi
    # Debian installs the server binaries off PATH, one folder per major version.
    local dir
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    [[ -n "$dir" && -x "$dir/initdb" ]] || { echo "postgres_server.sh: no initdb found" >&2; exit 3; }
    echo "$dir"
}

as_server_user() {
    if [[ $(id -u) -eq 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start() {
    local dir=$1 bin port
    bin=$(pg_bin)
    port=$(free_port)
    mkdir "$dir"
    [[ $(id -u) -eq 0 ]] && chown postgres: "$dir"
    as_server_user "$bin/initdb" --pgdata="$dir/data" --username=dnnlab --auth=trust \
        --encoding=UTF8 --no-sync >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; exit 1; }
    # fsync off: a crash loses nothing we need, and it keeps the tests fast on a busy disk.
    as_server_user "$bin/pg_ctl" --pgdata="$dir/data" --log="$dir/server.log" --wait --timeout=60 \
        -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories='' -c fsync=off" \
        start >/dev/null || { cat "$dir/server.log" >&2; exit 1; }
    echo "postgresql://dnnlab@127.0.0.1:$port/postgres"
}

stop() {
    local dir=$1
    [[ -d "$dir/data" ]] && as_server_user "$(pg_bin)/pg_ctl" --pgdata="$dir/data" --mode=immediate \
        --wait stop >/dev/null 2>&1 || true
    rm -rf "$dir"
}

case "${1:-}" in
    start) start "$2" ;;
    stop) stop "$2" ;;
    *) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac
