"""Sample files for every feed and the generators that build them (see generate.py)."""
