"""Stage 6, report: tables and the written summary of fitted results."""
