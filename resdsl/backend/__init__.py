"""Back ends: the only code that imports torch."""
