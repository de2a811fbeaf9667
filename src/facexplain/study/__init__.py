"""The human study of the deep-difference-analysis paper as a tool: similar-looking pair sets,
a before/after study served to participants, SQLite storage, analysis and simulation."""
