/* policy_cache.c — being split out of policy.c. */
