#ifndef PGW_POLICY_H
#define PGW_POLICY_H
#endif
