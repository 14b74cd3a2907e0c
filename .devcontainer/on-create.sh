#!/usr/bin/env bash
# Dev container / Codespaces, once when the container is created: the course's Python
# environment, then kind, kubectl, helm, cilium-cli and hubble at the pinned versions,
# each checked against its upstream SHA-256 (into ~/.cache/labkit/bin, on PATH here).
set -euo pipefail
cd "$(dirname "$0")/.."
make setup
.venv/bin/labkit tools install
