"""The client SDK: the event model (the wire contract), the producers, event sources.

``EventProducer`` (threads) and ``AsyncEventProducer`` (asyncio) drive one pure core
(``core``: ``schedule`` for per-key order, ``batching`` for call limits and aggregation,
``ratelimit``/``shards`` for per-shard pacing, ``outcomes`` for results); ``testing`` holds the
doubles shipped with it. See docs/decisions/0005-producer-sdk.md.
"""
