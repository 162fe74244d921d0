"""Rendering results: CSV and Markdown tables of any pooled table (``tables``) and the
record of what an update changed (``changes``)."""
