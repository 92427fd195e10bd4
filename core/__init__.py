"""Configuration and errors shared by every layer."""
