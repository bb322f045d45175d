"""Sources of mentions: one module per source type behind one small interface."""
