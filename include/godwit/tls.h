/* Mutual TLS for a move's own connection (docs/security.md), with OpenSSL: the destination is
 * the server, the source the client; each presents its certificate from DIR, in QEMU's x509
 * layout (ca-cert.pem, server-cert.pem + server-key.pem, client-cert.pem + client-key.pem),
 * and checks the peer's against DIR/ca-cert.pem before anything else crosses; the client also
 * checks that the server's certificate names the host it connected to. TLS 1.2 or newer. The
 * same DIR gives QEMU its credentials (hv_tls_creds_add). */
#ifndef GODWIT_TLS_H
#define GODWIT_TLS_H

#include <sys/types.h>

#include "godwit/err.h"

struct ssl_st;
struct ssl_ctx_st;

/* The files of dir that a role needs (the CA and its own pair) readable, or -errno naming the
 * one that is not; what a CLI checks before it starts anything. */
/* The three files a side reads from DIR: CA certificate, its certificate, its key. */
const char *const *gw_tls_role_files(int server);
int gw_tls_dir_check(const char *dir, int server, struct gw_err *err);
/* A context for the role, peer verification on (a server requires the client's certificate). */
int gw_tls_ctx_new(const char *dir, int server, struct ssl_ctx_st **ctx, struct gw_err *err);
void gw_tls_ctx_free(struct ssl_ctx_st *ctx);
/* The handshake on fd (made non-blocking for good): a client checks host (an IP address or a
 * DNS name) against the server's certificate, a server passes host NULL. wait as mig_conn's
 * (NULL: poll); timeout_ms for the whole handshake. *out: the session (gw_tls_free). */
int gw_tls_handshake(struct ssl_ctx_st *ctx, int fd, const char *host,
		     int (*wait)(void *arg, int fd, short events, int timeout_ms), void *arg,
		     int timeout_ms, struct ssl_st **out, struct gw_err *err);
/* One read or write on the session: > 0 bytes moved; 0 the peer closed (read); -EAGAIN with
 * *events what to wait for (POLLIN/POLLOUT); another -errno: the connection failed. */
ssize_t gw_tls_io(struct ssl_st *ssl, void *buf, size_t len, int writing, short *events);
/* The peer certificate's subject, for logs ("" without one). */
void gw_tls_peer_name(struct ssl_st *ssl, char *buf, size_t len);
void gw_tls_free(struct ssl_st *ssl);

#endif
