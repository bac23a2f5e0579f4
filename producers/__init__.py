"""The client SDK: the event model (the wire contract), the batching producer, event sources."""
