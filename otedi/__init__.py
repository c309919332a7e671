"""otedi: occupational-therapy billing over X12 EDI."""

__version__ = "0.1.0"
