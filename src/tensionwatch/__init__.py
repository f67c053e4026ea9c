"""tensionwatch: watches news feeds for geopolitical tension."""

__version__ = "0.1.0"
