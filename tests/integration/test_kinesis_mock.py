"""The faithful stack's Kinesis: kinesis-mock reshards as AWS does (children, closed parents)."""

from __future__ import annotations

from infra.clients import client
from infra.settings import Settings
from tests.streams import wait_active


def test_a_split_closes_the_parent_and_opens_two_children(faithful: Settings) -> None:
    kinesis = client("kinesis", faithful)
    shards = kinesis.list_shards(StreamName=faithful.stream_name)["Shards"]
    parent = shards[0]
    middle = (int(parent["HashKeyRange"]["StartingHashKey"]) +
              int(parent["HashKeyRange"]["EndingHashKey"])) // 2  # fmt: skip
    kinesis.split_shard(
        StreamName=faithful.stream_name,
        ShardToSplit=parent["ShardId"],
        NewStartingHashKey=str(middle),
    )
    wait_active(kinesis, faithful.stream_name)
    after = kinesis.list_shards(StreamName=faithful.stream_name)["Shards"]
    children = [s for s in after if s.get("ParentShardId") == parent["ShardId"]]
    assert len(children) == 2
    closed = next(s for s in after if s["ShardId"] == parent["ShardId"])
    assert "EndingSequenceNumber" in closed["SequenceNumberRange"]
    written = kinesis.put_record(StreamName=faithful.stream_name, Data=b"{}", PartitionKey="u")
    assert len(written["SequenceNumber"]) == 56
