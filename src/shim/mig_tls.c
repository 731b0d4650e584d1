/* A move inside TLS (docs/security.md): godwit's own connection through an OpenSSL session
 * (src/common/tls.c), and QEMU's side: its x509 credentials from the same directory, used by
 * its migration stream (on a connection of its own: MIG_CONN_DATA) and its NBD server and
 * client (mig_qemu.c). */
#include <stdio.h>

#include "godwit/hv_vm.h"
#include "godwit/tls.h"
#include "migrate.h"
#include "shim.h"

static ssize_t conn_io(void *ssl, void *buf, size_t len, int writing, short *events)
{
	return gw_tls_io(ssl, buf, len, writing, events);
}

int mig_tls_start(struct container *ct, struct mig_conn *mc, const char *host,
		  struct mig_tls *t, struct gw_err *err)
{
	int server = host == NULL;
	int r = gw_tls_ctx_new(ct->tls_dir, server, &t->ctx, err);
	if (r == 0)
		r = gw_tls_handshake(t->ctx, mc->fd, host, mc->wait, mc->wait_arg, 10000, &t->ssl,
				     err);
	if (r < 0) {
		mig_tls_end(t);
		return r;
	}
	char peer[256];
	gw_tls_peer_name(t->ssl, peer, sizeof(peer));
	char line[300];
	snprintf(line, sizeof(line), "%s: TLS with %s", server ? "destination" : "source", peer);
	mig_trace(line);
	mc->io = conn_io;
	mc->io_arg = t->ssl;
	return 0;
}

void mig_tls_end(struct mig_tls *t)
{
	if (t->ssl)
		gw_tls_free(t->ssl);
	if (t->ctx)
		gw_tls_ctx_free(t->ctx);
	t->ssl = NULL;
	t->ctx = NULL;
}

int mig_tls_qemu(struct container *ct, const char *host, struct gw_err *err)
{
	if (!ct->tls_dir)
		return hv_mig_set_tls(ct->qmp, "", host ? "" : NULL, 5000, err);
	/* a source QEMU may hold the credentials of an earlier move: the directory's now */
	hv_object_del(ct->qmp, HV_TLS_CREDS, 5000, NULL);
	char *copies = NULL;
	int r = shim_jail_tls_copy(ct, ct->tls_dir, host == NULL, &copies, err);
	if (r == 0)
		r = hv_tls_creds_add(ct->qmp, HV_TLS_CREDS, copies, host == NULL, 5000, err);
	shim_jail_tls_drop(&copies);
	if (r == 0)
		r = hv_mig_set_tls(ct->qmp, HV_TLS_CREDS, host, 5000, err);
	return r < 0 ? gw_err_prefix(err, "QEMU's TLS credentials") : 0;
}
