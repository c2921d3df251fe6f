"""monitor: find brand logos in the images people post on social media."""

__version__ = "0.1.0"
