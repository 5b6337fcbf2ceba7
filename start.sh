#!/usr/bin/env bash
# Sets the environment the observability/ stack expects and launches Agent Immune.
#   ./start.sh            same as `./start.sh run` (15 simulated agents; the seed's main.py)
#   ./start.sh serve      external agents only, until stopped
# Start the stack first (cd observability && docker compose up -d influxdb otel-collector).
# Every variable is a default: anything already set in the environment wins.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"

# InfluxDB (must match DOCKER_INFLUXDB_INIT_* in observability/docker-compose.yml).
export INFLUXDB_URL="${INFLUXDB_URL:-http://localhost:8086}"
export INFLUXDB_TOKEN="${INFLUXDB_TOKEN:-hackathon-influx-token-1234567890}"
export INFLUXDB_ORG="${INFLUXDB_ORG:-appd}"
export INFLUXDB_BUCKET="${INFLUXDB_BUCKET:-immune_system}"

# OpenTelemetry Collector (OTLP/HTTP receiver of observability/otel-collector-config.yaml).
export OTEL_EXPORTER_OTLP_ENDPOINT="${OTEL_EXPORTER_OTLP_ENDPOINT:-http://localhost:4318}"
export OTEL_SERVICE_NAME="${OTEL_SERVICE_NAME:-ai-agent-immune-system}"
export OTEL_METRIC_EXPORT_INTERVAL_MS="${OTEL_METRIC_EXPORT_INTERVAL_MS:-5000}"

# The CLI runs from dist/; `npm ci` builds it, this covers a checkout where it has not run.
if [[ ! -f dist/cli/main.js ]]; then
  npm run build
fi

exec node bin/immune.js "${@:-run}"
