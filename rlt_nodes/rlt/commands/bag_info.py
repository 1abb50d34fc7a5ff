"""`rlt bag info BAG`: what a bag holds (topics, types, counts, RIHS01 type hashes, QoS) and how it was recorded."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bag", type=Path, help="rosbag2 folder")


def run(args: argparse.Namespace) -> int:
    import json

    from rlt.bags.io import BagReader
    from rlt.bags.recorder import STATS_KEY

    with BagReader(args.bag) as bag:
        counts: dict[str, int] = {}
        for topic, _, _ in bag.raw_messages():
            counts[topic] = counts.get(topic, 0) + 1
        duration = (bag.end_ns - bag.start_ns) / 1e9 if bag.message_count else 0.0
        print(f"{args.bag}: {bag.message_count} messages over {duration:.2f} s")
        width = max(len(t) for t in bag.topics)
        for topic, msgtype in sorted(bag.topics.items()):
            q = bag.qos[topic]
            qos = f"{'reliable' if q.reliable else 'best effort'}{', transient local' if q.transient_local else ''}"
            print(f"  {topic:<{width}}  {counts.get(topic, 0):>7}  {msgtype}  [{qos}]  {bag.type_hashes[topic]}")
        stats = bag.metadata.get(STATS_KEY)
        if stats:
            s = json.loads(stats)
            print(f"recorded: {s['mb_per_s']} MB/s, {s['messages_per_s']} msgs/s, {s['dropped']} dropped, "
                  f"writer busy {s['writer_busy_s']} s of {s['wall_s']} s")
        for key, value in bag.metadata.items():
            if key != STATS_KEY:
                print(f"{key}: {value}")
    return 0
