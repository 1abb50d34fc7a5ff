"""Thin ROS 2 nodes wrapping the `rlt` core: one node per module, conversions only through `convert`."""
