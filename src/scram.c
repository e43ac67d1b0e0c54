/* scram.c — placeholder, being written. */
