"""999 and 277CA acknowledgments -> claim status."""
