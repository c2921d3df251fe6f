"""Collectors, one module per platform; importing this package registers the built-in kinds."""
