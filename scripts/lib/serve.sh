# Sourced by scripts that test a real `allot serve` over HTTP (fuzz-api,
# api-contract). Not executable on its own.
#
#   allot_binary            sets $allot: $ALLOT_BIN if given, else builds it
#   allot_start <dir>       fresh SQLite database in <dir>, an admin key, and
#                           `allot serve` on a free loopback port; sets $url,
#                           $key, $server_pid, $server_log
#   allot_stop              SIGTERM, then waits for a graceful exit (SIGKILL
#                           after 15 s); returns the exit status
#   python_venv <dir> <requirement>...
#                           a venv at <dir> holding exactly these pinned
#                           requirements (from PyPI), reused when it does

allot_binary() {
    if [ -n "${ALLOT_BIN:-}" ]; then
        allot=$ALLOT_BIN
    else
        printf '\n== building allot\n'
        cargo build -p allot-cli
        allot=$root/target/debug/allot
    fi
}

allot_start() {
    local dir=$1
    mkdir -p "$dir"
    local db_url="sqlite://$dir/allot.db"
    server_log="$dir/serve.log"
    key=$("$allot" keys create --role admin --db "$db_url" 2>/dev/null | tail -n1)
    case "$key" in allot_*) ;; *) echo "could not create an admin key" >&2; return 1 ;; esac
    # Port 0: the kernel picks a free port; the server prints the address it got.
    "$allot" serve --db "$db_url" --listen 127.0.0.1:0 >"$server_log" 2>&1 &
    server_pid=$!
    url=""
    for _ in $(seq 1 100); do
        url=$(grep -o 'listening on http://[0-9.:]*' "$server_log" | head -n1 | sed 's/^listening on //' || true)
        [ -n "$url" ] && break
        kill -0 "$server_pid" 2>/dev/null || { cat "$server_log" >&2; echo "the server exited" >&2; return 1; }
        sleep 0.1
    done
    [ -n "$url" ] || { cat "$server_log" >&2; echo "the server did not start" >&2; return 1; }
    echo "serving at $url"
}

allot_stop() {
    local status=0
    if [ -n "${server_pid:-}" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null || true
        for _ in $(seq 1 150); do
            kill -0 "$server_pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$server_pid" 2>/dev/null; then
            echo "allot serve did not stop within 15 s of SIGTERM" >&2
            kill -9 "$server_pid" 2>/dev/null || true
            status=1
        fi
        wait "$server_pid" 2>/dev/null || status=$?
    fi
    server_pid=""
    return "$status"
}

python_venv() {
    local dir=$1
    shift
    local want
    want=$(printf '%s\n' "$@" | sort)
    if [ "$(cat "$dir/.requirements" 2>/dev/null)" != "$want" ]; then
        printf '\n== installing %s into %s\n' "$*" "$dir"
        rm -rf "$dir"
        python3 -m venv "$dir"
        "$dir/bin/pip" install --quiet --disable-pip-version-check "$@"
        printf '%s\n' "$want" >"$dir/.requirements"
    fi
}
