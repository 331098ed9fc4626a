"""Adapters: one outside system per module (object store, API keys, links, URL guard, exiftool, Kafka, the pHash index)."""
