"""pytest-medbench: MedS-Bench and MedR-Bench as ordinary pytest items."""

__version__ = "0.1.0"
