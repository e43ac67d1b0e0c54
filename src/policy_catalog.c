/* policy_catalog.c — being split out of policy.c. */
