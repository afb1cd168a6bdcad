"""fastmteb: mteb 2.x scores for text-embedding models, many times faster."""

__version__ = "0.1.0"
