"""Celery entry points: the app and thin tasks that call ``monitor.pipeline``."""
