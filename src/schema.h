#ifndef PGW_SCHEMA_H
#define PGW_SCHEMA_H
#endif
