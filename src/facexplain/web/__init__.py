"""The web front end: ``create_app`` builds the FastAPI app that ``facexplain serve`` runs."""
