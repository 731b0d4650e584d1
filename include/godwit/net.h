/* TCP endpoints given as "tcp:HOST:PORT" (HOST may be a name, an IPv4 address or [IPv6]).
 * Used by the migration source (connect) and destination (listen). */
#ifndef GODWIT_NET_H
#define GODWIT_NET_H

#include "godwit/err.h"

/* Split a tcp: URI; host and port are written NUL-terminated. */
int net_parse_tcp(const char *uri, char host[256], char port[16], struct gw_err *err);
/* Connect (blocking, with a timeout) and return the fd (O_CLOEXEC, TCP_NODELAY). */
int net_connect_tcp(const char *uri, int timeout_ms, struct gw_err *err);
/* The same, waiting for the connection through wait (nonzero: fd writable) instead of poll:
 * the shim's jobs give their loop the wait. */
int net_connect_tcp_wait(const char *uri, int timeout_ms,
			 int (*wait)(void *arg, int fd, short events, int timeout_ms), void *arg,
			 struct gw_err *err);
/* Bind and listen; returns the listening fd. */
int net_listen_tcp(const char *uri, struct gw_err *err);

#endif
