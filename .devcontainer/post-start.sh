#!/usr/bin/env bash
# Dev container / Codespaces, at every start: the inotify limits `labkit doctor` asks for
# (kind's known issues: several clusters exhaust the defaults), then the doctor's verdict.
# Docker-in-Docker runs privileged, so sysctl reaches the VM's kernel, which the kind nodes
# share.
set -uo pipefail
cd "$(dirname "$0")/.."
sudo sysctl -w fs.inotify.max_user_watches=524288 fs.inotify.max_user_instances=512 \
  || echo "post-start: could not raise the inotify limits; \`labkit doctor\` shows the fix" >&2
.venv/bin/labkit doctor || true
