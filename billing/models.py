"""Models arrive with their issue; the app and its schema exist from the start."""
