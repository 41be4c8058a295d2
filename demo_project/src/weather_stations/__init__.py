"""Weather stations: a kedro-dolt demo project."""

__version__ = "0.1.0"
