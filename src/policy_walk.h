#ifndef PGW_POLICY_WALK_H
#define PGW_POLICY_WALK_H
#endif
