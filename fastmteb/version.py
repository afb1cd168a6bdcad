"""fastmteb's version, in a module of its own so that any layer can record it without importing the
package's public facade (``fastmteb/__init__.py`` imports the runner)."""

__version__ = "0.1.0"
