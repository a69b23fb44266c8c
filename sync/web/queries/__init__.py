"""What each page shows, as plain functions over a Session: tests call them directly."""
