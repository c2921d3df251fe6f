"""Collectors, one module per platform; importing this package registers the built-in kinds."""

from monitor.collectors import fake, folder, jsonl, mastodon, reddit, rss

__all__ = ["fake", "folder", "jsonl", "mastodon", "reddit", "rss"]
