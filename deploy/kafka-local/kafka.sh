#!/usr/bin/env bash
# Local Apache Kafka (KRaft, one node) for development, tests and the demo.
#
#   kafka.sh fetch                 download the broker jars from Maven Central (once)
#   kafka.sh start [PORT] [DIR]    format storage if new, start, wait until it accepts connections
#   kafka.sh stop [DIR]            stop the broker started with DIR (by PID)
#   kafka.sh status [DIR]
#
# Defaults: PORT=9092, DIR=deploy/kafka-local/data. Jars are cached in deploy/kafka-local/lib.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
lib="${KAFKA_LIB_DIR:-$here/lib}"
cmd="${1:-}"

fetch() {
  if [ -f "$lib/.complete" ]; then return 0; fi
  command -v mvn >/dev/null || { echo "kafka.sh: Maven (mvn) is needed to fetch the Kafka jars; install it (apt-get install maven)" >&2; exit 1; }
  command -v java >/dev/null || { echo "kafka.sh: Java 17+ is needed for Kafka 4; install it (apt-get install openjdk-17-jre-headless)" >&2; exit 1; }
  echo "kafka.sh: fetching Apache Kafka jars from Maven Central into $lib ..." >&2
  mkdir -p "$lib"
  mvn -q -B -f "$here/pom.xml" dependency:copy-dependencies -DoutputDirectory="$lib" >&2
  touch "$lib/.complete"
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start() {
  local port="${1:-9092}" dir="${2:-$here/data}"
  fetch
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd)"
  if [ -f "$dir/kafka.pid" ] && kill -0 "$(cat "$dir/kafka.pid")" 2>/dev/null; then
    echo "kafka.sh: already running (pid $(cat "$dir/kafka.pid")) on $(cat "$dir/port")" >&2; return 0
  fi
  local cport; cport="$(cat "$dir/controller_port" 2>/dev/null || free_port)"
  echo "$cport" > "$dir/controller_port"
  echo "$port" > "$dir/port"
  sed -e "s|@PORT@|$port|g" -e "s|@CONTROLLER_PORT@|$cport|g" -e "s|@DATA_DIR@|$dir/logs|g" \
    "$here/server.properties.template" > "$dir/server.properties"
  local cp="$lib/*"
  export KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xmx512m -Xms256m}"
  # the collector's pauses go to gc.log: a stalled broker is then told from a stalled host
  local jvm=(java $KAFKA_HEAP_OPTS -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xshare:auto
             "-Xlog:gc:file=$dir/gc.log:uptime:filecount=2,filesize=5m"
             -Dlog4j2.configurationFile="$here/log4j2.yaml" -cp "$cp")
  if [ ! -f "$dir/logs/meta.properties" ]; then
    "${jvm[@]}" kafka.tools.StorageTool format --standalone \
      --cluster-id="$(python3 -c 'import base64,uuid;print(base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="))')" \
      -c "$dir/server.properties" >"$dir/format.log" 2>&1 \
      || { echo "kafka.sh: formatting storage failed, see $dir/format.log" >&2; cat "$dir/format.log" >&2; exit 1; }
  fi
  nohup "${jvm[@]}" kafka.Kafka "$dir/server.properties" >"$dir/kafka.log" 2>&1 &
  echo $! > "$dir/kafka.pid"
  for _ in $(seq 1 600); do
    if python3 - "$port" <<'PY' 2>/dev/null; then echo "kafka.sh: Kafka ready on 127.0.0.1:$port (pid $(cat "$dir/kafka.pid"))" >&2; return 0; fi
import socket, struct, sys
# A real ApiVersions round trip, not just an open port: the broker must answer requests.
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1)
cid = b"ready"
body = struct.pack(">hhih", 18, 0, 1, len(cid)) + cid
s.sendall(struct.pack(">i", len(body)) + body)
size = struct.unpack(">i", s.recv(4))[0]
data = s.recv(size)
assert struct.unpack(">ih", data[:6])[1] == 0
PY
    if ! kill -0 "$(cat "$dir/kafka.pid")" 2>/dev/null; then
      echo "kafka.sh: Kafka exited during start-up; last log lines:" >&2; tail -20 "$dir/kafka.log" >&2; exit 1
    fi
    sleep 0.2
  done
  echo "kafka.sh: Kafka did not become ready within 120 s; see $dir/kafka.log" >&2; exit 1
}

stop() {
  local dir="${1:-$here/data}"
  [ -f "$dir/kafka.pid" ] || { echo "kafka.sh: not running ($dir/kafka.pid missing)" >&2; return 0; }
  local pid; pid="$(cat "$dir/kafka.pid")"
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
  fi
  rm -f "$dir/kafka.pid"
  echo "kafka.sh: stopped" >&2
}

case "$cmd" in
  fetch) fetch ;;
  start) shift; start "$@" ;;
  stop) shift; stop "$@" ;;
  status) d="${2:-$here/data}"; if [ -f "$d/kafka.pid" ] && kill -0 "$(cat "$d/kafka.pid")" 2>/dev/null; then echo "running on 127.0.0.1:$(cat "$d/port")"; else echo "stopped"; exit 1; fi ;;
  *) sed -n '2,9p' "$0"; exit 2 ;;
esac
