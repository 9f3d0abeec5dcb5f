# Sourced by .ci scripts: starts `hazina serve` (the debug build) on an embedded database of its
# own under /tmp and waits until it is ready. Sets `base` (its URL), `org_key` and `app_key`
# (the first start's keys), and stops the server and deletes its data on exit.
#
# Under /tmp, not the checkout: the embedded cluster runs as `postgres` when we are root, and
# the checkout may sit under a folder only root can enter.

serve_scratch=$(mktemp -d /tmp/hazina-serve-XXXXXX)
chmod 755 "$serve_scratch"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
env -u DATABASE_URL "${CARGO_TARGET_DIR:-target}/debug/hazina" serve --data-dir "$serve_scratch/pg" \
  --listen "127.0.0.1:$port" >"$serve_scratch/stdout" 2>"$serve_scratch/stderr" &
serve_pid=$!
stop_server() {
  kill -INT "$serve_pid" 2>/dev/null || true
  wait "$serve_pid" 2>/dev/null || true
  rm -rf "$serve_scratch"
}
trap stop_server EXIT

for _ in $(seq 1 120); do
  curl -sf "$base/readyz" >/dev/null 2>&1 && break
  if ! kill -0 "$serve_pid" 2>/dev/null; then
    cat "$serve_scratch/stderr" >&2
    echo "hazina serve exited before it was ready" >&2
    exit 1
  fi
  sleep 0.5
done
curl -sf "$base/readyz" >/dev/null || { cat "$serve_scratch/stderr" >&2; exit 1; }

first_key() {
  awk -v who="$1" '$1 == who && $2 == "key:" { print $3 }' "$serve_scratch/stdout"
}
org_key=$(first_key org)
app_key=$(first_key app)
[ -n "$org_key" ] && [ -n "$app_key" ] || { echo "no keys in the first start's output" >&2; exit 1; }
