/* Mutual TLS for a move's own connection (include/godwit/tls.h), with OpenSSL: contexts for
 * the two roles, the handshake on a non-blocking socket waited for through the caller's hook,
 * and one read or write at a time for the migration protocol's framing (mig_conn's io). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "godwit/tls.h"
#include "godwit/util.h"

static const char *const role_files[2][3] = {
	{ "ca-cert.pem", "client-cert.pem", "client-key.pem" },
	{ "ca-cert.pem", "server-cert.pem", "server-key.pem" },
};

const char *const *gw_tls_role_files(int server)
{
	return role_files[!!server];
}

int gw_tls_dir_check(const char *dir, int server, struct gw_err *err)
{
	for (int i = 0; i < 3; i++) {
		char p[4096];
		if (snprintf(p, sizeof(p), "%s/%s", dir, role_files[!!server][i]) >= (int)sizeof(p))
			return gw_err_set(err, ENAMETOOLONG, "TLS directory path too long");
		if (access(p, R_OK) < 0)
			return gw_err_sys(err, errno, "TLS: %s", p);
	}
	return 0;
}

/* OpenSSL's last error, for a message */
static int tls_fail(struct gw_err *err, int code, const char *what)
{
	char buf[256] = "";
	unsigned long e = ERR_get_error();
	if (e)
		ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	return gw_err_set(err, code, "TLS: %s%s%s", what, buf[0] ? ": " : "", buf);
}

int gw_tls_ctx_new(const char *dir, int server, SSL_CTX **out, struct gw_err *err)
{
	int r = gw_tls_dir_check(dir, server, err);
	if (r < 0)
		return r;
	SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
	if (!ctx)
		return tls_fail(err, ENOMEM, "context");
	char ca[4096], cert[4096], key[4096];
	snprintf(ca, sizeof(ca), "%s/%s", dir, role_files[!!server][0]);
	snprintf(cert, sizeof(cert), "%s/%s", dir, role_files[!!server][1]);
	snprintf(key, sizeof(key), "%s/%s", dir, role_files[!!server][2]);
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	/* a peer gone without close_notify reads as the end, as on a plain socket */
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | (server ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
			   NULL);
	if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1)
		r = tls_fail(err, EINVAL, ca);
	else if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1)
		r = tls_fail(err, EINVAL, cert);
	else if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
		r = tls_fail(err, EINVAL, key);
	else if (SSL_CTX_check_private_key(ctx) != 1)
		r = tls_fail(err, EINVAL, "the key does not match the certificate");
	if (r < 0) {
		SSL_CTX_free(ctx);
		return r;
	}
	*out = ctx;
	return 0;
}

void gw_tls_ctx_free(SSL_CTX *ctx)
{
	SSL_CTX_free(ctx);
}

/* the client's check of the server's name: an address in the certificate's IP entries, a
 * name in its DNS entries (or CN) */
static int want_host(SSL *ssl, const char *host)
{
	unsigned char a[16];
	if (inet_pton(AF_INET, host, a) == 1 || inet_pton(AF_INET6, host, a) == 1)
		return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) == 1;
	return SSL_set1_host(ssl, host) == 1;
}

static int handshake_error(SSL *ssl, int ret, struct gw_err *err)
{
	long v = SSL_get_verify_result(ssl);
	if (v != X509_V_OK)
		return gw_err_set(err, EACCES, "TLS handshake: the peer's certificate was refused: "
				  "%s", X509_verify_cert_error_string(v));
	int e = SSL_get_error(ssl, ret);
	if (e == SSL_ERROR_SYSCALL && !ERR_peek_error())
		return gw_err_set(err, ECONNRESET, "TLS handshake: the peer closed the connection "
				  "(does it speak TLS, with a certificate from the same CA?)");
	return tls_fail(err, EPROTO, "handshake failed (does the peer speak TLS?)");
}

int gw_tls_handshake(SSL_CTX *ctx, int fd, const char *host,
		     int (*wait)(void *arg, int fd, short events, int timeout_ms), void *arg,
		     int timeout_ms, SSL **out, struct gw_err *err)
{
	SSL *ssl = SSL_new(ctx);
	if (!ssl)
		return tls_fail(err, ENOMEM, "session");
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	if (SSL_set_fd(ssl, fd) != 1 || (host && !want_host(ssl, host))) {
		SSL_free(ssl);
		return tls_fail(err, EINVAL, "session setup");
	}
	int64_t deadline = gw_now_mono_ns() + (int64_t)timeout_ms * 1000000;
	for (;;) {
		int ret = host ? SSL_connect(ssl) : SSL_accept(ssl);
		if (ret == 1)
			break;
		int e = SSL_get_error(ssl, ret);
		int left = (int)((deadline - gw_now_mono_ns()) / 1000000);
		if ((e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) || left <= 0) {
			int r = left <= 0 && (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
					? gw_err_set(err, ETIMEDOUT, "TLS handshake: no answer in %d s",
						     timeout_ms / 1000)
					: handshake_error(ssl, ret, err);
			SSL_free(ssl);
			return r;
		}
		short ev = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
		if (wait) {
			wait(arg, fd, ev, left);
		} else {
			struct pollfd p = { .fd = fd, .events = ev };
			poll(&p, 1, left);
		}
	}
	*out = ssl;
	return 0;
}

ssize_t gw_tls_io(SSL *ssl, void *buf, size_t len, int writing, short *events)
{
	size_t n = 0;
	int ok = writing ? SSL_write_ex(ssl, buf, len, &n) : SSL_read_ex(ssl, buf, len, &n);
	if (ok)
		return (ssize_t)n;
	int e = SSL_get_error(ssl, 0);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		*events = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
		return -EAGAIN;
	}
	ERR_clear_error();
	if (e == SSL_ERROR_ZERO_RETURN)
		return 0;
	return e == SSL_ERROR_SYSCALL && errno ? -errno : -EPROTO;
}

void gw_tls_peer_name(SSL *ssl, char *buf, size_t len)
{
	buf[0] = '\0';
	X509 *c = SSL_get1_peer_certificate(ssl);
	if (c) {
		X509_NAME_oneline(X509_get_subject_name(c), buf, (int)len);
		X509_free(c);
	}
}

void gw_tls_free(SSL *ssl)
{
	SSL_free(ssl);
}
