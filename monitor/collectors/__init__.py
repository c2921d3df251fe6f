"""Collectors, one module per platform; importing this package registers the built-in kinds."""

from monitor.collectors import bluesky, fake, folder, jsonl, mastodon, reddit, rss

__all__ = ["bluesky", "fake", "folder", "jsonl", "mastodon", "reddit", "rss"]
