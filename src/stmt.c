/* stmt.c — placeholder, being written. */
