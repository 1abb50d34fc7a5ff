"""Recordings: rosbag2 MCAP I/O, the session recorder and player, datasets built from bags, bag evaluation."""
