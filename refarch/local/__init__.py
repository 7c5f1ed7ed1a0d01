"""Running the whole stack on one machine: the supervisor, ``refarch up``, sandboxes, status."""
