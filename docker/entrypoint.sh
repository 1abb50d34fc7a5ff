#!/usr/bin/env bash
# Entrypoint of the RLT robot image: source the workspace (venv, rlt_msgs/rlt_nodes, RMW, Fast DDS profile), then run
# the command (default: `rlt launch robot`). Discovery settings come from the environment (docker/compose.yml); the
# workspace's loopback-only defaults apply only where none is given.
set -eo pipefail
# shellcheck disable=SC1091
source /ws/ros_ws/env.sh
cd /ws
exec "$@"
