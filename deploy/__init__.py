"""Deployment helpers: the container health probe and the .env.example generator."""
