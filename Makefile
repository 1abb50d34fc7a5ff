# The two commands of the README, plus helpers. Every target runs the idempotent setup first (seconds when
# nothing changed), then works inside the sourced workspace.
SHELL := /bin/bash
ENV := source ros_ws/env.sh

.PHONY: setup run test lint
setup:
	@bash ros_ws/setup.sh

run: setup  ## the main job: the sim RLT session on embedded defaults
	@$(ENV) && rlt session

test: setup  ## all tests (core, sim, ROS)
	@$(ENV) && RLT_REQUIRE_ROS=1 python -m pytest tests -q $(PYTEST_ARGS)

lint: setup  ## ruff on all Python, hadolint (pinned in the lock) on the robot image recipe
	@$(ENV) && ruff check . && hadolint docker/Dockerfile
