"""Project code on top of the harness (big_vision's proj/)."""
