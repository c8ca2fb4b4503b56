"""Graph passes: each is a small function graph -> graph in its own file."""
