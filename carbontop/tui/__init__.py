"""The Textual dashboard: a thin face of :class:`carbontop.engine.Engine` (never the reverse)."""
