/* policy_walk.c — placeholder, being written. */
