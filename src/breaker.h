/*
 * breaker.h — circuit breakers (docs/reference.md#breakers): what other capability files may
 * call.  The state machine itself is in breaker_core.h.
 */
#ifndef BREAKER_H
#define BREAKER_H

#include "postgres.h"

/* Longest service name, in bytes, that can have a breaker. */
#define BREAKER_NAME_MAX 200

/*
 * Would a call to this service be refused now?  No side effects; false when
 * not preloaded or when the name cannot have a breaker.
 */
extern bool BreakerIsOpen(const char *service, int len);

#endif
