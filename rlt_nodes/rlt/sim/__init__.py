"""Precise-insertion simulator: a MuJoCo peg-in-hole task with a scripted teleoperator and demo datasets.

Modules: `config` (SimConfig, ExpertConfig, presets), `scene` (MJCF), `env` (PegInsertEnv), `expert`
(ScriptedTeleop), `demos` (MCAP rosbag2 datasets), `bench` (throughput and calibration figures). Only `env` and
the modules that use it import MuJoCo; `config` and `scene` are safe to import anywhere.
"""
